"""`make demo`: the whole tool on the bundled sandbox, in one command.

Starts the sandbox on a free loopback port with the sample profiles and a
few faults switched on (so that retries show), validates and erases the
sample request file, writes the HTML report, verifies the ledger, stops the
sandbox and prints where the report is and what the exit code means.
Everything it writes goes to demo-out/ (removed at the start, so the demo
can be run again).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from erasure.errors import MEANINGS

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "demo-out"


def erasure(*args: str, env: dict[str, str]) -> int:
    cmd = [sys.executable, "-m", "erasure", *args]
    print("$ erasure " + " ".join(args), flush=True)
    return subprocess.run(cmd, env=env, cwd=ROOT, check=False).returncode


def main() -> int:
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir()
    env = dict(os.environ)
    env.setdefault("ALTCRAFT_TOKEN", "sandbox-token")
    env.setdefault("ERASURE_LEDGER_KEY", "demo-ledger-key-not-for-production")
    sandbox = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "erasure",
            "sandbox",
            "--port",
            "0",
            "--profiles",
            str(ROOT / "sample_data" / "profiles.csv"),
            "--latency-ms",
            "20",
            "--latency-jitter-ms",
            "10",
            "--fail-5xx",
            "0.08",
            "--fail-429",
            "0.05",
            "--retry-after",
            "1",
            "--seed",
            "7",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    try:
        assert sandbox.stdout is not None
        first = sandbox.stdout.readline().strip()
        match = re.fullmatch(r"listening on (http://\S+)", first)
        if not match:
            print(f"demo: the sandbox did not start ({first!r})", file=sys.stderr)
            return 70
        url = match.group(1)
        print(f"sandbox: {url} (sample profiles, 8% 5xx and 5% 429 answers)")
        job = (ROOT / "jobs" / "demo.toml").read_text(encoding="utf-8")
        job = re.sub(r'base_url = "[^"]*"', f'base_url = "{url}"', job)
        job = job.replace('"../sample_data/', f'"{ROOT}/sample_data/')
        job_path = OUT / "demo.toml"
        job_path.write_text(job, encoding="utf-8")
        erasure("validate", str(job_path), env=env)
        code = erasure("run", str(job_path), "--log-format", "console", env=env)
        erasure("status", str(job_path), env=env)
        report = OUT / "report.html"
        erasure("report", str(job_path), "--out", str(report), env=env)
        erasure("report", str(job_path), "--out", str(OUT / "report.csv"), env=env)
        erasure("verify", str(job_path), env=env)
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=10)
    print()
    print(f"report: {report}")
    print(f"run exit code {code}: {MEANINGS.get(code, 'see the README, Exit codes')}")
    return 0 if code in (0, 1) else code


if __name__ == "__main__":
    raise SystemExit(main())
