"""Which HTTP transport: requests per second and CPU per request at concurrency 64.

    .venv/bin/python bench/transport.py [--server auto|sandbox|raw] [--concurrency 64]
                                        [--requests 20000] [--variants ...]

Each variant runs in its own subprocess, with a fixed pool of ``concurrency``
worker tasks posting delete bodies to one local server over keep-alive
connections; after a warm-up the client's wall time and CPU time
(``time.process_time``, user + system) are measured, and the server's CPU
over the same interval (from ``/proc``), so that a server-bound figure says
so. Variants:

- ``httpx``: stock ``httpx.AsyncClient.post`` over httpcore's pool;
- ``httpx-aiohttp``: ``AsyncClient.post`` over ``httpx_aiohttp.AiohttpTransport``;
- ``erasure``: :func:`erasure.client.make_client` and :func:`erasure.client.send`
  (encode, the deadline, the capped body read, decode) over the default
  transport (httpx-aiohttp's): what the runner pays;
- ``erasure-httpcore``: the same with httpx's own transport (httpcore)
  injected at the same seam, the alternative the choice was made against;
- ``aiohttp``: a bare ``aiohttp.ClientSession`` worker loop, the ceiling.

The server is ``python -m erasure.sandbox --port 0 --generate 1000`` when it
runs (``auto``), else a minimal raw asyncio HTTP/1.1 server in this file that
answers every request with a fixed Altcraft success body.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PATH = "/api/v1.1/profiles/delete"
TOKEN = "sandbox-token"
ANSWER = (
    b'{"data":{"profile_id":"5f33d33ece94481aa9382110"},"error":0,'
    b'"error_text":"Successful operation"}'
)
VARIANTS = ("httpx", "httpx-aiohttp", "erasure", "erasure-httpcore", "aiohttp")


# ---------------------------------------------------------------- the raw server


class _Http(asyncio.Protocol):
    """Keep-alive HTTP/1.1 with Content-Length bodies; nothing else."""

    RESPONSE = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
        + str(len(ANSWER)).encode()
        + b"\r\n\r\n"
        + ANSWER
    )

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data
        out = []
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                break
            head = buf[:end].lower()
            i = head.find(b"content-length:")
            length = (
                int(head[i + 15 : head.find(b"\r\n", i) if b"\r\n" in head[i:] else None])
                if i >= 0
                else 0
            )
            if len(buf) < end + 4 + length:
                break
            buf = buf[end + 4 + length :]
            out.append(self.RESPONSE)
        self.buf = buf
        if out:
            self.transport.write(b"".join(out))


async def _serve_raw() -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Http, "127.0.0.1", 0, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    print(f"listening on http://127.0.0.1:{port}", flush=True)
    await server.serve_forever()


# ---------------------------------------------------------------- the clients


def _body(i: int) -> bytes:
    return json.dumps(
        {"token": TOKEN, "db_id": 1, "matching": "email", "email": f"user{i % 1000}@example.com"}
    ).encode()


async def _workers(concurrency: int, total: int, one: Any) -> tuple[float, float]:
    """Run ``total`` calls of ``one(i)`` on ``concurrency`` workers; wall and CPU seconds."""
    counter = iter(range(total))

    async def worker() -> None:
        for i in counter:
            await one(i)

    t0, c0 = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - t0, time.process_time() - c0


async def _client(variant: str, url: str, concurrency: int, total: int, warmup: int) -> None:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
    bodies = [_body(i) for i in range(1000)]
    closers: list[Any] = []
    one: Any
    if variant in ("httpx", "httpx-aiohttp"):
        import httpx

        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        transport = None
        if variant == "httpx-aiohttp":
            from httpx_aiohttp import AiohttpTransport

            transport = AiohttpTransport(limits=limits)
        hc = httpx.AsyncClient(base_url=url, limits=limits, headers=headers, transport=transport)
        closers.append(hc.aclose)

        async def one(i: int) -> None:
            r = await hc.post(PATH, content=bodies[i % 1000])
            assert r.status_code in (200, 404), r.status_code  # the sandbox: erased, then not found

    elif variant.startswith("erasure"):
        import httpx

        from erasure.altcraft import DeleteRequest
        from erasure.client import make_client, send
        from erasure.job import Api, Input, Job, Ledger, Run

        job = Job(
            path=Path("bench.toml"),
            api=Api(base_url=url),
            input=Input(path=None, db_id=1),
            run=Run(concurrency=concurrency),
            ledger=Ledger(path=Path("ledger.sqlite")),
        )
        injected: httpx.AsyncBaseTransport | None = None
        if variant == "erasure-httpcore":
            injected = httpx.AsyncHTTPTransport(
                limits=httpx.Limits(
                    max_connections=concurrency, max_keepalive_connections=concurrency
                ),
            )
        ec = make_client(job, TOKEN, transport=injected)
        closers.append(ec.aclose)
        reqs = [DeleteRequest(1, "email", f"user{i}@example.com") for i in range(1000)]

        async def one(i: int) -> None:
            a = await send(ec, reqs[i % 1000], TOKEN, "json")
            assert a.error is not None, a

    elif variant == "aiohttp":
        import aiohttp

        session = aiohttp.ClientSession(
            base_url=url,
            connector=aiohttp.TCPConnector(limit=concurrency),
            headers=headers,
        )
        closers.append(session.close)

        async def one(i: int) -> None:
            async with session.post(PATH, data=bodies[i % 1000]) as r:
                await r.read()
                assert r.status in (200, 404), r.status

    else:
        raise SystemExit(f"unknown variant {variant}")

    await _workers(concurrency, warmup, one)
    wall, cpu = await _workers(concurrency, total, one)
    for close in closers:
        await close()
    print(json.dumps({"wall": wall, "cpu": cpu, "n": total}), flush=True)


# ---------------------------------------------------------------- the driver


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _start_server(kind: str) -> tuple[subprocess.Popen[str], str, str]:
    commands = {
        "sandbox": [sys.executable, "-m", "erasure.sandbox", "--port", "0", "--generate", "1000"],
        "raw": [sys.executable, __file__, "--serve-raw"],
    }
    kinds = ["sandbox", "raw"] if kind == "auto" else [kind]
    for k in kinds:
        proc = subprocess.Popen(
            commands[k], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if line.startswith("listening on "):
            return proc, line.removeprefix("listening on "), k
        proc.kill()
        proc.wait()
    raise SystemExit(f"no server would start ({kind})")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--server", choices=("auto", "sandbox", "raw"), default="auto")
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--requests", type=int, default=20000)
    p.add_argument("--warmup", type=int, default=2000)
    p.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    p.add_argument("--serve-raw", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--client", help=argparse.SUPPRESS)
    p.add_argument("--url", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve_raw:
        asyncio.run(_serve_raw())
        return
    if args.client:
        asyncio.run(_client(args.client, args.url, args.concurrency, args.requests, args.warmup))
        return

    server, url, kind = _start_server(args.server)
    rows = []
    try:
        for variant in args.variants:
            cmd = [
                sys.executable, __file__, "--client", variant, "--url", url,
                "--concurrency", str(args.concurrency), "--requests", str(args.requests),
                "--warmup", str(args.warmup),
            ]  # fmt: skip
            before = _cpu_s(server.pid)
            t0 = time.perf_counter()
            out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
            span = time.perf_counter() - t0
            server_cpu = (_cpu_s(server.pid) - before) / span  # includes warm-up and start-up
            if out.returncode != 0:
                last = (out.stderr.strip().splitlines() or [""])[-1]
                rows.append((variant, "failed", "", "", last))
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append(
                (
                    variant,
                    f"{r['n'] / r['wall']:,.0f}",
                    f"{r['cpu'] / r['n'] * 1e6:,.0f}",
                    f"{r['cpu'] / r['wall']:.0%}",
                    f"{server_cpu:.0%}",
                )
            )
    finally:
        server.terminate()
        server.wait()

    print(f"`{' '.join(['bench/transport.py', *sys.argv[1:]])}`  ")
    print(
        f"server: {kind} ({url}); concurrency {args.concurrency}; {args.requests:,} requests "
        f"after {args.warmup:,} warm-up; Python {platform.python_version()}; "
        f"{os.cpu_count()} CPUs\n"
    )
    print("| variant | requests/s | client CPU µs/request | client CPU | server CPU |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for row in rows:
        print("| " + " | ".join(str(c) for c in row) + " |")
    print(
        "\nclient CPU: user + system of the client process over the measured interval, "
        "100% = one core; server CPU: the server process over the whole variant run "
        "(near 100% means the server, not the client, set the pace)."
    )


if __name__ == "__main__":
    main()
