"""Raw HTTP servers on loopback sockets for the client's tests.

Each test writes its server's bytes by hand, so that every framing and every
failure of an answer is met for real, on a real socket: a hang-up right after
accept (FIN or RST), an answer before the body is read, an idle keep-alive
connection closed, folded and bare-LF headers, oversize and compressed
bodies, a slow trickle, a redirect; and TLS certificates made here with
``cryptography`` (self-signed, expired, for another host).
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

SUCCESS = b'{"data":{"profile_id":"p1"},"error":0,"error_text":"Successful operation"}'


@dataclass
class RawServer:
    port: int
    connections: int = 0  # accepted so far
    requests: list[bytes] = field(default_factory=list)  # kept by read_request(..., server)


@asynccontextmanager
async def serve(handle: Handler, ctx: ssl.SSLContext | None = None) -> AsyncIterator[RawServer]:
    """An asyncio server on 127.0.0.1 running ``handle`` per connection.

    A handler that ends closes its connection; one still running at the end
    is cancelled. A client hanging up is not an error.
    """
    tasks: set[asyncio.Task[Any]] = set()
    info = RawServer(port=0)

    async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        info.connections += 1
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await handle(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(run, "127.0.0.1", 0, ssl=ctx)
    info.port = server.sockets[0].getsockname()[1]
    try:
        yield info
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


async def read_request(reader: asyncio.StreamReader, into: list[bytes] | None = None) -> bytes:
    """One request with a Content-Length body, head and body; kept in ``into`` if given."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    request = head + await reader.readexactly(length)
    if into is not None:
        into.append(request)
    return request


def response(
    body: bytes = SUCCESS,
    status: bytes = b"200 OK",
    *headers: bytes,
    content_type: bytes = b"application/json",
) -> bytes:
    """A whole HTTP/1.1 answer with a Content-Length, CRLF line ends."""
    lines = [
        b"HTTP/1.1 " + status,
        b"Content-Type: " + content_type,
        b"Content-Length: " + str(len(body)).encode(),
        *headers,
    ]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def reset(writer: asyncio.StreamWriter) -> None:
    """Close with an RST instead of a FIN (SO_LINGER with a zero timeout)."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def free_port() -> int:
    """A loopback port that nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


# ---------------------------------------------------------------- certificates


@dataclass(frozen=True)
class Certificate:
    cert: Path  # PEM; also the CA bundle that trusts it (it signs itself)
    key: Path  # PEM

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.cert, self.key)
        return ctx


def make_certificate(
    folder: Path, name: str, *, host: str = "127.0.0.1", expired: bool = False
) -> Certificate:
    """A self-signed certificate for ``host`` (an IP address or a DNS name).

    ``expired``: valid from 30 days ago until yesterday.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    start, end = (now - datetime.timedelta(days=30), now - datetime.timedelta(days=1))
    if not expired:
        start, end = now - datetime.timedelta(days=1), now + datetime.timedelta(days=2)
    try:
        alt: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        alt = x509.DNSName(host)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.SubjectAlternativeName([alt]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    paths = Certificate(folder / f"{name}.pem", folder / f"{name}.key")
    paths.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths
