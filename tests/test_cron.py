"""The README's cron line works under cron's bare environment (``env -i``)."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from pathlib import Path

from tests.conftest import LEDGER_KEY, _toml
from tests.sandbox_fixture import Sandbox

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _cron_command() -> str:
    """The command of the README's one cron line (after the five time fields)."""
    block = re.search(r"^```cron\n(.*?)^```", README, re.M | re.S)
    assert block is not None, "the README has no ```cron block"
    lines = [line for line in block.group(1).splitlines() if line.strip()]
    assert 1 == len(lines)
    return lines[0].split(None, 5)[5]


def test_the_readme_cron_line_runs_under_env_i(sandbox: Sandbox, tmp_path: Path) -> None:
    home = tmp_path / "srv"
    (home / "jobs").mkdir(parents=True)
    (home / ".venv").symlink_to(ROOT / ".venv")
    for name, text in (("token", sandbox.token), ("key", LEDGER_KEY)):
        (home / name).write_text(text + "\n")
        (home / name).chmod(0o600)
    (home / "requests.csv").write_text("ticket,email\nT1,user1@example.com\nT2,user2@example.com\n")
    job = {
        "api": {"base_url": sandbox.url, "token_file": "../token"},
        "input": {"path": "../requests.csv", "db_id": 1, "request_id_column": "ticket"},
        "ledger": {"path": "../ledger.sqlite", "key_file": "../key"},
    }
    (home / "jobs" / "nightly.toml").write_text(_toml(job), encoding="utf-8")
    command = _cron_command().replace("/srv/erasure", str(home))
    assert "erasure run jobs/nightly.toml" in command
    done = subprocess.run(["env", "-i", "/bin/sh", "-c", command], timeout=120, check=False)
    log = (home / "nightly.log").read_text(encoding="utf-8")
    assert 0 == done.returncode, log
    events = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    finished = [e for e in events if e.get("event") == "erasure.run.finished"]
    assert [0] == [e["exit_code"] for e in finished]
    assert {"user1@example.com", "user2@example.com"}.isdisjoint(log.split('"'))
    assert os.path.exists(home / "ledger.sqlite")
    assert shlex.split(command)[0] == "cd"
