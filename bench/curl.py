"""erasure against ``xargs -P 64 curl`` doing the same deletes.

    .venv/bin/python bench/curl.py [--ids 2000] [--rounds 2]

One sandbox on core 1 (``--record-times``); on core 0, in turn:

- ``xargs -d '\\n' -P 64 -I{} curl -s -o /dev/null ... --data-raw {} URL``
  over a file of JSON bodies, one line and one curl process per identifier
  (the bodies are those erasure sends: ``erasure.altcraft.encode``);
- ``erasure run`` (the CLI: ledger on, preflight on, concurrency 64,
  ``rate_per_s`` 1,000,000) over the same identifiers.

Every identifier is an email no profile has, so both meet the same server
state. A rate is identifiers over first to last arrival at the sandbox; the
best of the interleaved rounds is reported.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import common as c


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ids", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    if shutil.which("curl") is None:
        print("### erasure against xargs -P 64 curl\n\ncurl is not installed: skipped.\n")
        return 0
    from erasure.altcraft import PATH, DeleteRequest, encode

    with tempfile.TemporaryDirectory(prefix="erasure-bench-") as tmp:
        folder = Path(tmp)
        c.write_emails(folder / "in.csv", args.ids)
        bodies = folder / "bodies.jsonl"
        bodies.write_bytes(
            b"".join(
                encode(DeleteRequest(1, "email", f"nobody{i}@example.org"), c.TOKEN, "json")[0]
                + b"\n"
                for i in range(args.ids)
            )
        )
        with c.Sandbox() as sb:
            job = c.write_job(folder, sb.url)
            ledger = folder / "ledger.sqlite"
            curl = (
                f"xargs -d '\\n' -P 64 -I{{}} curl -s -o /dev/null -X POST "
                f"-H 'Content-Type: application/json' -H 'Authorization: Bearer {c.TOKEN}' "
                f"--data-raw {{}} {sb.url}{PATH} < {bodies}"
            )
            commands = {"curl": ["sh", "-c", curl], "erasure": c.erasure_run(job)}
            rates: dict[str, list[float]] = {"curl": [], "erasure": []}
            for _ in range(args.rounds):
                for name, command in commands.items():
                    for suffix in ("", "-wal", "-shm", ".lock"):
                        Path(str(ledger) + suffix).unlink(missing_ok=True)
                    m = c.measure(command, timeout_s=300).check()
                    arrivals = sb.arrivals(m.started_at, m.started_at + m.wall_s + 1)
                    expected = args.ids + (name == "erasure")  # the preflight
                    if len(arrivals) != expected:
                        raise SystemExit(f"{name}: {len(arrivals)} requests, not {expected}")
                    rates[name].append(c.rate(arrivals, args.ids))
            names = {"TMP": str(folder), "URL": sb.url}
            pinned = " ".join(c.pin(c.CLIENT_CPU))
            shown = {
                "curl": c.shown(f'{pinned} sh -c "{curl}"', **names),
                "erasure": c.shown(c.pin(c.CLIENT_CPU) + commands["erasure"], **names),
            }
            sandbox = c.shown(sb.command, **names)
    best = {k: max(v) for k, v in rates.items()}
    times = best["erasure"] / best["curl"]
    c.heading(
        "erasure against xargs -P 64 curl",
        f"{args.ids:,} identifiers (emails no profile has), both clients on core "
        f"{c.CLIENT_CPU}, the sandbox on core {c.SANDBOX_CPU}; best of {args.rounds} "
        f"interleaved rounds; load average {c.load()} (it counts the 64 curl processes "
        "themselves).",
    )
    print(
        c.table(
            ("client", "deletes/s (best)", "each round", "target", "met?"),
            [
                (
                    "xargs -P 64 curl",
                    f"{best['curl']:,.0f}",
                    " / ".join(f"{r:,.0f}" for r in rates["curl"]),
                    "",
                    "",
                ),
                (
                    "erasure run (ledger on)",
                    f"{best['erasure']:,.0f}",
                    " / ".join(f"{r:,.0f}" for r in rates["erasure"]),
                    "",
                    "",
                ),
                ("erasure / curl", f"{times:.1f}x", "", ">= 5x", c.met(times >= 5)),
            ],
        )
    )
    print("\nCommands (`$TMP/bodies.jsonl`: one JSON body per line):\n")
    for name, command in shown.items():
        print(f"- {name}: `{command}`")
    print(f"- sandbox: `{sandbox}`\n")
    if args.json_out:
        with args.json_out.open("a", encoding="utf-8") as f:
            record = {
                "figure": "erasure / xargs -P 64 curl, same deletes",
                "value": f"{times:.1f}x ({best['erasure']:,.0f} vs {best['curl']:,.0f}/s)",
                "target": ">= 5x",
                "met": times >= 5,
                "script": "curl",
            }
            f.write(json.dumps(record) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
