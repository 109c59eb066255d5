"""The HTML report in a real headless Chromium: it renders, and shows status's numbers."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest

from erasure import job as job_mod
from erasure import ledger as L
from erasure import report
from erasure.status import status
from tests.test_report import STATUS_NAMES, build_ledger, page_counts

pytestmark = pytest.mark.browser

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


# CI sets ERASURE_CI=1 (.ci/run): there a missing browser is a failure, never a skip.
IN_CI = os.environ.get("ERASURE_CI") == "1"


def _chromium() -> str:
    """The headless Chromium's path; skipped without one, except in CI where that fails."""
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    why = "no headless Chromium found (looked for " + ", ".join(BROWSERS) + ")"
    if IN_CI:
        pytest.fail(f"{why}; ERASURE_CI=1 demands it (.ci/run installs it)")
    pytest.skip(f"{why}; install it with `apt-get install chromium` to run this test")


def _run(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
    ]
    return subprocess.run(
        [browser, *flags, *args], capture_output=True, text=True, timeout=90, check=False
    )


def test_html_report_renders_in_chromium_with_the_status_numbers(
    write_job: Callable[..., Path], tmp_path: Path
) -> None:
    browser = _chromium()
    build_ledger(tmp_path / "ledger.sqlite")
    job = job_mod.load(write_job())
    out = tmp_path / "report.html"
    with closing(L.open_readonly(job.ledger.path)) as db:
        report.write(db, job, out)
        counts = status(db).as_json()

    dumped = _run(browser, tmp_path / "profile-dom", "--dump-dom", out.as_uri())
    assert dumped.returncode == 0, dumped.stderr
    dom = dumped.stdout
    assert 'data-count="total"' in dom, dom[:500]
    shown = page_counts(dom)
    assert {n: counts[n] for n in STATUS_NAMES} == {n: shown[n] for n in STATUS_NAMES}
    assert "<svg" in dom

    shot = tmp_path / "report.png"
    taken = _run(
        browser,
        tmp_path / "profile-shot",
        f"--screenshot={shot}",
        "--window-size=1200,1600",
        "--hide-scrollbars",
        out.as_uri(),
    )
    assert taken.returncode == 0, taken.stderr
    assert shot.stat().st_size > 10_000  # a blank page is a few hundred bytes
    assert shot.read_bytes().startswith(b"\x89PNG")
