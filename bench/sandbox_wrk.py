"""Throughput of the sandbox on one core, measured with wrk (Debian's package).

    .venv/bin/python bench/sandbox_wrk.py [--duration 10] [--connections 50]

Starts ``python -m erasure.sandbox`` pinned to one core (``--server-cpu``),
runs wrk pinned to another (``--client-cpu``) with a Lua script POSTing JSON
deletes, and prints a Markdown table with the commands used. Scenarios:

- ``unknown-json``: emails no profile has (not-found answers, the hot path of
  a preflight-heavy or mostly-absent input);
- ``existing-json``: ``user{i}@example.com`` of ``--generate N``, each once;
- ``unknown-xml``: as unknown-json, with XML bodies;
- ``trivial-asgi``: a bare ASGI app answering "ok" under the same uvicorn,
  the ceiling the sandbox cannot pass on this machine.

The load average is printed with each row: other work on the machine (other
test runs, benchmarks) lowers every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

TRIVIAL_APP = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await receive()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})
"""


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    script: str  # Lua file under bench/
    sandbox_args: tuple[str, ...] = ()
    trivial: bool = False  # serve TRIVIAL_APP instead of the sandbox


@dataclass(frozen=True, slots=True)
class Result:
    scenario: Scenario
    requests_per_s: float
    per_cpu_s: float  # answered requests per CPU-second the server used
    p50_ms: float
    p99_ms: float
    answers: str  # from the sandbox's stats
    load: str  # /proc/loadavg before the run
    command: str


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per run (10)")
    parser.add_argument("--connections", type=int, default=50, help="wrk connections (50)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (1)")
    parser.add_argument("--server-cpu", type=int, default=0, help="core of the sandbox (0)")
    parser.add_argument("--client-cpu", type=int, default=1, help="core of wrk (1)")
    parser.add_argument(
        "--generate", type=int, default=500_000, help="profiles for existing-json (500000)"
    )
    parser.add_argument("--loop", default="auto", help="uvicorn loop: auto, asyncio, uvloop")
    parser.add_argument("--only", action="append", help="run only these scenarios")
    parser.add_argument(
        "--repeat", type=int, default=1, help="rounds of every scenario; the best is shown (1)"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 69
    scenarios = [
        Scenario("unknown-json", "sandbox_unknown.lua"),
        Scenario("existing-json", "sandbox_existing.lua", ("--generate", str(args.generate))),
        Scenario("unknown-xml", "sandbox_unknown_xml.lua"),
        Scenario("trivial-asgi", "sandbox_unknown.lua", trivial=True),
    ]
    chosen = [s for s in scenarios if not args.only or s.name in args.only]
    # Rounds interleave the scenarios, so that a busy spell of the machine hits all alike.
    rounds = [[run(scenario, args) for scenario in chosen] for _ in range(args.repeat)]
    print_table([list(runs) for runs in zip(*rounds, strict=True)], args)
    return 0


def server_command(scenario: Scenario, args: argparse.Namespace) -> list[str]:
    pin = ["taskset", "-c", str(args.server_cpu)]
    if scenario.trivial:
        return [*pin, sys.executable, __file__, "--serve-trivial", args.loop]
    sandbox = [sys.executable, "-m", "erasure.sandbox", "--port", "0", "--loop", args.loop]
    return [*pin, *sandbox, *(scenario.sandbox_args or ("--generate", "1000"))]


def run(scenario: Scenario, args: argparse.Namespace) -> Result:
    env = {**os.environ, "SANDBOX_THREADS": str(args.threads)}
    server = subprocess.Popen(
        server_command(scenario, args), stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip().removeprefix("listening on ")
        if not url.startswith("http://"):
            raise SystemExit(f"{scenario.name}: the server did not start")
        wrk = ["taskset", "-c", str(args.client_cpu), "wrk", f"-t{args.threads}"]
        wrk += [f"-c{args.connections}", f"-d{args.duration}s", "--latency"]
        wrk += ["-s", str(HERE / scenario.script), url]
        load = Path("/proc/loadavg").read_text().split()[0]
        cpu_before = cpu_seconds(server.pid)
        out = subprocess.run(wrk, capture_output=True, text=True, check=True, env=env).stdout
        cpu_used = cpu_seconds(server.pid) - cpu_before
        answers = "" if scenario.trivial else summarise(url)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
    requests = int(_find(r"(\d+) requests in", out))
    return Result(
        scenario=scenario,
        requests_per_s=float(_find(r"Requests/sec:\s+([\d.]+)", out)),
        per_cpu_s=requests / cpu_used if cpu_used > 0 else 0.0,
        p50_ms=_ms(_find(r"50%\s+([\d.]+\w+)", out)),
        p99_ms=_ms(_find(r"99%\s+([\d.]+\w+)", out)),
        answers=answers,
        load=load,
        command=shlex.join([*server_command(scenario, args), "&", *wrk[:-1], "URL"]),
    )


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far, seconds (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def summarise(url: str) -> str:
    with urllib.request.urlopen(f"{url}/__sandbox/stats?per_profile=0", timeout=30) as answer:
        stats = json.load(answer)
    return ", ".join(f"{kind} {count}" for kind, count in sorted(stats["answers"].items()))


def _find(pattern: str, text: str) -> str:
    match = re.search(pattern, text)
    if match is None:
        raise SystemExit(f"unexpected wrk output:\n{text}")
    return match.group(1)


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)([a-z]+)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def print_table(results: list[list[Result]], args: argparse.Namespace) -> None:
    """One row per scenario: its best run of ``--repeat``, and the median requests/s."""
    print(f"wrk {args.threads} thread(s), {args.connections} connections, {args.duration} s,")
    print(f"best of {args.repeat} run(s); sandbox on CPU {args.server_cpu}, wrk on CPU", end=" ")
    print(f"{args.client_cpu}, loop {args.loop}\n")
    print(
        "| scenario | requests/s | median | per CPU-second | p50 ms | p99 ms | load avg | answers |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for runs in results:
        r = max(runs, key=lambda run: run.requests_per_s)
        median = statistics.median(run.requests_per_s for run in runs)
        print(
            f"| {r.scenario.name} | {r.requests_per_s:,.0f} | {median:,.0f} "
            f"| {max(run.per_cpu_s for run in runs):,.0f} "
            f"| {r.p50_ms:.2f} | {r.p99_ms:.2f} | {r.load} | {r.answers} |"
        )
    print(
        "\nrequests/s is what wrk saw; per CPU-second divides the requests by the CPU time"
        "\nthe server process used (user + system), what a core of its own would give."
    )
    print("\nCommands:\n")
    for runs in results:
        print(f"    {runs[0].scenario.name}: {runs[0].command}")


def serve_trivial(loop: str) -> None:
    """Serve TRIVIAL_APP with the sandbox's uvicorn settings; first line as the sandbox."""
    import socket

    import uvicorn

    namespace: dict[str, object] = {}
    exec(TRIVIAL_APP, namespace)
    sock = socket.create_server(("127.0.0.1", 0), backlog=2048)
    config = uvicorn.Config(
        namespace["app"],  # type: ignore[arg-type]
        http="httptools",
        loop=loop,
        lifespan="off",
        access_log=False,
        log_level="warning",
    )
    server = uvicorn.Server(config)
    print(f"listening on http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    server.run(sockets=[sock])


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve-trivial":
        serve_trivial(sys.argv[2])
        raise SystemExit(0)
    raise SystemExit(main())
