"""Writing a running sandbox's export to a file: what ``erasure sweep`` reads.

:func:`export` fetches ``GET /__sandbox/export?db_id=N`` (see admin.py) and
writes it to ``path`` as it arrives.
"""

from __future__ import annotations

from pathlib import Path

import httpx


def export(url: str, db_id: int, path: Path | str, *, timeout_s: float = 30.0) -> int:
    """Write the live profiles of database ``db_id`` of the sandbox at ``url`` to ``path``.

    ``url`` is the sandbox's base (``http://127.0.0.1:PORT``); ``timeout_s``
    seconds per network step. Returns the number of profiles (rows less the
    header). Raises :class:`httpx.HTTPStatusError` for an unknown database
    (404) and :class:`httpx.TransportError` when the sandbox cannot be reached.
    """
    lines = 0
    target = Path(path)
    with (
        httpx.Client(timeout=timeout_s, trust_env=False) as client,
        client.stream("GET", f"{url.rstrip('/')}/__sandbox/export", params={"db_id": db_id}) as r,
    ):
        r.raise_for_status()
        with target.open("wb") as out:
            for chunk in r.iter_bytes():
                lines += chunk.count(b"\n")
                out.write(chunk)
    return max(0, lines - 1)
