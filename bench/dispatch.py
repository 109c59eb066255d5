"""Dispatch rate: ``erasure run`` against the zero-latency sandbox, and at 50 ms latency.

    .venv/bin/python bench/dispatch.py [--ids 20000] [--rounds 2] [--latency-ids 6000]

One sandbox (``--record-times``) on core 1; every client on core 0, one
after the other, in interleaved rounds, all posting deletes of emails no
profile has (answered not found, so that every client meets the same
server state):

- ``erasure run`` (the CLI, a subprocess): ledger on, preflight on,
  concurrency 64, ``rate_per_s`` 1,000,000;
- the same run assembled in-process as ``erasure.app.run`` does
  (``common.run_in_process``), once with the real ledger and once with
  ``common.NullLedger`` (recording switched off): the ledger's cost;
- a bare aiohttp worker loop: 64 workers, one ``ClientSession``, the same
  JSON bodies (``erasure.altcraft.encode``) encoded beforehand: no intake,
  no ledger, no rate limiter, no classification;
- wrk (``bench/sandbox_unknown.lua``, 64 connections), when installed: the
  sandbox's own ceiling on one core.

A rate is identifiers over the time from the first request's arrival at
the sandbox (the preflight's, for erasure) to the last one's. The best of
the rounds is reported: other work on the machine only ever lowers a rate.
Then, for each ``--latency-points`` MS:CONCURRENCY (50:64 and 200:256), a
sandbox with ``--latency-ms MS`` and an ``erasure run`` at that concurrency
(``--latency-ids`` identifiers at 50 ms, proportionally more when slower):
the rate against the ideal CONCURRENCY / MS, read two ways. The delete
rate, from the first delete's arrival to the last one's, is the client's
latency-bound efficiency, whatever the run's length: the target applies to
it. The whole run, from the preflight's arrival, adds the run's start (the
preflight's round trip and the first commit, about 61 ms at 50 ms: 1.2 % of
a 6,000-identifier run, 0.1 % of a nightly 60,000) and is shown beside it.
``--latency-only`` skips the zero-latency part.

Where the time goes at 50 ms (py-spy and timestamps, 6,000 ids, pinned to
one core): a worker starts its next request 0.03 ms after an answer; the
rest of its cycle is inside the send, 52.3 ms on average against the bare
aiohttp loop's 51.4: httpx's request and response objects over aiohttp
(about 100 µs more CPU a request than bare aiohttp, bench/transport.py)
and the event loop's queue, three times busier than the bare loop's. The
ledger's writer commits every 20 ms at most (group commit), on the same
core.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import common as c

RATE_TARGET = 1_500  # deletes/s, erasure run at zero latency with the ledger on (issue 13)
SANDBOX_CAP = 0.9  # the sandbox used this share of its core: it, not the client, set the pace


@dataclass
class Variant:
    name: str
    explain: str
    command: list[str]
    ledger: Path | None = None  # removed before each run
    rates: list[float] = field(default_factory=list)
    server_cpu: list[float] = field(default_factory=list)  # share of the sandbox's core
    client_cpu_us: list[float] = field(default_factory=list)  # client CPU per delete, µs
    runs: list[str] = field(default_factory=list)

    def best(self) -> int:
        return max(range(len(self.rates)), key=self.rates.__getitem__) if self.rates else -1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ids", type=int, default=20_000, help="identifiers per run (20000)")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds (2)")
    parser.add_argument("--wrk-s", type=int, default=5, help="seconds of wrk per round (5)")
    parser.add_argument(
        "--latency-ids", type=int, default=6_000, help="identifiers at 50 ms, more when slower"
    )
    parser.add_argument(
        "--latency-points",
        default="50:64,200:256",
        help="latency-bound runs as MS:CONCURRENCY, comma-separated (50:64,200:256)",
    )
    parser.add_argument("--latency-only", action="store_true", help="skip the zero-latency part")
    parser.add_argument("--json-out", type=Path, help="append summary figures (JSON lines) here")
    parser.add_argument("--child", choices=("aiohttp", "runner-on", "runner-off"))
    parser.add_argument("--url")
    parser.add_argument("--job")
    args = parser.parse_args()
    if args.child == "aiohttp":
        factory = None
        if c.loop_options().get("use_uvloop"):
            import uvloop

            factory = uvloop.new_event_loop
        with asyncio.Runner(loop_factory=factory) as loop:
            print(json.dumps(loop.run(bare_aiohttp(args.url, args.ids, args.concurrency))))
        return 0
    if args.child:
        result = c.run_in_process(args.job, record=args.child == "runner-on")
        print(json.dumps(result))
        return 0
    with tempfile.TemporaryDirectory(prefix="erasure-bench-") as tmp:
        folder = Path(tmp)
        summary = [] if args.latency_only else zero_latency(folder, args)
        for point in filter(None, args.latency_points.split(",")):
            ms, conc = point.split(":")
            summary += latency_bound(folder, args, float(ms), int(conc))
    if args.json_out:
        with args.json_out.open("a", encoding="utf-8") as f:
            f.writelines(json.dumps(s) + "\n" for s in summary)
    return 0


# ---------------------------------------------------------------- the bare loop


async def bare_aiohttp(url: str, ids: int, concurrency: int) -> dict[str, float]:
    """``ids`` deletes on ``concurrency`` workers over one session; wall and CPU seconds."""
    import aiohttp

    from erasure.altcraft import PATH, DeleteRequest, encode

    bodies = [
        encode(DeleteRequest(1, "email", f"nobody{i}@example.org"), c.TOKEN, "json")[0]
        for i in range(ids)
    ]
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {c.TOKEN}"}
    todo = iter(bodies)
    statuses: dict[int, int] = {}
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=concurrency), headers=headers
    ) as session:

        async def worker() -> None:
            for body in todo:
                async with session.post(url + PATH, data=body) as answer:
                    await answer.read()
                    statuses[answer.status] = statuses.get(answer.status, 0) + 1

        t0, c0 = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    if set(statuses) - {200, 404}:
        raise SystemExit(f"unexpected answers: {statuses}")
    return {"n": ids, "wall_s": wall, "cpu_s": cpu}


# ---------------------------------------------------------------- zero latency


def zero_latency(folder: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    n, conc = args.ids, args.concurrency
    c.write_emails(folder / "in.csv", n)
    me = [c.PYTHON, str(Path(__file__).resolve())]
    with c.Sandbox() as sb:
        jobs = {
            name: c.write_job(
                folder, sb.url, name=f"{name}.toml", ledger=f"{name}.sqlite", concurrency=conc
            )
            for name in ("cli", "runner-on", "runner-off")
        }
        variants = [
            Variant(
                "erasure run (CLI), ledger on",
                "the product, as an operator runs it; preflight on",
                c.erasure_run(jobs["cli"]),
                folder / "cli.sqlite",
            ),
            Variant(
                "erasure Runner in-process, ledger on",
                "the same run assembled as app.run does; the real Ledger",
                [*me, "--child", "runner-on", "--job", str(jobs["runner-on"])],
                folder / "runner-on.sqlite",
            ),
            Variant(
                "erasure Runner in-process, ledger off",
                "as above with NullLedger: events built and batched, append() keeps nothing",
                [*me, "--child", "runner-off", "--job", str(jobs["runner-off"])],
            ),
            Variant(
                "bare aiohttp worker loop",
                f"{conc} workers, one ClientSession, bodies encoded beforehand, the event "
                f"loop erasure uses ({c.loop_name()}); no intake, no ledger, no limiter",
                [
                    *me,
                    "--child",
                    "aiohttp",
                    "--url",
                    sb.url,
                    "--ids",
                    str(n),
                    "--concurrency",
                    str(conc),
                ],
            ),
        ]
        if shutil.which("wrk"):
            wrk = ["wrk", "-t1", f"-c{conc}", f"-d{args.wrk_s}s", "-s"]
            wrk += [str(c.HERE / "sandbox_unknown.lua"), sb.url]
            variants.append(
                Variant("wrk", "load generator in C: the sandbox's ceiling on its core", wrk)
            )
        # warm the server (and the page cache of the interpreter) before the first figure
        c.measure([*variants[3].command[:-4], "--url", sb.url, "--ids", "2000"]).check()
        loads = []
        for _ in range(args.rounds):
            for v in variants:
                loads.append(float(c.load()))
                one_run(sb, v, n)
    return report_zero_latency(variants, args, loads, folder, sb.url)


def one_run(sb: c.Sandbox, v: Variant, n: int) -> None:
    if v.ledger is not None:
        for suffix in ("", "-wal", "-shm", ".lock"):
            Path(str(v.ledger) + suffix).unlink(missing_ok=True)
    cpu0 = sb.cpu_s()
    m = c.measure(v.command).check()
    cpu1 = sb.cpu_s()
    arrivals = sb.arrivals(m.started_at, m.started_at + m.wall_s + 1)
    span = arrivals[-1] - arrivals[0] if len(arrivals) > 1 else 0.0
    count = len(arrivals)
    if v.name.startswith("erasure"):
        finished = m.event("erasure.run.finished")
        result = json.loads(m.stdout) if m.stdout.strip().startswith("{") else finished
        assert result is not None, m.stderr[-2000:]
        if result["outcomes"]["not_found"] != n or count != n + 1:
            raise SystemExit(f"{v.name}: expected {n} not found and {n + 1} requests: {result}")
        cpu = result.get("run_cpu_s", m.cpu_s)
        v.runs.append(f"duration_s {result['duration_s']}")
    elif v.name.startswith("bare"):
        result = json.loads(m.stdout)
        cpu = result["cpu_s"]
    else:
        cpu = m.cpu_s
    v.rates.append(c.rate(arrivals))
    v.server_cpu.append((cpu1 - cpu0) / span if span else 0.0)
    v.client_cpu_us.append(cpu / count * 1e6 if count else 0.0)


def report_zero_latency(
    variants: list[Variant], args: argparse.Namespace, loads: list[float], folder: Path, url: str
) -> list[dict[str, Any]]:
    cli, on, off = variants[0], variants[1], variants[2]
    bare = variants[3]
    wrk = variants[4] if len(variants) > 4 else None

    def best(v: Variant) -> float:
        return v.rates[v.best()]

    bare_capped = bare.server_cpu[bare.best()] >= SANDBOX_CAP or (
        wrk is not None and best(bare) >= 0.9 * best(wrk)
    )
    c.heading(
        "Dispatch rate, zero-latency sandbox",
        f"{args.ids:,} identifiers (emails no profile has: every answer is not found), "
        f"concurrency {args.concurrency}, rate_per_s 1,000,000; sandbox on core {c.SANDBOX_CPU} "
        f"(`taskset`), every client on core {c.CLIENT_CPU}, so that client and server never "
        f"share a core (erasure's ledger thread shares the client's core). Best of "
        f"{args.rounds} interleaved rounds; load average during the rounds "
        f"{min(loads):.2f}-{max(loads):.2f} (other work on this 2-core machine lowers every "
        "figure; the ratios between clients measured side by side are the figures to trust).",
    )
    rows = []
    for v in variants:
        i = v.best()
        rows.append(
            (
                v.name,
                f"{best(v):,.0f}",
                " / ".join(f"{r:,.0f}" for r in v.rates),
                f"{v.server_cpu[i]:.0%}",
                f"{v.client_cpu_us[i]:,.0f}",
                v.explain,
            )
        )
    print(
        c.table(
            (
                "client",
                "deletes/s (best)",
                "each round",
                "sandbox CPU",
                "client CPU µs/delete",
                "what it is",
            ),
            rows,
        )
    )
    print(
        "\ndeletes/s: identifiers over first to last arrival at the sandbox (from its "
        "`--record-times` log, cut to the client's run). sandbox CPU: the sandbox's CPU time "
        "over that span, 100 % = its core is the bottleneck. client CPU: the client "
        "process's CPU time per delete (for the CLI including interpreter start-up, imports and "
        "intake; for the in-process runs and aiohttp only the sending).\n"
    )
    summary: list[dict[str, Any]] = []
    figures = []
    # issue 13: one library transport for every route, at least 1,500 deletes/s
    rate_ok = best(cli) >= RATE_TARGET
    target = f">= {RATE_TARGET:,}"
    figures.append(("erasure run, ledger on, deletes/s", f"{best(cli):,.0f}", target, rate_ok))
    summary.append(
        _fig(
            "erasure run, zero latency, ledger on (deletes/s)",
            f"{best(cli):,.0f}",
            target,
            rate_ok,
        )
    )
    ratio = best(cli) / best(bare)
    # Reported beside the bare loop, with no target of its own since issue 13:
    # the delete goes through a library transport (httpx over httpx-aiohttp),
    # which costs several times the CPU of our former hand-written client;
    # the end-to-end rate (>= 1,500/s) is the target now.
    per_round = " / ".join(f"{a / b:.0%}" for a, b in zip(cli.rates, bare.rates, strict=True))
    if bare_capped:
        text = (
            f"not reported: the bare loop is capped by the sandbox ({best(bare):,.0f}/s, "
            f"sandbox CPU {bare.server_cpu[bare.best()]:.0%}"
            + (f", wrk {best(wrk):,.0f}/s" if wrk else "")
            + f"); {ratio:.0%} is an upper bound"
        )
        figures.append(("erasure / bare aiohttp", text, "", None))
        summary.append(_fig("erasure / bare aiohttp", text, "", None))
        cpu_ratio = bare.client_cpu_us[bare.best()] / on.client_cpu_us[on.best()]
        figures.append(
            (
                "bare aiohttp / erasure, client CPU per delete (server-independent)",
                f"{cpu_ratio:.0%}",
                "",
                None,
            )
        )
        summary.append(
            _fig(
                "client CPU per delete: bare aiohttp / erasure Runner (ledger on)",
                f"{cpu_ratio:.0%}",
                "",
                None,
            )
        )
    else:
        figures.append(
            (
                "erasure / bare aiohttp (best / best; round by round in brackets)",
                f"{ratio:.0%} ({per_round})",
                "",
                None,
            )
        )
        summary.append(
            _fig(
                "erasure / bare aiohttp, same sandbox, same run",
                f"{ratio:.0%} (round by round {per_round})",
                "",
                None,
            )
        )
    led = best(on) / best(off)
    figures.append(
        ("ledger on / ledger off (in-process Runner)", f"{led:.0%}", "> 50 %", led > 0.5)
    )
    summary.append(_fig("ledger on / ledger off, zero latency", f"{led:.0%}", "> 50 %", led > 0.5))
    if wrk is not None:
        figures.append(
            ("erasure / wrk (the sandbox's ceiling)", f"{best(cli) / best(wrk):.0%}", "", None)
        )
        figures.append(("bare aiohttp / wrk", f"{best(bare) / best(wrk):.0%}", "", None))
    figures.append(
        (
            "CLI / in-process Runner, ledger on (harness check: the same run; a gap is noise)",
            f"{best(cli) / best(on):.0%}",
            "~100 %",
            None,
        )
    )
    print(
        c.table(
            ("ratio", "measured", "target", "met?"),
            [(a, b, t, c.met(ok)) for a, b, t, ok in figures],
        )
    )
    names = {"TMP": str(folder), "URL": url}
    print("\nCommands:\n")
    for v in variants:
        print(f"- {v.name}: `{c.shown(c.pin(c.CLIENT_CPU) + v.command, **names)}`")
    print(f"- sandbox: `{c.shown(c.Sandbox().command, **names)}`")
    print()
    return summary


# ---------------------------------------------------------------- latency bound


def latency_bound(
    folder: Path, args: argparse.Namespace, latency_ms: float, conc: int
) -> list[dict[str, Any]]:
    """``erasure run`` at ``conc`` against a sandbox answering after ``latency_ms``.

    The identifiers grow with the latency (``--latency-ids`` at 50 ms), so
    that the preflight's one round trip and the last partial round weigh
    the same share of every run.
    """
    n = int(args.latency_ids * max(1.0, latency_ms / 50.0))
    c.write_emails(folder / "lat.csv", n)
    ideal = conc / (latency_ms / 1000)
    me = [c.PYTHON, str(Path(__file__).resolve())]
    with c.Sandbox("--latency-ms", f"{latency_ms:g}") as sb:
        job = c.write_job(
            folder,
            sb.url,
            name="lat.toml",
            input_path="lat.csv",
            ledger="lat.sqlite",
            concurrency=conc,
        )
        bare = [*me, "--child", "aiohttp", "--url", sb.url, "--ids", str(n)]
        bare += ["--concurrency", str(conc)]
        clients = {"erasure run": c.erasure_run(job), "bare aiohttp": bare}
        if shutil.which("wrk"):
            clients["wrk"] = ["wrk", "-t1", f"-c{conc}", f"-d{args.wrk_s}s", "-s"]
            clients["wrk"] += [str(c.HERE / "sandbox_unknown.lua"), sb.url]
        rates: dict[str, list[float]] = {name: [] for name in clients}  # the delete rate
        whole: dict[str, list[float]] = {name: [] for name in clients}  # from the preflight
        durations = []
        for _ in range(args.rounds):
            for name, command in clients.items():
                for suffix in ("", "-wal", "-shm", ".lock"):
                    Path(str(folder / "lat.sqlite") + suffix).unlink(missing_ok=True)
                m = c.measure(command).check()
                arrivals = sorted(sb.arrivals(m.started_at, m.started_at + m.wall_s + 1))
                if name == "erasure run":
                    assert len(arrivals) == n + 1, len(arrivals)
                    durations.append((m.event("erasure.run.finished") or {}).get("duration_s"))
                    whole[name].append(c.rate(arrivals, n))
                    arrivals = arrivals[1:]  # the preflight's
                else:
                    whole[name].append(c.rate(arrivals))
                rates[name].append(c.rate(arrivals))
        names = {"TMP": str(folder), "URL": sb.url}
        shown = {k: c.shown(c.pin(c.CLIENT_CPU) + v, **names) for k, v in clients.items()}
        sandbox = c.shown(sb.command, **names)
    best = {k: max(v) for k, v in rates.items()}
    best_whole = {k: max(v) for k, v in whole.items()}
    rate = best["erasure run"]
    share = rate / ideal
    c.heading(
        "Latency-bound efficiency",
        f"sandbox `--latency-ms {latency_ms:g}`, {n:,} identifiers, concurrency {conc}: "
        f"the ideal is {conc} / {latency_ms / 1000:g} s = {ideal:,.0f} deletes/s. The delete "
        "rate: deletes over the first delete's arrival to the last one's, which for a "
        "perfect client equals the ideal; the target applies to it. The whole run: from "
        "the first arrival (for erasure the preflight's), so it also holds the run's start, "
        f"whose weight shrinks as runs grow. The bare aiohttp loop and wrk ({conc} "
        "connections) against the same sandbox show what the sandbox itself allows: it "
        f"answers a little later than {latency_ms:g} ms. Best of {args.rounds}; load "
        f"average {c.load()}.",
    )
    rows = []
    for name, values in rates.items():
        each = " / ".join(f"{r:,.0f}" for r in values)
        each_whole = " / ".join(f"{r:,.0f}" for r in whole[name])
        target = f">= 95 % ({0.95 * ideal:,.0f})" if name == "erasure run" else ""
        ok = c.met(share >= 0.95) if name == "erasure run" else "n/a"
        rows.append(
            (
                name,
                f"{best[name]:,.0f} ({each})",
                f"{best[name] / ideal:.1%}",
                f"{best_whole[name]:,.0f} ({each_whole}), {best_whole[name] / ideal:.1%}",
                target,
                ok,
            )
        )
    for name in ("wrk", "bare aiohttp"):
        if name in best:
            rows.append((f"erasure / {name}", f"{rate / best[name]:.1%}", "", "", "", "n/a"))
    headers = (
        "client",
        "delete rate, deletes/s (each round)",
        "share of the ideal",
        "whole run, deletes/s (each round), share",
        "target",
        "met?",
    )
    print(c.table(headers, rows))
    if durations and durations[0]:
        print(f"\nerasure's own clock (`duration_s` of `erasure.run.finished`): {durations} s.")
    print("\nCommands:\n")
    for name, command in shown.items():
        print(f"- {name}: `{command}`")
    print(f"- sandbox: `{sandbox}`\n")
    ref = f"; wrk {best['wrk'] / ideal:.1%}" if "wrk" in best else ""
    run_whole = best_whole["erasure run"]
    return [
        _fig(
            f"latency-bound ({latency_ms:g} ms, concurrency {conc}): delete rate, share of "
            f"{ideal:,.0f}/s",
            f"{share:.1%} ({rate:,.0f}/s; bare aiohttp {best['bare aiohttp'] / ideal:.1%}{ref})",
            ">= 95 %",
            share >= 0.95,
        ),
        _fig(
            f"latency-bound ({latency_ms:g} ms, concurrency {conc}): whole run of {n:,} from "
            "the preflight, share of the ideal",
            f"{run_whole / ideal:.1%} ({run_whole:,.0f}/s)",
            "",
            None,
        ),
    ]


def _fig(figure: str, value: str, target: str, ok: bool | None) -> dict[str, Any]:
    return {"figure": figure, "value": value, "target": target, "met": ok, "script": "dispatch"}


if __name__ == "__main__":
    sys.exit(main())
