"""The sandbox bounds its switches (finding: it accepted `latency_ms: 1e308` and then could
not be stopped).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from erasure.sandbox.settings import MAXIMA, SettingError, Settings, update
from tests.sandbox_fixture import Sandbox

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("latency_ms", 1e308),
        ("latency_ms", "0-1e308"),
        ("latency_jitter_ms", 1e12),
        ("hang_s", 1e9),
        ("trickle_s", 1e9),
        ("retry_after", 1e12),
        ("gzip_bomb_bytes", 10**13),
        ("oversize_bytes", 10**12),
        ("rate_limit", 1e300),
    ],
)
def test_a_switch_past_its_bound_is_refused(name: str, value: object) -> None:
    with pytest.raises(SettingError, match="at most"):
        update(Settings(), {name: value})
    assert update(Settings(), {name: MAXIMA[name]}) is not None  # the bound itself is fine


def test_the_command_line_refuses_it_with_64() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "erasure", "sandbox", "--port", "0", "--latency-ms", "1e308"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 64
    assert "--latency-ms" in result.stderr and "at most" in result.stderr


def test_the_control_api_refuses_it_and_keeps_its_settings(sandbox: Sandbox) -> None:
    with pytest.raises(ValueError, match="at most"):
        sandbox.configure(latency_ms=1e308)
    assert sandbox.configure()["latency_ms"] == 0.0
