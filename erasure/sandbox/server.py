"""Serving the sandbox: a socket bound here, uvicorn with httptools behind the front.

The socket is bound (and listening) before uvicorn starts, so the port is
known even with port 0. :class:`SandboxServer` stops cleanly on SIGINT and
SIGTERM (unlike plain uvicorn, it does not raise the signal again once
stopped, so the process exits 0) and ends hanging requests when it stops.
:class:`ThreadedSandbox` runs one in a background thread, for tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import signal
import socket
import threading
import time
from collections.abc import Callable, Generator
from typing import Any

import uvicorn

from erasure.sandbox.app import SandboxApp
from erasure.sandbox.front import Front, RawConnection

BACKLOG = 2048  # pending connections; wrk opens hundreds at once
GRACEFUL_S = 3  # seconds given to answers in flight when stopping


def is_loopback(host: str) -> bool:
    """Whether every address ``host`` names is a loopback address."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on (host, port); port 0 picks a free one."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock


def url_of(sock: socket.socket) -> str:
    """``http://HOST:PORT`` of a bound socket (IPv6 hosts in brackets)."""
    host, port = sock.getsockname()[:2]
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


class SandboxServer(uvicorn.Server):
    """uvicorn tuned for the sandbox: httptools, no access log, a clean stop."""

    def __init__(
        self,
        app: SandboxApp,
        *,
        loop: str = "auto",
        log_config: dict[str, Any] | None = None,
        on_started: Callable[[], None] | None = None,
    ) -> None:
        config = uvicorn.Config(
            app,
            http=Front,  # hangs up, or hands each connection to httptools or the raw front
            loop=loop,
            lifespan="off",
            access_log=False,
            log_config=log_config,
            log_level="warning",
            server_header=False,
            backlog=BACKLOG,
            timeout_graceful_shutdown=GRACEFUL_S,
        )
        super().__init__(config)
        self.sandbox = app
        app.on_connection_faults = self._route_through_the_front
        self.on_started = on_started
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None

    def _route_through_the_front(self) -> None:
        """Connection faults were switched on: they are chosen at accept (front.py), so
        close uvicorn's idle keep-alive connections, as a reload does, and clients come
        back through the raw front. One answering now closes after its answer."""
        for connection in list(self.server_state.connections):
            if not isinstance(connection, RawConnection):
                connection.shutdown()

    def request_stop(self) -> None:
        """Stop serving; callable from any thread, returns at once."""
        self.should_exit = True
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(wake.set)

    async def main_loop(self) -> None:
        """uvicorn's ticks (0.1 s), woken early by :meth:`request_stop`."""
        self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 0.1)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started and self.on_started is not None:
            self.on_started()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.sandbox.stopping.set()  # hanging requests end and drop their connection
        await super().shutdown(sockets=sockets)

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        """Stop on SIGINT/SIGTERM, main thread only; the process then exits normally."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


class ThreadedSandbox:
    """A sandbox served from a background thread on a real loopback socket."""

    def __init__(self, app: SandboxApp, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.socket = bind(host, port)
        self.url = url_of(self.socket)
        self.server = SandboxServer(app, loop="asyncio")
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True
        )

    def start(self, timeout_s: float = 10.0) -> ThreadedSandbox:
        """Start serving; returns once the server accepts connections."""
        self.thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                self.socket.close()
                raise RuntimeError("the sandbox server did not start")
            time.sleep(0.005)
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        self.server.request_stop()
        self.thread.join(timeout_s)
        self.socket.close()

    def __enter__(self) -> ThreadedSandbox:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
