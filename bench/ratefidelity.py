"""Rate-ceiling fidelity: the worst one-second window against ``rate_per_s``.

    .venv/bin/python bench/ratefidelity.py [--rates 200 500] [--seconds 8]

For each ceiling, ``erasure run`` (concurrency 64, preflight on) sends
``ceiling * seconds`` identifiers to a zero-latency sandbox started with
``--record-times`` (on core 1; erasure on core 0). From the arrival times
the script finds the most requests in any one-second window, sliding over
every arrival (the window ``[t, t + 1 s)`` starting at each arrival), and
divides it by the ceiling. Arrival times are the server's clock, so network
jitter can only bunch requests together (it counts against erasure).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import common as c


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[200.0, 500.0])
    parser.add_argument("--seconds", type=float, default=8.0, help="seconds of sending per rate")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    rows = []
    records = []
    commands = []
    with tempfile.TemporaryDirectory(prefix="erasure-bench-") as tmp, c.Sandbox() as sb:
        folder = Path(tmp)
        for ceiling in args.rates:
            n = int(ceiling * args.seconds)
            tag = f"{ceiling:g}"
            c.write_emails(folder / f"in-{tag}.csv", n)
            job = c.write_job(
                folder,
                sb.url,
                name=f"job-{tag}.toml",
                input_path=f"in-{tag}.csv",
                ledger=f"ledger-{tag}.sqlite",
                rate_per_s=ceiling,
            )
            m = c.measure(c.erasure_run(job), timeout_s=args.seconds * 10 + 60).check()
            arrivals = sb.arrivals(m.started_at, m.started_at + m.wall_s + 1)
            if len(arrivals) != n + 1:
                raise SystemExit(f"rate {tag}: {len(arrivals)} requests, not {n + 1}")
            worst = c.worst_window(arrivals)
            ratio = worst / ceiling
            mean = c.rate(arrivals)
            rows.append(
                (
                    f"{ceiling:,.0f}",
                    f"{n + 1:,}",
                    f"{mean:,.1f}",
                    f"{worst:,}",
                    f"{ratio:.3f}",
                    "<= 1.02",
                    c.met(ratio <= 1.02),
                )
            )
            records.append(
                {
                    "figure": f"rate ceiling {ceiling:g}/s: worst 1-s window / ceiling",
                    "value": f"{ratio:.3f} ({worst} requests)",
                    "target": "<= 1.02",
                    "met": ratio <= 1.02,
                    "script": "ratefidelity",
                }
            )
            names = {"TMP": str(folder), "URL": sb.url}
            commands.append(c.shown(c.pin(c.CLIENT_CPU) + c.erasure_run(job), **names))
        sandbox = c.shown(sb.command, URL=sb.url)
    c.heading(
        "Rate-ceiling fidelity",
        f"concurrency 64, zero-latency sandbox, about {args.seconds:g} s of sending per "
        f"ceiling (preflight included: it passes the limiter too); load average {c.load()}.",
    )
    print(
        c.table(
            (
                "rate_per_s",
                "requests",
                "mean rate /s",
                "worst 1-s window",
                "worst / ceiling",
                "target",
                "met?",
            ),
            rows,
        )
    )
    print("\nCommands:\n")
    for command in commands:
        print(f"- `{command}`")
    print(f"- sandbox: `{sandbox}`\n")
    if args.json_out:
        with args.json_out.open("a", encoding="utf-8") as f:
            f.writelines(json.dumps(r) + "\n" for r in records)
    return 0


if __name__ == "__main__":
    sys.exit(main())
