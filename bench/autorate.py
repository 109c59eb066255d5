"""Auto rate: ``RateLimiter.auto`` against a real service with a hidden limit.

    .venv/bin/python bench/autorate.py [--limit 150] [--seconds 60] [--max-rate 1000]
                                      [--lower-to 75 --lower-at 25 --raise-at 45]
    .venv/bin/python bench/autorate.py --sandbox [--limit 150] [--seconds 60]

With ``--sandbox``, the whole tool instead: ``erasure run`` (a subprocess on
its own core, ledger and preflight on, ``rate_per_s = "auto"``,
``max_rate_per_s = --max-rate``, concurrency 64, ``--max-duration
--seconds``) against the real sandbox started with ``--rate-limit LIMIT
--latency-ms 50-200 --record-times`` on the other core. The figures come
from the sandbox's clock and counters: arrivals per second, its 429s
(``answers.rate_limited``), the most arrivals in any sliding second.

A loopback HTTP/1.1 server (raw asyncio, in a child process on its own core)
answers ``POST`` after 50-200 ms (uniform, seeded), ``429`` to any request
that would put more than ``--limit`` accepted requests in the last second
(a sliding log; refused requests do not count), ``200`` with an Altcraft
body otherwise, and records every arrival on its clock. The driver (this
process) runs 64 workers over one httpx client with 64 connections; each
takes a grant from ``erasure.ratelimit.RateLimiter.auto(--max-rate)``,
posts, and reports the answer with ``observe(latency, signal)``. With
``--lower-to`` the hidden limit drops at ``--lower-at`` seconds and comes
back at ``--raise-at``.

Targets (issue 13): at least 85 % of the hidden limit (or of ``--max-rate``
when lower) within 30 s, at most 2 % of requests answered 429, never above
``--max-rate`` (grant times exactly; the server's arrival times within 2 %,
as bench/ratefidelity.py allows for the event loop's jitter). "Time to 85 %" is
the end of the first whole second (from the first grant) in which the
service accepted at least 85 % of its limit; "max 1-s rate" is the most
arrivals the server saw in any sliding one-second window.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import common as c

LATENCY_S = (0.05, 0.2)  # seconds: each answer's delay, uniform
CONCURRENCY = 64
OK_BODY = b'{"data":{"profile_id":"1"},"error":0,"error_text":"Successful operation"}'
THROTTLED_BODY = b'{"error":429,"error_text":"Too many requests"}'


# ---------------------------------------------------------------- the service


@dataclass
class Limit:
    """The hidden limit, requests per second, by seconds since the first request."""

    limit: float
    lower_to: float | None
    lower_at: float
    raise_at: float

    def at(self, since_start: float) -> float:
        if self.lower_to is not None and self.lower_at <= since_start < self.raise_at:
            return self.lower_to
        return self.limit


async def serve(limit: Limit, seed: int) -> None:
    rng = random.Random(seed)
    accepted: deque[float] = deque()  # monotonic seconds of the last second's accepted requests
    arrivals: list[tuple[float, int]] = []  # (monotonic seconds, status)
    first: list[float] = []

    def admit(now: float) -> bool:
        if not first:
            first.append(now)
        while accepted and accepted[0] <= now - 1.0:
            accepted.popleft()
        if len(accepted) + 1 <= limit.at(now - first[0]):
            accepted.append(now)
            return True
        return False

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                if length:
                    await reader.readexactly(length)
                if head.startswith(b"GET "):  # the driver asks for the arrivals at the end
                    body = json.dumps({"arrivals": arrivals}).encode()
                    status = b"200 OK"
                else:
                    now = time.monotonic()
                    ok = admit(now)
                    arrivals.append((now, 200 if ok else 429))
                    await asyncio.sleep(rng.uniform(*LATENCY_S))
                    body, status = (OK_BODY, b"200 OK") if ok else (THROTTLED_BODY, b"429 Too Many")
                writer.write(
                    b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\n"
                    b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    print(port, flush=True)
    async with server:
        await server.serve_forever()


# ---------------------------------------------------------------- the driver


async def drive(
    url: str, seconds: float, max_rate: float
) -> tuple[list[float], float, list[tuple[float, int]], dict[Any, int]]:
    """Send for ``seconds``: the grant times, the limiter's final rate, the server's
    arrivals, and the controller's cuts by cause."""
    import httpx

    from erasure.ratelimit import RateLimiter, Signal

    limiter = RateLimiter.auto(max_rate)
    grants: list[float] = []
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(limits=limits, timeout=10.0) as client:
        start = time.monotonic()

        async def worker() -> None:
            while True:
                granted = await limiter.acquire()
                if granted - start >= seconds:
                    return
                grants.append(granted)
                try:
                    answer = await client.post(url, content=b'{"token":"t","db_id":1}')
                except httpx.TimeoutException:
                    signal = Signal.TIMEOUT
                except httpx.HTTPError:
                    signal = Signal.OTHER
                else:
                    signal = (
                        Signal.THROTTLED
                        if answer.status_code == 429
                        else Signal.SERVER_ERROR
                        if answer.status_code >= 500
                        else Signal.OK
                    )
                limiter.observe(time.monotonic() - granted, signal)

        async with asyncio.TaskGroup() as tg:
            for _ in range(CONCURRENCY):
                tg.create_task(worker())
        stats = await client.get(url.rsplit("/", 1)[0] + "/stats")
    arrivals = [(float(t), int(status)) for t, status in stats.json()["arrivals"]]
    cuts = getattr(limiter.controller, "cuts", {})
    return grants, limiter.current_rate, arrivals, cuts


