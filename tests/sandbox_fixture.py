"""The sandbox for end-to-end tests: a real server on a real loopback socket.

- ``sandbox``: a fresh sandbox per test, 100 generated profiles in database 1
  (``user{i}@example.com``, ``+7900{i:07d}``), no faults, served by uvicorn in
  a background thread (as httpx's own tests serve their app);
- ``sandbox_factory(**options)``: the same with :class:`Sandbox`'s options
  (own profiles, tokens, settings such as ``fail_429=0.5``);
- :class:`SandboxProcess`: ``python -m erasure.sandbox`` as a subprocess, for
  tests that kill or signal it.

Both kinds expose ``url``, ``token``, ``readonly_token``, ``stats()``,
``configure(**settings)`` (the names of ``erasure.sandbox.settings.Settings``,
plus ``seed``), ``fired()`` (times each switch fired), ``deletes()`` (delete
requests per profile id), ``set_rate_limit(rate)``, ``restore(ids, last=N)``,
``reimport(email=..., phone=...)`` and ``export(path, db_id)``. Control calls
retry a connection hung up by ``hangup_fin``/``hangup_rst`` (below 1).
Import with ``from tests.sandbox_fixture import *``.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from erasure.sandbox import (
    DEFAULT_READONLY_TOKEN,
    DEFAULT_TOKEN,
    SandboxApp,
    ThreadedSandbox,
    export,
)
from erasure.sandbox.settings import Settings, update
from erasure.sandbox.store import Profile, Store, generate, load_csv, profile_ids

__all__ = [
    "DELETE_PATH",
    "Sandbox",
    "SandboxProcess",
    "_sandbox",
    "_sandbox_factory",
    "profiles_from_rows",
]

DELETE_PATH = "/api/v1.1/profiles/delete"
ROOT = Path(__file__).resolve().parent.parent
CONTROL_ATTEMPTS = 50  # a hang-up probability of 0.9 still lets one through, near surely

ProfileSource = Path | Iterable[Profile] | Iterable[Mapping[str, Any]]


class _Control:
    """Reading and steering a running sandbox over HTTP."""

    url: str
    token: str
    readonly_token: str
    _client: httpx.Client | None = None

    @property
    def client(self) -> httpx.Client:
        """A client kept for this sandbox (creating one per call costs ~40 ms)."""
        if self._client is None:
            self._client = httpx.Client(timeout=10, trust_env=False)
        return self._client

    def close_client(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    @property
    def delete_url(self) -> str:
        return self.url + DELETE_PATH

    def _control(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """An admin call; a connection hung up by the sandbox's own faults is retried."""
        for _ in range(CONTROL_ATTEMPTS - 1):
            try:
                return self.client.request(method, f"{self.url}{path}", **kwargs)
            except httpx.TransportError:
                continue  # hangup_fin/hangup_rst, or an idle keep-alive closed under us
        return self.client.request(method, f"{self.url}{path}", **kwargs)

    def _admin(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._control(method, path, **kwargs)
        if response.status_code != 200:
            raise ValueError(response.json()["error"])
        return response.json()

    def stats(self, *, per_profile: bool = True) -> dict[str, Any]:
        """``GET /__sandbox/stats`` (see erasure/sandbox/stats.py for the shape)."""
        query = "" if per_profile else "?per_profile=0"
        response = self._control("GET", f"/__sandbox/stats{query}")
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def configure(self, **settings: object) -> dict[str, Any]:
        """``POST /__sandbox/config``: change settings (and ``seed``); returns them all."""
        result: dict[str, Any] = self._admin("POST", "/__sandbox/config", json=settings)
        return result

    def fired(self) -> dict[str, int]:
        """Times each switch fired, by setting name (``rate_limit`` for its 429s)."""
        result: dict[str, int] = self.stats(per_profile=False)["fired"]
        return result

    def deletes(self) -> dict[str, int]:
        """Delete requests each profile received (profile id -> count; only those with any)."""
        result: dict[str, int] = self.stats()["deletes_per_profile"]
        return result

    def set_rate_limit(self, rate: float | None, burst: float | None = None) -> None:
        """Move the rate limit while the sandbox runs (requests per second; None: none)."""
        self.configure(rate_limit=rate, rate_burst=burst)

    def restore(self, profile_ids: Iterable[str] = (), *, last: int = 0) -> list[str]:
        """Restore a backup: deleted profiles come back with their ids; the ids restored."""
        body = {"profile_ids": list(profile_ids), "last": last}
        result: list[str] = self._admin("POST", "/__sandbox/restore", json=body)["restored"]
        return result

    def reimport(self, *, db_id: int = 1, **values: Any) -> str:
        """A new profile with a new id (``email=``, ``phone=``, ``fields=``); its id."""
        body = {"db_id": db_id, **values}
        result: str = self._admin("POST", "/__sandbox/import", json=body)["profile_id"]
        return result

    def export(self, path: Path, db_id: int = 1) -> int:
        """The live profiles as an Altcraft-shaped CSV at ``path``; how many."""
        return export(self.url, db_id, path)

    def delete(self, **fields: object) -> httpx.Response:
        """One JSON delete with the delete token (``db_id`` 1 unless given)."""
        body = {"token": self.token, "db_id": 1, **fields}
        return self.client.post(self.delete_url, json=body)

    def post(self, content: bytes, **headers: str) -> httpx.Response:
        """A raw POST to the delete path, with the given headers."""
        return self.client.post(self.delete_url, content=content, headers=headers)


class Sandbox(_Control):
    """A sandbox served from a thread; ``profiles`` are the store's live objects.

    ``profiles`` is a CSV path, :class:`Profile` objects, or rows as dicts with
    the CSV's columns (``resources`` as ``"1;2"`` or a list of ints; other keys
    are custom fields); without it, ``generate`` profiles are made.
    """

    def __init__(
        self,
        *,
        profiles: ProfileSource | None = None,
        generate_count: int = 100,
        seed: int = 0,
        token: str = DEFAULT_TOKEN,
        readonly_token: str = DEFAULT_READONLY_TOKEN,
        **settings: object,
    ) -> None:
        if profiles is None:
            store = Store(generate(generate_count, seed=seed))
        elif isinstance(profiles, Path):
            store = Store(load_csv(profiles, seed=seed))
        else:
            store = Store(profiles_from_rows(profiles, seed=seed))
        self.store = store
        self.profiles: list[Profile] = store.profiles
        self.token = token
        self.readonly_token = readonly_token
        self.app = SandboxApp(
            store,
            token=token,
            readonly_token=readonly_token,
            settings=update(Settings(), settings),
            seed=seed,
        )
        self._server = ThreadedSandbox(self.app)
        self.url = self._server.url

    def start(self) -> Sandbox:
        self._server.start()
        return self

    def stop(self) -> None:
        self.close_client()
        self._server.stop()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def profiles_from_rows(
    rows: Iterable[Profile] | Iterable[Mapping[str, Any]], *, seed: int = 0
) -> Iterator[Profile]:
    """Profiles from dicts with the CSV's columns (or Profile objects as they are)."""
    ids = profile_ids(seed)
    for row in rows:
        if isinstance(row, Profile):
            yield row
            continue
        fixed = {"db_id", "profile_id", "email", "phone", "resources"}
        resources = row.get("resources", ())
        if isinstance(resources, str):
            resources = [int(part) for part in resources.split(";") if part.strip()]
        yield Profile(
            db_id=int(row.get("db_id", 1)),
            profile_id=str(row.get("profile_id") or next(ids)),
            email=str(row.get("email", "")).strip().lower(),
            phone=str(row.get("phone", "")).strip(),
            resources=frozenset(int(r) for r in resources),
            fields={k: str(v) for k, v in row.items() if k not in fixed},
        )


class SandboxProcess(_Control):
    """``python -m erasure.sandbox --port 0 ARGS`` as a subprocess, in a ``with`` block.

    ``first_line`` is its first line on stdout; stderr goes to the test's.
    Leaving the block stops it (SIGTERM, then SIGKILL after ``stop_timeout_s``).
    """

    def __init__(
        self,
        *args: str,
        token: str = DEFAULT_TOKEN,
        readonly_token: str = DEFAULT_READONLY_TOKEN,
        start_timeout_s: float = 20.0,
        stop_timeout_s: float = 10.0,
    ) -> None:
        self.command = [sys.executable, "-m", "erasure.sandbox", "--port", "0", *args]
        self.token = token
        self.readonly_token = readonly_token
        self.start_timeout_s = start_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.first_line = ""
        self.url = ""
        self.process: subprocess.Popen[str] | None = None

    def __enter__(self) -> SandboxProcess:
        self.process = subprocess.Popen(
            self.command, stdout=subprocess.PIPE, text=True, cwd=ROOT, stdin=subprocess.DEVNULL
        )
        stdout = self.process.stdout
        assert stdout is not None
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(self.start_timeout_s)
        self.first_line = lines[0].rstrip("\n") if lines else ""
        if not self.first_line.startswith("listening on http://"):
            self.__exit__()
            raise RuntimeError(f"the sandbox did not start: {self.first_line!r}")
        self.url = self.first_line.removeprefix("listening on ")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close_client()
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(self.stop_timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()

    def wait(self, timeout_s: float = 10.0) -> int:
        assert self.process is not None
        return self.process.wait(timeout_s)


@pytest.fixture(name="sandbox")
def _sandbox() -> Iterator[Sandbox]:
    """A fresh sandbox: 100 generated profiles in database 1, no faults."""
    with Sandbox() as sandbox:
        yield sandbox


@pytest.fixture(name="sandbox_factory")
def _sandbox_factory() -> Iterator[Callable[..., Sandbox]]:
    """``sandbox_factory(**options)`` starts a :class:`Sandbox`; all stop after the test."""
    started: list[Sandbox] = []

    def factory(**options: Any) -> Sandbox:
        sandbox = Sandbox(**options).start()
        started.append(sandbox)
        return sandbox

    yield factory
    for sandbox in started:
        sandbox.stop()
