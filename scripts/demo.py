"""`make demo`: the whole tool on the bundled sandbox, in one command.

Starts the sandbox on a free loopback port with the sample profiles and a
few faults switched on (so that retries show), validates and erases the
sample request file, writes the HTML report, verifies the ledger, stops the
sandbox and prints where the report is and what the exit code means.
Everything it writes goes to demo-out/ (removed at the start, so the demo
can be run again).

The request file is sample_data/requests.csv with its dates moved to the
last four weeks (each cell keeps its own format; cells that are not dates
stay as they are), so that the report's deadlines mean something today; one
request, :data:`LATE`, is dated 45 days back on purpose, so that the report
shows what a request finished after its deadline looks like.

Then, after the delete (issue 15): the sandbox restores a backup (a few
erased profiles come back with their ids), ``sweep`` finds them in an
export and erases them again, ``screen`` cleans a new import file of the
people already erased, and one request's receipt is signed and checked
(with the ledger, and without any secret).

Last, four eyes (issue 23), on a ledger of its own so that the main one stays
free of an approval policy: three new people ask to be erased; a legal hold
stops one of them; the planner writes a signed plan, a second person (the
DPO's key) approves it, and the run sends exactly the approved deletes.
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
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from erasure.errors import MEANINGS

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "demo-out"
REQUESTS = OUT / "requests.csv"  # jobs/demo.toml reads it; written by requests_as_of()
LEDGER_KEY = "demo-ledger-key-not-for-production"  # jobs/demo.toml's "try it by hand" uses it
LATE = "DSR-20240002"  # received 45 days ago: finished late, on purpose
_FORMATS = ("%d.%m.%Y", "%Y-%m-%d")  # the sample's two date spellings, each kept as it was


def requests_as_of(
    today: date, source: Path = ROOT / "sample_data" / "requests.csv", out: Path = REQUESTS
) -> Path:
    """The sample requests with received_at moved to the four weeks before ``today``.

    The sample is dated 1-28 May 2024: day N becomes ``today - (29 - N)`` days,
    so that every deadline (30 days) is still ahead, except :data:`LATE`'s.
    """
    with source.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
        fields = list(rows[0])
    for row in rows:
        for spelling in _FORMATS:
            try:
                was = datetime.strptime(row["received_at"].strip(), spelling).date()
            except ValueError:
                continue
            moved = today - timedelta(days=45 if row["ticket"] == LATE else 29 - was.day)
            row["received_at"] = moved.strftime(spelling)
            break
    with out.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return out


def erasure(*args: str, env: dict[str, str]) -> int:
    cmd = [sys.executable, "-m", "erasure", *args]
    print("$ erasure " + " ".join(args), flush=True)
    return subprocess.run(cmd, env=env, cwd=ROOT, check=False).returncode


def demo_env(base: dict[str, str]) -> dict[str, str]:
    """``base`` with the demo's own token and ledger key, whatever ``base`` holds.

    An operator's real ``ALTCRAFT_TOKEN`` or ``ERASURE_LEDGER_KEY`` in the
    shell must neither break the demo (its sandbox knows only its token) nor
    be sent to it.
    """
    return {**base, "ALTCRAFT_TOKEN": "sandbox-token", "ERASURE_LEDGER_KEY": LEDGER_KEY}


def main() -> int:
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir()
    env = demo_env(dict(os.environ))
    requests_as_of(date.today())
    print(f"requests: {REQUESTS} (dates moved to the last four weeks; {LATE} is 45 days old)")
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
        four_eyes(url, job_path, env)
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=10)
    print()
    print(f"report: {report}")
    print(
        f"{LATE} was received 45 days ago on purpose: the report lists it under "
        "'Overdue identifiers' and counts it as finished late."
    )
    print(
        "Try it by hand: .venv/bin/erasure status jobs/demo.toml "
        f"(with ERASURE_LEDGER_KEY={LEDGER_KEY} for verify, lookup and run)"
    )
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

[act]
operator = "ООО «Демо», ИНН 7700000000, 101000, Москва, ул. Примерная, 1"
processor = "ООО «Альткрафт» (песочница erasure), 127.0.0.1, по поручению оператора"
system = "Altcraft Platform (sandbox), база 1"
categories = ["адрес электронной почты", "номер телефона", "CRM_ID", "история действий"]
commission = ["Иванов И. И., ответственный за организацию обработки ПДн", "Петров П. П., CISO"]
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

    print("\n# the destruction act of the run, and the extract of today's destructions")
    act = OUT / "act-run-1.docx"
    erasure("act", str(job_path), "--run", "1", "--out", str(act), env=env)
    erasure("act", str(job_path), "--run", "1", "--out", str(OUT / "act-run-1.html"), env=env)
    today = datetime.now(UTC).date().isoformat()
    extract = OUT / "act-extract.xlsx"
    erasure("act", str(job_path), "--from", today, "--to", today, "--out", str(extract), env=env)
    print(f"act: {act} (and .html), extract: {extract}")


FOUR_EYES = """
[approval]
required = true
signing_key_file = "{planner}"
approvers = ["{dpo}.pub"]
needed = 1
expires = "24h"
"""


def four_eyes(url: str, job_path: Path, env: dict[str, str]) -> None:
    """A hold, a plan, an approval, and the run the approval allows."""
    print("\n# four eyes: a legal hold, a signed plan, a second person's approval, the run")
    people = [("FE-1", "anna.four@example.org"), ("FE-2", "boris.four@example.org"),
              ("FE-3", "vera.four@example.org")]  # fmt: skip
    for _, email in people:
        _admin(url, "/__sandbox/import", {"email": email})
    requests = OUT / "four-eyes-requests.csv"
    today = date.today().isoformat()
    requests.write_text(
        "ticket,received_at,email,phone,crm_id\n"
        + "".join(f"{t},{today},{e},,\n" for t, e in people),
        encoding="utf-8",
    )
    for name in ("planner", "dpo"):
        erasure("keygen", "--out", str(OUT / f"{name}.key"), env=env)
    job = job_path.read_text(encoding="utf-8")
    job = job.replace("../demo-out/ledger.sqlite", "four-eyes.sqlite")
    job += FOUR_EYES.format(planner=OUT / "planner.key", dpo=OUT / "dpo.key")
    four = OUT / "four-eyes.toml"
    four.write_text(job, encoding="utf-8")
    plan, approved = OUT / "tonight.plan.html", OUT / "tonight.approved.json"
    inp = ("--input", str(requests))
    erasure("run", str(four), *inp, env=env)  # refused: 78, no approved plan
    subprocess.run(
        [sys.executable, "-m", "erasure", "hold", str(four), "--email", "-",
         "--reason", "litigation L-7: counsel's letter of 2026-12-01"],
        input=people[1][1] + "\n", text=True, env=env, cwd=ROOT, check=False,
    )  # fmt: skip
    print("$ erasure hold ... --email - (the address read from standard input)")
    erasure("holds", str(four), env=env)
    erasure("plan", str(four), *inp, "--out", str(plan), env=env)
    erasure("approve", str(plan), "--key", str(OUT / "dpo.key"), "--out", str(approved), env=env)
    erasure("run", str(four), *inp, "--plan", str(approved), "--log-format", "console", env=env)
    erasure("status", str(four), env=env)
    print(f"plan: {plan} (open it in a browser), approved: {approved}")


if __name__ == "__main__":
    raise SystemExit(main())