def first_second_at(accepted: list[float], start: float, at_least: float) -> float:
    """Seconds from ``start`` to the end of the first whole second with ``at_least`` accepted."""
    counts: dict[int, int] = {}
    for t in accepted:
        counts[int(t - start)] = counts.get(int(t - start), 0) + 1
    for second in sorted(counts):
        if counts[second] >= at_least:
            return second + 1.0
    return math.inf


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=float, default=150.0, help="hidden limit, per second")
    parser.add_argument("--seconds", type=float, default=60.0, help="seconds of sending")
    parser.add_argument("--max-rate", type=float, default=1000.0, help="max_rate_per_s")
    parser.add_argument("--lower-to", type=float, help="a lower hidden limit, per second")
    parser.add_argument("--lower-at", type=float, default=25.0, help="seconds from the start")
    parser.add_argument("--raise-at", type=float, default=45.0, help="seconds from the start")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--sandbox", action="store_true", help="erasure run against the sandbox")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    if args.sandbox:
        return through_the_sandbox(args)
    limit = Limit(args.limit, args.lower_to, args.lower_at, args.raise_at)
    if args.serve:
        asyncio.run(serve(limit, args.seed))
        return 0

    server_args = [f"--limit={args.limit:g}", f"--seed={args.seed}"]
    if args.lower_to is not None:
        server_args += [
            f"--lower-to={args.lower_to:g}",
            f"--lower-at={args.lower_at:g}",
            f"--raise-at={args.raise_at:g}",
        ]
    server_cmd = [*c.pin(c.SANDBOX_CPU), c.PYTHON, __file__, "--serve", *server_args]
    server = subprocess.Popen(server_cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        url = f"http://127.0.0.1:{server.stdout.readline().strip()}/api/v1.1/profiles/delete"
        sys.path.insert(0, str(c.ROOT))
        grants, final_rate, arrivals, cuts = asyncio.run(drive(url, args.seconds, args.max_rate))
    finally:
        server.terminate()
        server.wait(timeout=10)

    start = grants[0]
    times = [t for t, _ in arrivals]
    accepted = [t for t, status in arrivals if status == 200]
    refused = sum(1 for _, status in arrivals if status == 429)
    reachable = min(args.limit, args.max_rate)  # the rate to find: the limit, or the maximum
    to_85 = first_second_at(accepted, start, 0.85 * reachable)
    share_429 = refused / len(arrivals)
    worst = c.worst_window(times)
    worst_granted = c.worst_window(grants)
    settled = [t for t in accepted if t - start >= 30.0]
    mean_after_30 = len(settled) / (args.seconds - 30.0) if args.seconds > 30 else math.nan
    checks = [
        ("time to 85 % of the limit", f"{to_85:.0f} s", "<= 30 s", to_85 <= 30),
        ("share of requests answered 429", f"{100 * share_429:.2f} %", "<= 2 %", share_429 <= 0.02),
        (
            "max 1-s rate: grants (the limiter's clock)",
            f"{worst_granted}/s",
            f"<= {args.max_rate:g}/s",
            worst_granted <= args.max_rate,
        ),
        (
            "max 1-s rate: arrivals (the server's clock)",
            f"{worst}/s",
            f"<= {1.02 * args.max_rate:g}/s",  # loop jitter bunches sends, as in ratefidelity
            worst <= 1.02 * args.max_rate,
        ),
        (
            "mean accepted rate after 30 s",
            f"{mean_after_30:.1f}/s ({100 * mean_after_30 / reachable:.0f} %)",
            f">= {0.85 * reachable:g}/s",
            mean_after_30 >= 0.85 * reachable,
        ),
    ]
    cut_text = ", ".join(f"{n} for {cause.value}" for cause, n in cuts.items())
    if args.lower_to is not None:
        # the limit moved: judge the following, not the mean over a changing limit
        checks.pop()
        low = args.lower_to
        over = [
            s
            for s in range(int(args.lower_at), int(args.raise_at))
            if sum(1 for t in times if s <= t - start < s + 1) > 1.05 * low
        ]
        follow = (max(over) + 1 - args.lower_at) if over else 0.0
        up = first_second_at(
            [t for t in accepted if t - start >= args.raise_at],
            start + args.raise_at,
            0.85 * reachable,
        )
        checks += [
            (
                f"limit lowered to {low:g}/s: seconds until every second stays under 105 %",
                f"{follow:.0f} s",
                "<= 10 s",
                follow <= 10,
            ),
            (
                f"limit back at {args.limit:g}/s: time to 85 % of it",
                f"{up:.0f} s",
                "<= 30 s",
                up <= 30,
            ),
        ]
    rows = [(figure, value, target, c.met(ok)) for figure, value, target, ok in checks]
    moved = (
        f"; the limit drops to {args.lower_to:g}/s at {args.lower_at:g} s and is "
        f"{args.limit:g}/s again at {args.raise_at:g} s"
        if args.lower_to is not None
        else ""
    )
    c.heading(
        "Auto rate",
        f"`RateLimiter.auto({args.max_rate:g})`, {CONCURRENCY} workers over httpx, against a "
        f"loopback server with a hidden limit of {args.limit:g}/s (429 above it) and "
        f"{LATENCY_S[0] * 1000:.0f}-{LATENCY_S[1] * 1000:.0f} ms latency{moved}; "
        f"{args.seconds:g} s, {len(arrivals):,} requests, {refused:,} answered 429; the "
        f"limiter's rate at the end {final_rate:.1f}/s; its cuts: {cut_text}; "
        f"load average {c.load()}.",
    )
    print(c.table(("figure", "value", "target", "met?"), rows))
    per_second = [0] * math.ceil(args.seconds + 1)
    for t in accepted:
        per_second[min(len(per_second) - 1, int(t - start))] += 1
    print(f"\nAccepted per second: {' '.join(str(n) for n in per_second)}")
    command = c.shown([c.PYTHON, __file__, *sys.argv[1:]])
    print(f"\nCommand: `{command}`\n")
    if args.json_out:
        with args.json_out.open("a", encoding="utf-8") as f:
            for figure, value, target, ok in checks:
                record = {
                    "figure": f"auto rate, hidden limit {args.limit:g}/s: {figure}",
                    "value": value,
                    "target": target,
                    "met": ok,
                    "script": "autorate",
                }
                f.write(json.dumps(record) + "\n")
    return 0


# ---------------------------------------------------------------- the whole tool


def through_the_sandbox(args: argparse.Namespace) -> int:
    """``erasure run`` with an auto rate against the sandbox's hidden limit; the figures."""
    import tempfile

    low, high = (int(t * 1000) for t in LATENCY_S)
    sandbox_args = ["--rate-limit", f"{args.limit:g}", "--latency-ms", f"{low}-{high}"]
    with (
        tempfile.TemporaryDirectory(prefix="erasure-autorate-") as tmp,
        c.Sandbox(*sandbox_args, "--seed", str(args.seed)) as sandbox,
    ):
        folder = Path(tmp)
        # more than can be sent in the time: the run ends by its time budget
        ids = int(min(args.limit, args.max_rate) * args.seconds * 1.5) + 100
        c.write_emails(folder / "in.csv", ids)
        job = folder / "job.toml"
        job.write_text(
            f'[api]\nbase_url = "{sandbox.url}"\ntimeout_s = 10\n'
            '[input]\npath = "in.csv"\ndb_id = 1\n'
            f'[run]\nconcurrency = {CONCURRENCY}\nrate_per_s = "auto"\n'
            f"max_rate_per_s = {args.max_rate:g}\nmax_attempts = 8\n"
            '[ledger]\npath = "ledger.sqlite"\n',
            encoding="utf-8",
        )
        command = c.erasure_run(job, "--max-duration", f"{args.seconds:g}s")
        done = c.measure(command, timeout_s=args.seconds + 120).check(0, 75)
        stats = sandbox.stats()
    times = sorted(stats.get("request_times", []))
    refused = stats["answers"].get("rate_limited", 0)
    start = times[0]  # the preflight's arrival
    reachable = min(args.limit, args.max_rate)
    to_85 = first_second_at(times, start, 0.85 * reachable)
    share_429 = refused / len(times)
    worst = c.worst_window(times)
    settled = [t for t in times if t - start >= 30.0]
    span = times[-1] - start - 30.0
    mean_after_30 = len(settled) * (1 - share_429) / span if span > 0 else math.nan
    checks = [
        ("time to 85 % of the limit (arrivals)", f"{to_85:.0f} s", "<= 30 s", to_85 <= 30),
        ("share of requests answered 429", f"{100 * share_429:.2f} %", "<= 2 %", share_429 <= 0.02),
        (
            "max 1-s rate: arrivals (the sandbox's clock)",
            f"{worst}/s",
            f"<= {1.02 * args.max_rate:g}/s",
            worst <= 1.02 * args.max_rate,
        ),
        (
            "mean accepted rate after 30 s",
            f"{mean_after_30:.1f}/s ({100 * mean_after_30 / reachable:.0f} %)",
            f">= {0.85 * reachable:g}/s",
            mean_after_30 >= 0.85 * reachable,
        ),
    ]
    rows = [(figure, value, target, c.met(ok)) for figure, value, target, ok in checks]
    c.heading(
        "Auto rate through erasure run",
        f'`erasure run` with `rate_per_s = "auto"`, `max_rate_per_s = {args.max_rate:g}`, '
        f"concurrency {CONCURRENCY}, ledger on, against the sandbox with "
        f"`--rate-limit {args.limit:g} --latency-ms {low}-{high}`; {args.seconds:g} s, "
        f"{len(times):,} requests, {refused:,} answered 429; exit {done.returncode}; "
        f"client CPU {done.cpu_s:.1f} s; load average {c.load()}.",
    )
    print(c.table(("figure", "value", "target", "met?"), rows))
    per_second = [0] * math.ceil(times[-1] - start + 1)
    for t in times:
        per_second[int(t - start)] += 1
    print(f"\nArrivals per second: {' '.join(str(n) for n in per_second)}")
    print(f"\nCommand: `{c.shown([c.PYTHON, __file__, *sys.argv[1:]])}`\n")
    if args.json_out:
        with args.json_out.open("a", encoding="utf-8") as f:
            for figure, value, target, ok in checks:
                record = {
                    "figure": f"auto rate, erasure run, sandbox limit {args.limit:g}/s: {figure}",
                    "value": value,
                    "target": target,
                    "met": ok,
                    "script": "autorate",
                }
                f.write(json.dumps(record) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
