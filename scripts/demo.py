"""`make demo`: the whole tool on the bundled sandbox, in one command.

Starts the sandbox on a free loopback port with the sample profiles and a
few faults switched on (so that retries show), validates and erases the
sample request file, writes the HTML report, verifies the ledger, stops the
sandbox and prints where the report is and what the exit code means.
Everything it writes goes to demo-out/ (removed at the start, so the demo
can be run again).

Then, after the delete (issue 15): the sandbox restores a backup (a few
erased profiles come back with their ids), ``sweep`` finds them in an
export and erases them again, ``screen`` cleans a new import file of the
people already erased, and one request's receipt is signed and checked
(with the ledger, and without any secret).
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request
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
        job += AFTER.format(key=OUT / "receipts.key")
        job_path.write_text(job, encoding="utf-8")
        erasure("validate", str(job_path), env=env)
        code = erasure("run", str(job_path), "--log-format", "console", env=env)
        erasure("status", str(job_path), env=env)
        report = OUT / "report.html"
        erasure("report", str(job_path), "--out", str(report), env=env)
        erasure("report", str(job_path), "--out", str(OUT / "report.csv"), env=env)
        erasure("verify", str(job_path), env=env)
        after_the_delete(url, job_path, env)
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=10)
    print()
    print(f"report: {report}")
    print(f"run exit code {code}: {MEANINGS.get(code, 'see the README, Exit codes')}")
    return 0 if code in (0, 1) else code


AFTER = """
[receipts]
signing_key_file = "{key}"
issuer = "Demo LLC, DPO office"

[sweep]
db_id = 1
profile_id_column = "_id"
columns = {{ email = "email", phone = "phone" }}
"""


def _admin(url: str, path: str, body: dict[str, object] | None = None) -> bytes:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"} if data else {}
    request = urllib.request.Request(url + path, data=data, headers=headers)
    with urllib.request.urlopen(request, timeout=30) as answer:  # loopback only
        result: bytes = answer.read()
    return result


def after_the_delete(url: str, job_path: Path, env: dict[str, str]) -> None:
    """Sweep after a restored backup, screen an import, issue and check a receipt."""
    print("\n# after the delete: a backup is restored and three erased profiles come back")
    restored = json.loads(_admin(url, "/__sandbox/restore", {"last": 3}))["restored"]
    print(f"sandbox: restored {len(restored)} profiles")
    export = OUT / "altcraft-export.csv"
    export.write_bytes(_admin(url, "/__sandbox/export?db_id=1"))
    erasure("sweep", str(job_path), "--export", str(export), "--dry-run", env=env)
    erasure("sweep", str(job_path), "--export", str(export), "--log-format", "console", env=env)
    export.write_bytes(_admin(url, "/__sandbox/export?db_id=1"))
    erasure("sweep", str(job_path), "--export", str(export), env=env)

    print("\n# a new import file: screen it before it goes into Altcraft")
    with (ROOT / "sample_data" / "requests.csv").open(encoding="utf-8", newline="") as f:
        erased = [row["email"] for row in csv.DictReader(f) if row["email"]][:3]
    new_people = ["new.customer1@example.org", "new.customer2@example.org"]
    source = OUT / "crm-import.csv"
    source.write_text(
        "email,source\n" + "".join(f"{e},crm\n" for e in [*erased, *new_people]),
        encoding="utf-8",
    )
    erasure("screen", str(job_path), "--input", str(source), "--out",
            str(OUT / "crm-import.clean.csv"), env=env)  # fmt: skip

    print("\n# a receipt for one request, signed, then checked")
    erasure("keygen", "--out", str(OUT / "receipts.key"), env=env)
    receipt = OUT / "receipt-DSR-20240001.html"
    erasure("receipt", str(job_path), "--request-id", "DSR-20240001", "--out", str(receipt),
            env=env)  # fmt: skip
    public = str(OUT / "receipts.key.pub")
    erasure("check-receipt", str(receipt), "--public-key", public, "--job", str(job_path),
            env={k: v for k, v in env.items() if k != "ERASURE_LEDGER_KEY"})  # fmt: skip
    print(f"receipt: {receipt}")


if __name__ == "__main__":
    raise SystemExit(main())
