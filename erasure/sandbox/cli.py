"""``erasure sandbox`` (and ``python -m erasure.sandbox``): the command line.

:func:`add_arguments` fills a parser, :func:`run` serves until SIGINT or
SIGTERM and returns 0. Errors are raised as :mod:`erasure.errors` (a
non-loopback host without ``--allow-remote`` is a :class:`UsageError`, 64; a
missing profiles file :class:`FileMissing`, 66; a bad one
:class:`InputUnusable`, 65). The first line on standard output is exactly
``listening on http://HOST:PORT``, once the server accepts connections.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from uvicorn.config import LOGGING_CONFIG

from erasure.errors import InputUnusable, UsageError
from erasure.sandbox import suppress
from erasure.sandbox.app import DEFAULT_READONLY_TOKEN, DEFAULT_TOKEN, SandboxApp
from erasure.sandbox.server import SandboxServer, bind, is_loopback, url_of
from erasure.sandbox.settings import SWITCHES, SettingError, Settings, flag, update
from erasure.sandbox.store import Store, generate, load_csv

DESCRIPTION = "Serve a local Altcraft-compatible delete endpoint, with faults on demand."
EPILOG = """\
examples:
  erasure sandbox --generate 1000 --port 8080
  erasure sandbox --profiles sample_data/profiles.csv --port 0 --fail-429 0.1 --seed 7
  erasure sandbox --generate 100 --drop-after-delete 0.05 --latency-ms 20 --stats-file stats.json

  erasure sandbox --generate 100 --latency-ms 50-200 --rate-limit 150 --hangup-rst 0.01

It serves POST /api/v1.1/profiles/delete, GET /__sandbox/stats (counters, and
"fired": how often each switch fired), GET/POST /__sandbox/config (read or
change the switches below as JSON, e.g. {"fail_5xx": 0.2, "seed": 1} or
{"rate_limit": 50} mid-run), GET /__sandbox/export?db_id=N (live profiles as
CSV: _id, email, phone, custom fields), POST /__sandbox/restore
({"profile_ids": [...]} or {"last": N}: deleted profiles come back) and POST
/__sandbox/import ({"email": ...}: a new profile). Every probability P is
between 0 and 1.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The sandbox's switches, for ``erasure sandbox`` and ``python -m erasure.sandbox``."""
    parser.description = parser.description or DESCRIPTION
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    net = parser.add_argument_group("server")
    net.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    net.add_argument("--port", type=int, default=8080, help="port; 0 picks a free one (8080)")
    net.add_argument(
        "--allow-remote", action="store_true", help="allow a --host that is not loopback"
    )
    net.add_argument(
        "--loop",
        choices=("auto", "asyncio", "uvloop"),
        default="auto",
        help="event loop; auto takes uvloop when it is installed (auto)",
    )
    data = parser.add_argument_group("profiles")
    source = data.add_mutually_exclusive_group()
    source.add_argument(
        "--profiles",
        type=Path,
        metavar="PATH",
        help="CSV: db_id, profile_id, email, phone, resources (ids separated by ;), "
        "further columns are custom fields ('a, b' makes a tag field)",
    )
    source.add_argument(
        "--generate",
        type=int,
        metavar="N",
        help="N profiles in database 1: user{i}@example.com, +7900{i:07d} (default 1000)",
    )
    data.add_argument(
        "--seed", type=int, default=0, help="seed of generated profile ids and of the faults (0)"
    )
    auth = parser.add_argument_group("tokens")
    auth.add_argument(
        "--token", default=DEFAULT_TOKEN, help=f"token that may delete ({DEFAULT_TOKEN})"
    )
    auth.add_argument(
        "--readonly-token",
        default=DEFAULT_READONLY_TOKEN,
        help=f"token without the delete permission, answered 403 ({DEFAULT_READONLY_TOKEN})",
    )
    switches = parser.add_argument_group("answers and faults (also POST /__sandbox/config)")
    for name, declared in SWITCHES.items():
        option = "--" + name.replace("_", "-")
        if declared["read"] is flag:
            switches.add_argument(option, action="store_true", default=None, help=declared["help"])
        else:
            switches.add_argument(option, metavar=declared["metavar"], help=declared["help"])
    suppress.add_arguments(parser)  # suppression lists and their faults (suppress.py)
    parser.add_argument(
        "--stats-file", type=Path, metavar="PATH", help="write the stats as JSON here on stop"
    )


def settings_from(args: argparse.Namespace) -> Settings:
    """The runtime settings named on the command line."""
    given = {name: getattr(args, name) for name in SWITCHES}
    try:
        return update(Settings(), {k: v for k, v in given.items() if v is not None})
    except SettingError as exc:
        raise UsageError(f"--{exc.name.replace('_', '-')}: {exc.reason}") from None


def store_from(args: argparse.Namespace) -> Store:
    if args.profiles is not None:
        store = Store(load_csv(args.profiles, seed=args.seed))
        if not store.profiles:
            raise InputUnusable(f"profiles file {args.profiles} holds no profile")
        return store
    count = 1000 if args.generate is None else args.generate
    if count < 0:
        raise UsageError("--generate: expected a number >= 0")
    return Store(generate(count, seed=args.seed))


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT or SIGTERM; 0 after a clean stop."""
    if not args.allow_remote and not is_loopback(args.host):
        raise UsageError(f"--host {args.host} is not a loopback address; add --allow-remote")
    if not 0 <= args.port <= 65535:
        raise UsageError("--port: expected 0 to 65535")
    settings = settings_from(args)
    store = store_from(args)
    app = SandboxApp(
        store,
        token=args.token,
        readonly_token=args.readonly_token,
        settings=settings,
        seed=args.seed,
    )
    try:
        suppress.configure_from(app.suppressions, args)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    try:
        sock = bind(args.host, args.port)
    except OSError as exc:
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") from None
    url = url_of(sock)

    def announce() -> None:
        sys.stdout.write(f"listening on {url}\n")
        sys.stdout.flush()

    log_config: dict[str, Any] = LOGGING_CONFIG
    server = SandboxServer(app, loop=args.loop, log_config=log_config, on_started=announce)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        if args.stats_file is not None:
            stats = app.stats.to_dict(store)
            args.stats_file.write_text(json.dumps(stats, indent=1) + "\n", encoding="utf-8")
    return 0


def parser() -> argparse.ArgumentParser:
    result = argparse.ArgumentParser(prog="python -m erasure.sandbox", description=DESCRIPTION)
    add_arguments(result)
    return result
