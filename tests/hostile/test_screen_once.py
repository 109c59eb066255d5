"""`screen` reads its input once (finding: keys from polars, bytes from a second read: a file
replaced while it ran put an erased person into the clean output and dropped an innocent
row, exit 0, in 15 of 30 tries).

The race is made certain here: the file is replaced right after `screen` has opened it,
the moment a second read would see the new version.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from erasure import cli
from erasure.after import screen as screen_mod
from tests.hostile.conftest import Finished


@pytest.mark.parametrize("suffix", [".csv", ".ndjson"])
def test_a_file_replaced_while_screen_runs_never_mixes_two_versions(
    finished: Finished, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    source = finished.folder / f"import{suffix}"
    if suffix == ".csv":
        first = "email,who\nuser1@example.com,erased\nkeep@example.org,innocent\n"
        second = "email,who\nother@example.org,innocent-2\nuser1@example.com,erased\n"
    else:
        first = '{"email":"user1@example.com"}\n{"email":"keep@example.org"}\n'
        second = '{"email":"other@example.org"}\n{"email":"user1@example.com"}\n'
    source.write_text(first)
    replacement = finished.folder / "replacement.tmp"
    replacement.write_text(second)
    real_open = screen_mod.read_table

    def open_then_replace(*args: Any, **kwargs: Any) -> Any:
        opened = real_open(*args, **kwargs)
        os.replace(replacement, source)  # another process saves a new version now
        return opened

    monkeypatch.setattr(screen_mod, "read_table", open_then_replace)
    out = finished.folder / f"clean{suffix}"
    code = cli.main(["screen", str(finished.job), "--input", str(source), "--out", str(out)])
    text = out.read_text()
    assert "user1@example.com" not in text  # the erased person never reaches the import
    assert code == 0
    # the output is the first version, screened: the version whose keys were checked
    assert "keep@example.org" in text and "other@example.org" not in text
    assert not [p for p in finished.folder.iterdir() if p.name.endswith(".screen")]
