"""`[ledger] group` for real: two users, one group, a concurrent run (finding: a member's
`status` exited 78 "attempt to write a readonly database" with the setgid folder the README
suggests; with a group-writable folder the member left `-wal`/`-shm` that failed the owner's
next run with 74, every night).

The test creates a group and two users (the owner and a member), runs `erasure run` as the
owner in a subprocess and, while it holds the ledger and after it has finished, runs
`status`, `report`, `lookup` and `verify` as the member. Needs root (to create users); skipped
with a reason otherwise, never under ERASURE_CI=1.
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from erasure.status import running
from tests.sandbox_fixture import Sandbox

ROOT = Path(__file__).resolve().parents[2]
CI = os.environ.get("ERASURE_CI") == "1"
TOOLS = all(shutil.which(t) for t in ("useradd", "userdel", "groupadd", "groupdel", "setpriv"))
pytestmark = pytest.mark.skipif(
    (os.geteuid() != 0 or not TOOLS) and not CI,
    reason="creating two users and a group needs root and useradd, groupadd and setpriv",
)
LEDGER_KEY = "group-test-ledger-key-0123456789abcdef"


@dataclass(frozen=True)
class People:
    group: str
    owner: str
    member: str


@pytest.fixture
def people() -> Iterator[People]:
    tag = secrets.token_hex(3)
    made = People(f"ersg{tag}", f"erso{tag}", f"ersm{tag}")
    subprocess.run(["groupadd", made.group], check=True)
    try:
        for user in (made.owner, made.member):
            subprocess.run(
                ["useradd", "-M", "-N", "-g", "nogroup", "-G", made.group, "-s", "/bin/sh", user],
                check=True,
            )
        yield made
    finally:
        for user in (made.owner, made.member):
            subprocess.run(["userdel", user], check=False, capture_output=True)
        subprocess.run(["groupdel", made.group], check=False, capture_output=True)


def _as(user: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _command(user, *args),
        capture_output=True,
        text=True,
        input=stdin,
        timeout=120,
        cwd="/",
        env=_env(),
        check=False,
    )


def _command(user: str, *args: str) -> list[str]:
    return [
        "setpriv",
        f"--reuid={user}",
        "--regid=nogroup",
        "--init-groups",
        sys.executable,
        "-m",
        "erasure",
        *args,
    ]


def _env() -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TZ")}
    return {**keep, "PYTHONPATH": str(ROOT), "HOME": "/tmp", "PYTHONDONTWRITEBYTECODE": "1"}


@pytest.fixture(autouse=True)
def _checkout_reachable() -> Iterator[None]:
    """The other users run this checkout's code: each folder above it must let them pass.

    A checkout under a private folder (``mktemp -d`` makes 0700 ones) gets the search
    bit for others on each such folder for the test, and its mode back afterwards;
    nothing is made readable or writable.
    """
    changed: list[tuple[Path, int]] = []
    for folder in (ROOT, *ROOT.parents):
        mode = stat.S_IMODE(folder.stat().st_mode)
        if not mode & stat.S_IXOTH:
            folder.chmod(mode | stat.S_IXOTH)
            changed.append((folder, mode))
    try:
        yield
    finally:
        for folder, mode in changed:
            folder.chmod(mode)


@pytest.fixture
def home(people: People) -> Iterator[Path]:
    """The owner's folder (0755, theirs), outside pytest's root-only temporary folder."""
    folder = Path(tempfile.mkdtemp(prefix="erasure-group-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _owned(path: Path, user: str, mode: int, group: str | None = None) -> Path:
    if not path.exists():
        path.mkdir()
    shutil.chown(path, user, group)
    path.chmod(mode)
    return path


@pytest.mark.parametrize(
    "folder_mode",
    [None, 0o2770],
    ids=["folder-made-by-erasure", "group-writable-setgid-folder"],
)
def test_a_group_member_reads_during_and_after_a_run_and_the_owner_runs_again(
    people: People,
    home: Path,
    sandbox_factory: Callable[..., Sandbox],
    folder_mode: int | None,
) -> None:
    # slow while the member reads (400 deletes at 200 ms, two at a time: 40 s), then fast
    sandbox = sandbox_factory(generate_count=400, latency_ms=200.0)
    owner_dir = _owned(home / "job", people.owner, 0o755)
    secrets_dir = _owned(owner_dir / "secrets", people.owner, 0o750, people.group)
    token = secrets_dir / "token"
    token.write_text(sandbox.token + "\n")
    _owned(token, people.owner, 0o600)
    key = secrets_dir / "ledger.key"
    key.write_text(LEDGER_KEY + "\n")
    _owned(key, people.owner, 0o640, people.group)  # the one secret the group may read
    source = owner_dir / "in.csv"
    source.write_text("ticket,email\n" + "".join(f"T{i},user{i}@example.com\n" for i in range(400)))
    _owned(source, people.owner, 0o644)
    job = owner_dir / "job.toml"
    job.write_text(
        f'[api]\nbase_url = "{sandbox.url}"\ntoken_file = "secrets/token"\ntimeout_s = 5\n'
        '[input]\npath = "in.csv"\ndb_id = 1\nrequest_id_column = "ticket"\n'
        "[run]\nconcurrency = 2\nrate_per_s = 100\n"
        f'[ledger]\npath = "ledger/ledger.sqlite"\nkey_file = "secrets/ledger.key"\n'
        f'group = "{people.group}"\n'
    )
    _owned(job, people.owner, 0o644)
    member_dir = _owned(home / "member", people.member, 0o700)
    ledger = owner_dir / "ledger" / "ledger.sqlite"
    if folder_mode is not None:  # made by hand, as the README once suggested
        _owned(ledger.parent, people.owner, 0o700, people.group).chmod(folder_mode)

    def member_reads(tag: str) -> None:
        checks = {
            "status": _as(people.member, "status", str(job)),
            "status --json": _as(people.member, "status", str(job), "--json"),
            "report": _as(
                people.member, "report", str(job), "--out", str(member_dir / f"r-{tag}.csv")
            ),
            "lookup": _as(
                people.member, "lookup", str(job), "--email", "-", stdin="user1@example.com\n"
            ),
            "verify": _as(people.member, "verify", str(job)),
        }
        for name, result in checks.items():
            allowed = (0, 1) if name == "lookup" else (0,)
            assert result.returncode in allowed, f"{tag} {name}: {result.stdout} {result.stderr}"
        # the member reads the ledger, never the token
        denied = _as(people.member, "run", str(job), "--no-progress", "--log-format", "json")
        assert denied.returncode == 78 and "token" in denied.stderr, denied.stderr

    run = subprocess.Popen(
        _command(people.owner, "run", str(job), "--no-progress", "--log-format", "json"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd="/",
        env=_env(),
    )
    try:
        deadline = time.monotonic() + 60
        while not (ledger.exists() and running(ledger)) and run.poll() is None:
            assert time.monotonic() < deadline, "the run never took the ledger"
            time.sleep(0.05)  # another process: nothing to wait on but its lock
        assert run.poll() is None, run.communicate()
        member_reads("during")
        assert run.poll() is None, "the reads were meant to overlap the run"
        sandbox.configure(latency_ms=0.0)
        _, err = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 0, err
    member_reads("after")
    folder = ledger.parent
    if folder_mode is None:
        assert stat.S_IMODE(folder.stat().st_mode) == 0o750
    for path in folder.iterdir():
        assert path.owner() == people.owner, f"{path.name} belongs to {path.owner()}"
    again = _as(people.owner, "run", str(job), "--no-progress", "--log-format", "json")
    assert again.returncode == 0, again.stderr
