"""Issue 31 on a real ``prefbench serve`` subprocess (127.0.0.1): the receive deadline covers the
request's headers, not only its body (a client that drips its headers a byte at a time, or sends
nothing, is dropped at the deadline while others are answered), and a flood of such connections
writes a bounded log."""

from __future__ import annotations

import logging
import select
import socket
import time

import pytest

from tests.fixtures.extras import skip_without_extra

skip_without_extra("serve")

from prefbench.serve import Client  # noqa: E402
from prefbench.serve.logs import BURST, RateLimit  # noqa: E402
from tests.fixtures.serve import ServerProcess, png  # noqa: E402

HEADERS = b"POST /v1/score HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nX-Slow: " + b"a" * 200


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def test_headers_dripped_a_byte_at_a_time_are_dropped_at_the_deadline(tmp_path):
    server = ServerProcess(["--scorer", "random", "--receive-timeout", "2", "--max-connections", "40",
                            "--log-level", "warning"], tmp_path / "server.log")
    socks = []
    try:
        opened = time.monotonic()
        socks = [_connect(server.url) for _ in range(24)]
        sent = {s: 0 for s in socks}  # the first 4 send nothing at all
        closed: dict[socket.socket, tuple[float, bytes]] = {}
        client = Client(server.url, retries=0, timeout=10)
        answered = []
        while len(closed) < len(socks) and time.monotonic() - opened < 8:  # bounded: 8 s
            for k, s in enumerate(socks):
                if s not in closed and k >= 4 and sent[s] < len(HEADERS):
                    s.sendall(HEADERS[sent[s]:sent[s] + 1])  # one byte of headers per round (~4 bytes/s)
                    sent[s] += 1
            readable, _, _ = select.select([s for s in socks if s not in closed], [], [], 0.25)
            for s in readable:
                data = s.recv(4096)
                closed[s] = (time.monotonic() - opened, data)
            if len(answered) < 3 and time.monotonic() - opened < 1.6:  # others are answered meanwhile
                answered.append(client.score("p", [png(len(answered))]))
        assert len(answered) == 3 and all(len(a) == 1 for a in answered)
        assert len(closed) == len(socks), f"{len(socks) - len(closed)} slow connections were never dropped"
        for when, data in closed.values():
            assert 1.9 < when < 4.5, when
            assert data.startswith(b"HTTP/1.1 408"), data[:100]
            assert b"did not arrive within the server's 2 s" in data
        assert max(sent.values()) < len(HEADERS)  # their headers never completed
        assert server.alive()
        assert Client(server.url, retries=0, timeout=10).score("p", [png(9)])
    finally:
        for s in socks:
            s.close()
        server.stop()


def test_a_kept_alive_connection_idle_past_the_deadline_is_not_dropped(tmp_path):
    server = ServerProcess(["--scorer", "random", "--receive-timeout", "1", "--log-level", "warning"],
                           tmp_path / "server.log")
    sock = _connect(server.url)
    try:
        answers = []
        for pause in (0, 2.5):  # the second request comes after an idle time past the 1 s deadline
            time.sleep(pause)  # (uvicorn keeps an idle connection 5 s)
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            answer = b""
            while not answer.endswith(b"}"):  # headers, then the JSON body (bounded by the socket's 10 s)
                chunk = sock.recv(4096)
                assert chunk, answer  # the server closed the connection
                answer += chunk
            answers.append(answer)
        assert all(a.startswith(b"HTTP/1.1 200") for a in answers), answers
        server.stop()
        assert "request not received" not in server.text()
    finally:
        sock.close()
        server.stop()


def test_a_flood_of_slow_and_bad_connections_writes_a_bounded_log(tmp_path):
    server = ServerProcess(["--scorer", "random", "--receive-timeout", "1", "--log-level", "info"],
                           tmp_path / "server.log")
    socks = []
    try:
        start_size = server.log.stat().st_size
        for k in range(150):  # half send nothing, half a part of their headers
            s = _connect(server.url)
            if k % 2:
                s.sendall(HEADERS[:40])
            socks.append(s)
        for _ in range(70):  # not HTTP at all: uvicorn's warning each
            s = _connect(server.url)
            s.sendall(b"\x16\x03\x01 not http\r\n\r\n")
            socks.append(s)
        deadline = time.monotonic() + 10
        pending = list(socks)
        while pending and time.monotonic() < deadline:  # until the server has closed every one
            readable, _, _ = select.select(pending, [], [], 0.5)
            for s in readable:
                s.recv(4096)
                pending.remove(s)
        assert not pending
        assert Client(server.url, retries=0, timeout=10).score("p", [png(1)])
        server.stop()
        text = server.text()
        grown = server.log.stat().st_size - start_size
    finally:
        for s in socks:
            s.close()
        server.stop()
    lines = [line for line in text.splitlines() if "left out" not in line]
    assert sum("request not received whole within 1 s" in line for line in lines) == BURST
    assert "100 more lines like this one left out" in text  # the summary, written at shutdown
    assert sum("Invalid HTTP request received." in line for line in lines) == BURST
    assert "20 more lines like this one left out" in text
    assert '"POST /v1/score HTTP/1.1" 200' in text  # the normal request's line still comes
    assert grown < 12_000, grown  # 220 connections: about 60 bytes each unlimited


def test_the_rate_limit_summarises_each_kind_when_its_window_is_over():
    now = [0.0]
    written: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record):
            written.append(record.getMessage())

    handler = Collect()
    limit = RateLimit(burst=3, window_s=10, clock=lambda: now[0])
    handler.addFilter(limit)
    limit.handlers = [handler]
    log = logging.getLogger("test.prefbench.ratelimit")
    log.propagate, log.handlers = False, [handler]
    for n in range(8):
        log.warning("slow client %d gone", n)  # one kind: the template, not the number
    log.error("another kind")
    assert written == ["slow client 0 gone", "slow client 1 gone", "slow client 2 gone", "another kind"]
    now[0] = 11.0
    log.warning("slow client %d gone", 99)
    assert written[4].startswith("5 more lines like this one left out in the last 11 s") and "slow client 7" in written[4]
    assert written[5] == "slow client 99 gone"
    access = logging.LogRecord("uvicorn.access", logging.INFO, "", 0, '%s - "%s %s HTTP/%s" %d',
                               ("1.2.3.4:5", "GET", "/x", "1.1", 408), None)
    other = logging.LogRecord("uvicorn.access", logging.INFO, "", 0, '%s - "%s %s HTTP/%s" %d',
                              ("1.2.3.4:6", "GET", "/y", "1.1", 200), None)
    assert RateLimit.kind(access) == ("uvicorn.access", 408) != RateLimit.kind(other)
    limit.flush()
    assert len(written) == 6  # nothing left out since: nothing to summarise


@pytest.mark.parametrize("http", ["h11", "httptools"])
def test_the_deadline_protocol_subclasses_uvicorns_own(http):
    pytest.importorskip(http)
    from prefbench.serve.protocol import base_protocol, deadline_protocol

    cls = deadline_protocol(3, http)
    assert issubclass(cls, base_protocol(http)) and cls.receive_deadline_s == 3.0
