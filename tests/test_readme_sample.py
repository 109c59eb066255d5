"""The README's sample `validate` output is what the sample file gives today."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from erasure import cli
from tests.conftest import LEDGER_KEY

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_sample_validate_output_is_the_sample_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    block = re.search(r"^```text\n(input: sample_data/requests\.csv.*?)^```", README, re.M | re.S)
    assert block is not None, "the README's sample validate output is gone"
    shown = [line for line in block.group(1).splitlines() if line.strip() != "..."]
    for folder in ("jobs", "sample_data"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ERASURE_LEDGER_KEY", LEDGER_KEY)
    assert 1 == cli.main(["validate", "jobs/requests.toml"])  # invalid rows on purpose
    said = capsys.readouterr().out.splitlines()
    assert said[0].endswith(shown[0].removeprefix("input: "))
    assert shown[1:] == said[1 : len(shown)]
