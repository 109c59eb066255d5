"""A local Altcraft-compatible server for trying jobs and for tests.

It serves ``POST /api/v1.1/profiles/delete`` from a :class:`Store` of
profiles, deletes for real, fails on demand (:class:`Settings`) and counts
what it received (``GET /__sandbox/stats``). Modules:

- ``store``: profiles, indexes, tombstones (pure);
- ``protocol``: JSON and XML bodies in and out (pure);
- ``settings``: the runtime switches, shared by the CLI and ``/__sandbox/config``;
- ``faults``: seeded dice, the rate limit, faulty answers;
- ``stats``: the counters;
- ``front``: connection faults below HTTP (hang-ups, odd answers) on the socket;
- ``wire``: HTTP/1.1 heads and answers byte by byte, RST and FIN, for the front;
- ``admin``: export, restore a backup, re-import;
- ``exporting``: :func:`export` writes a running sandbox's export to a file;
- ``asgi``: reading a body, answering, dropping a connection;
- ``app``: the raw ASGI application;
- ``server``: the socket, uvicorn, a clean stop, a background-thread server;
- ``cli``: ``erasure sandbox`` and ``python -m erasure.sandbox``.
"""

from __future__ import annotations

from erasure.sandbox.app import DEFAULT_READONLY_TOKEN, DEFAULT_TOKEN, SandboxApp
from erasure.sandbox.exporting import export
from erasure.sandbox.server import SandboxServer, ThreadedSandbox
from erasure.sandbox.settings import Settings
from erasure.sandbox.store import Profile, Store, generate, load_csv

__all__ = [
    "DEFAULT_READONLY_TOKEN",
    "DEFAULT_TOKEN",
    "Profile",
    "SandboxApp",
    "SandboxServer",
    "Settings",
    "Store",
    "ThreadedSandbox",
    "export",
    "generate",
    "load_csv",
]
