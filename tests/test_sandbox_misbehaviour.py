"""The sandbox's connection faults, each met on a real loopback socket, byte by byte.

Every test reads what a client would: raw bytes from a socket (with a
timeout, never a sleep), and proves from the sandbox's ``fired`` counters
that its switch, and only it, fired.
"""

from __future__ import annotations

import json
import socket
import zlib
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx
import pytest

from tests.sandbox_fixture import (  # noqa: F401  (fixtures, also imported by conftest)
    DELETE_PATH,
    Sandbox,
    SandboxProcess,
    _sandbox,
    _sandbox_factory,
)

Factory = Callable[..., Sandbox]
TIMEOUT_S = 10.0  # a socket operation that takes this long has failed


def connect(sandbox: Sandbox | SandboxProcess) -> socket.socket:
    parts = urlsplit(sandbox.url)
    assert parts.hostname is not None and parts.port is not None
    sock = socket.create_connection((parts.hostname, parts.port), timeout=TIMEOUT_S)
    return sock


def delete_request(token: str, email: str, *, body: bool = True) -> bytes:
    payload = json.dumps({"token": token, "db_id": 1, "email": email}).encode()
    head = (
        f"POST {DELETE_PATH} HTTP/1.1\r\nHost: sandbox\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    ).encode()
    return head + payload if body else head


def read_answer(sock: socket.socket) -> tuple[bytes, bytes, int]:
    """(head, body, recv calls) of one answer framed by Content-Length; any line ends."""
    data, calls = b"", 0
    while b"\r\n\r\n" not in data and b"\n\n" not in data:
        chunk = sock.recv(65536)
        calls += 1
        assert chunk, f"closed before the head ended: {data!r}"
        data += chunk
    crlf, lf = data.find(b"\r\n\r\n"), data.find(b"\n\n")
    end, size = (crlf, 4) if crlf >= 0 and (lf < 0 or crlf < lf) else (lf, 2)
    head, body = data[:end], data[end + size :]
    length = int(header(head, b"content-length"))
    while len(body) < length:
        chunk = sock.recv(1 << 20)
        calls += 1
        assert chunk, "closed before the body ended"
        body += chunk
    return head, body, calls


def header(head: bytes, name: bytes) -> bytes:
    """A header's value, obs-fold lines unfolded, any line ends."""
    unfolded = head.replace(b"\r\n", b"\n").replace(b"\n ", b" ").replace(b"\n\t", b" ")
    for line in unfolded.split(b"\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name:
            return value.strip()
    raise KeyError(name)


def assert_closed_by_peer(sock: socket.socket) -> None:
    """The peer closed with a FIN: EOF, no reset."""
    assert sock.recv(1) == b""


def test_hangup_fin_closes_at_accept_before_reading(sandbox: Sandbox) -> None:
    sandbox.configure(hangup_fin=1)
    with connect(sandbox) as sock:
        assert_closed_by_peer(sock)  # nothing sent yet: closed at accept
    sandbox.configure(hangup_fin=0)
    assert sandbox.fired() == {"hangup_fin": 1}
    assert sandbox.stats()["requests"] == 0


def test_hangup_rst_resets_at_accept(sandbox: Sandbox) -> None:
    sandbox.configure(hangup_rst=1)
    # The reset comes at connect already, or at the first read.
    with pytest.raises(ConnectionResetError), connect(sandbox) as sock:
        sock.recv(1)
    with (
        httpx.Client(trust_env=False, timeout=TIMEOUT_S) as fresh,
        pytest.raises(httpx.TransportError),
    ):
        fresh.post(sandbox.delete_url, json={"token": sandbox.token, "db_id": 1, "email": "x@y.z"})
    sandbox.configure(hangup_rst=0)
    assert sandbox.fired() == {"hangup_rst": 2}
    assert sandbox.stats()["erased_profiles"] == 0


def test_early_503_answers_before_the_body_is_sent(sandbox: Sandbox) -> None:
    sandbox.configure(early_503=1)
    with connect(sandbox) as sock:
        sock.sendall(delete_request(sandbox.token, "user1@example.com", body=False))
        head, body, _ = read_answer(sock)  # the body was never sent, yet here is the answer
        assert head.startswith(b"HTTP/1.1 503 ")
        assert header(head, b"connection") == b"close"
        assert b"503 Service Temporarily Unavailable" in body
        assert_closed_by_peer(sock)
    stats = sandbox.stats()
    assert stats["answers"] == {"early_503": 1}
    assert stats["fired"] == {"early_503": 1}
    assert stats["erased_profiles"] == 0


def test_switching_a_connection_fault_on_reaches_kept_connections(sandbox: Sandbox) -> None:
    with httpx.Client(trust_env=False, timeout=TIMEOUT_S) as kept:
        body = {"token": sandbox.token, "db_id": 1, "email": "user1@example.com"}
        assert kept.post(sandbox.delete_url, json=body).status_code == 200
        sandbox.configure(early_503=1)  # the kept connection is closed by the sandbox
        statuses = []
        for _ in range(20):  # a request may meet the closing connection once
            try:
                statuses.append(kept.post(sandbox.delete_url, json=body).status_code)
                break
            except httpx.TransportError:
                continue
    assert statuses == [503]
    assert sandbox.fired() == {"early_503": 1}


def test_idle_close_closes_a_keep_alive_connection_after_the_idle_time(
    sandbox: Sandbox,
) -> None:
    sandbox.configure(idle_close=1, idle_close_ms=20)
    with connect(sandbox) as sock:
        sock.sendall(delete_request(sandbox.token, "user1@example.com"))
        head, _, _ = read_answer(sock)
        assert head.startswith(b"HTTP/1.1 200 ")
        assert_closed_by_peer(sock)  # keep-alive, yet closed once idle
    assert sandbox.fired() == {"idle_close": 1}


def test_idle_close_spares_a_connection_that_is_not_idle(sandbox: Sandbox) -> None:
    sandbox.configure(idle_close=1, idle_close_ms=60_000)
    with connect(sandbox) as sock:
        for i in range(3):
            sock.sendall(delete_request(sandbox.token, f"user{i}@example.com"))
            assert read_answer(sock)[0].startswith(b"HTTP/1.1 200 ")
    assert sandbox.stats()["erased_profiles"] == 3
    assert "idle_close" not in sandbox.fired()


def test_obs_fold_folds_header_lines_of_a_real_answer(sandbox: Sandbox) -> None:
    sandbox.configure(obs_fold=1)
    with connect(sandbox) as sock:
        sock.sendall(delete_request(sandbox.token, "user1@example.com"))
        head, body, _ = read_answer(sock)
    assert b";\r\n charset=utf-8" in head and b"\r\n\tno-cache" in head
    assert header(head, b"content-type") == b"application/json; charset=utf-8"
    assert json.loads(body)["data"]["profile_id"] == sandbox.profiles[1].profile_id
    response = sandbox.delete(email="user2@example.com")  # h11 unfolds it
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.json()["error"] == 0
    assert sandbox.fired() == {"obs_fold": 2}


def test_bare_lf_ends_head_lines_with_lf_only(sandbox: Sandbox) -> None:
    sandbox.configure(bare_lf=1)
    with connect(sandbox) as sock:
        sock.sendall(delete_request(sandbox.token, "user1@example.com"))
        head, body, _ = read_answer(sock)
    assert b"\r" not in head
    assert head.startswith(b"HTTP/1.1 200 OK\ncontent-type: application/json\n")
    assert json.loads(body)["error"] == 0
    assert sandbox.profiles[1].deleted
    assert sandbox.fired() == {"bare_lf": 1}


def test_oversize_pads_a_real_answer_to_the_size(sandbox: Sandbox) -> None:
    sandbox.configure(oversize=1)
    with connect(sandbox) as sock:
        sock.sendall(delete_request(sandbox.token, "user1@example.com"))
        head, body, _ = read_answer(sock)
    assert int(header(head, b"content-length")) == len(body) == 5 * 1024 * 1024
    assert json.loads(body)["data"]["profile_id"] == sandbox.profiles[1].profile_id
    assert sandbox.fired() == {"oversize": 1}


def test_gzip_bomb_is_small_on_the_wire_and_huge_inflated(sandbox: Sandbox) -> None:
    sandbox.configure(gzip_bomb=1)
    with connect(sandbox) as sock:
        sock.sendall(delete_request(sandbox.token, "user1@example.com"))
        head, body, _ = read_answer(sock)
    assert header(head, b"content-encoding") == b"gzip"
    assert len(body) < 200 * 1024
    inflater, inflated, tail = zlib.decompressobj(31), 0, b""
    data = body
    while data:  # inflated 1 MiB at a time: the test holds no 100 MiB
        chunk = inflater.decompress(data, 1 << 20)
        inflated += len(chunk)
        tail = (tail + chunk)[-4096:]
        data = inflater.unconsumed_tail
    assert inflater.eof
    assert inflated > 100 * 1024 * 1024
    assert json.loads(tail)["data"]["profile_id"] == sandbox.profiles[1].profile_id
    assert sandbox.fired() == {"gzip_bomb": 1}


def test_trickle_sends_the_answer_one_byte_at_a_time(sandbox: Sandbox) -> None:
    sandbox.configure(trickle=1, trickle_s=0.5)
    with connect(sandbox) as sock:
        sock.sendall(delete_request(sandbox.token, "user1@example.com"))
        head, body, calls = read_answer(sock)
    assert json.loads(body)["error"] == 0
    assert calls > (len(head) + len(body)) // 2  # most bytes came alone
    assert sandbox.fired() == {"trickle": 1}


def test_odd_answers_spare_the_admin_calls_and_are_seeded(sandbox: Sandbox) -> None:
    sandbox.configure(obs_fold=0.5, bare_lf=0.5, seed=3)

    def shapes() -> list[bool]:
        folded = []
        for i in range(20):
            with connect(sandbox) as sock:
                sock.sendall(delete_request(sandbox.token, f"nobody{i}@example.com"))
                folded.append(b"\r\n " in read_answer(sock)[0])
        return folded

    first = shapes()
    sandbox.configure(seed=3)
    assert shapes() == first
    assert True in first and False in first
    fired = sandbox.fired()
    assert set(fired) == {"obs_fold", "bare_lf"}
    assert fired["obs_fold"] == 2 * sum(first)
    assert sandbox.stats()["requests"] == 40  # the admin calls were served plainly


def test_the_connection_faults_work_under_the_command_line_and_uvloop() -> None:
    with SandboxProcess("--generate", "5", "--loop", "auto", "--hangup-rst", "0.5") as proc:
        resets = 0
        for _ in range(20):
            try:
                with connect(proc) as sock:
                    sock.sendall(delete_request(proc.token, "nobody@example.com"))
                    read_answer(sock)
            except ConnectionResetError:
                resets += 1
        assert 0 < resets < 20
        assert proc.fired()["hangup_rst"] >= resets  # its own control calls may meet some too
        proc.configure(hangup_rst=0, early_503=1)
        with connect(proc) as sock:
            sock.sendall(delete_request(proc.token, "user1@example.com", body=False))
            assert read_answer(sock)[0].startswith(b"HTTP/1.1 503 ")
