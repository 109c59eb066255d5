"""Under --log-format json every stderr line is JSON, a library's own warnings too (finding:
fastexcel's "Could not determine dtype for column" line, which its Rust code logs through
Python's `logging` by pyo3-log, reached stderr as plain text).
"""

from __future__ import annotations

import json
import logging
import sys

import pytest

from erasure import logs


def test_a_librarys_warning_is_a_json_line(capsys: pytest.CaptureFixture[str]) -> None:
    try:
        logs.configure("json", stream=sys.stderr)
        capsys.readouterr()
        logging.getLogger("fastexcel.types.dtype").warning(
            "Could not determine dtype for column %d, falling back to string", 3
        )
        logs.get().info("erasure.test.after")
        lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert len(lines) == 2
        first = json.loads(lines[0])
        assert first["logger"] == "fastexcel.types.dtype" and first["level"] == "warning"
        assert first["message"].startswith("Could not determine dtype for column 3")
        assert json.loads(lines[1])["event"] == "erasure.test.after"
    finally:
        logs.configure("console", stream=sys.stderr)
    assert not [h for h in logging.getLogger().handlers if type(h).__name__ == "_JsonLines"]
