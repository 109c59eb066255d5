"""Shared fixtures: real files, real jobs, real servers; no mocks of our own code."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import structlog
from hypothesis import settings

# No hypothesis deadline: how long one example took is no property of the code
# (the house does not assert speed), and on a busy machine it fails at random.
settings.register_profile("erasure", deadline=None)
settings.load_profile("erasure")

LEDGER_KEY = "test-ledger-key-0123456789abcdef"
TOKEN = "sandbox-token"  # the sandbox's documented default delete token

# The long versions of kill and soak tests run with `make test-long`.
LONG = os.environ.get("ERASURE_TEST_LONG") == "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``long`` run under `make test-long` only: `make test` deselects them."""
    if LONG:
        return
    long = [item for item in items if item.get_closest_marker("long") is not None]
    if long:
        config.hook.pytest_deselected(items=long)
        items[:] = [item for item in items if item.get_closest_marker("long") is None]


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    """Each test ends with structlog's defaults again.

    A test that ran a command configured structlog to print to the stderr it
    had then, a capture that closes with the test: a later test's command in
    the same process (under pytest-xdist, any test of the worker) would write
    its log lines to a closed file.
    """
    yield
    structlog.reset_defaults()


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """No proxy or secret from the developer's shell leaks into a test."""
    for name in list(os.environ):
        if name.upper() in {"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"}:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ERASURE_LEDGER_KEY", LEDGER_KEY)
    monkeypatch.setenv("ALTCRAFT_TOKEN", TOKEN)


@pytest.fixture
def anyio_backend() -> str:
    """asyncio only: the run, its transport and the sandbox are built on it (uvloop in use)."""
    return "asyncio"


@pytest.fixture(name="write_job")
def _write_job(tmp_path: Path) -> Callable[..., Path]:
    """Write a job file into tmp_path; keyword sections override the defaults.

    ``write_job(input={"path": "in.csv"}, run={"rate_per_s": 100})`` gives a
    job for a loopback base URL with db_id 1.
    """

    def write(text: str | None = None, **sections: dict[str, object]) -> Path:
        path = tmp_path / "job.toml"
        if text is not None:
            path.write_text(text, encoding="utf-8")
            return path
        merged: dict[str, dict[str, object]] = {
            "api": {"base_url": "http://127.0.0.1:9"},
            "input": {"path": "in.csv", "db_id": 1},
            "run": {},
            "ledger": {"path": "ledger.sqlite"},
        }
        for name, values in sections.items():
            merged.setdefault(name, {}).update(values)
            # None removes a default (db_id when db_id_column is given)
            merged[name] = {k: v for k, v in merged[name].items() if v is not None}
        path.write_text(_toml(merged), encoding="utf-8")
        return path

    return write


def _toml(sections: dict[str, dict[str, object]]) -> str:
    lines: list[str] = []
    for name, values in sections.items():
        plain = {k: v for k, v in values.items() if not isinstance(v, dict)}
        tables = {k: v for k, v in values.items() if isinstance(v, dict)}
        lines.append(f"[{name}]")
        lines += [f"{k} = {_value(v)}" for k, v in plain.items()]
        for sub, subvalues in tables.items():
            lines.append(f"[{name}.{sub}]")
            lines += [f"{k} = {_value(v)}" for k, v in subvalues.items()]  # type: ignore[attr-defined]
    return "\n".join(lines) + "\n"


def _value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_value(x)}" for k, x in v.items()) + " }"
    return str(v)


# The sandbox fixtures (a real server on a loopback socket).
from tests.sandbox_fixture import _sandbox, _sandbox_factory  # noqa: E402, F401
