"""The hardened gthread worker under a real gunicorn: request heads read by the event loop, liveness answered
there while every thread is busy, heads too slow or too large refused."""
from __future__ import annotations

import socket
import threading
import time

import pytest

from assistant import web_worker
from benchmarks.loopback import HOST, gunicorn

pytestmark = pytest.mark.services  # gunicorn subprocesses


def sleepy_app():
    """A WSGI app whose every request holds its thread for a second, and says which path it served."""
    def app(environ, start_response):
        time.sleep(1.0)
        body = environ["PATH_INFO"].encode()
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]
    return app


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with gunicorn({}, tmp_path_factory.mktemp("worker") / "gunicorn.log", workers=1, threads=1,
                  app="tests.test_web_worker:sleepy_app()") as running:
        yield running


def exchange(port: int, *pieces: bytes, pause: float = 0.0) -> bytes:
    """Send ``pieces`` with ``pause`` between them and read until the server closes."""
    with socket.create_connection((HOST, port), timeout=20) as sock:
        for piece in pieces:
            sock.sendall(piece)
            time.sleep(pause)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received


def test_liveness_is_answered_while_every_thread_is_busy(server):
    busy = [threading.Thread(target=exchange, args=(server.port, b"GET /busy HTTP/1.1\r\nHost: x\r\n"
                                                                 b"Connection: close\r\n\r\n")) for _ in range(3)]
    for thread in busy:
        thread.start()
    time.sleep(0.3)
    began = time.monotonic()
    answer = exchange(server.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert time.monotonic() - began < 0.5  # the one thread is taken for 3 s
    assert answer.startswith(b"HTTP/1.1 200 OK") and answer.endswith(b'{"status":"ok"}\n')
    for thread in busy:
        thread.join()


def test_a_head_sent_in_pieces_is_served_and_so_is_the_next_on_the_connection(server):
    answer = exchange(server.port, b"GET /first HT", b"TP/1.1\r\nHost:", b" x\r\n\r\n",
                      b"GET /second HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", pause=0.3)
    assert answer.count(b"HTTP/1.1 200 OK") == 2 and answer.index(b"/first") < answer.index(b"/second")


def test_a_head_too_slow_or_too_large_is_refused_without_a_thread(server):
    began = time.monotonic()
    assert exchange(server.port, b"GET /slow HTTP/1.1\r\n") == b""  # closed, unanswered
    assert web_worker.HEAD_TIMEOUT <= time.monotonic() - began < web_worker.HEAD_TIMEOUT + 3
    huge = b"GET /big HTTP/1.1\r\nX-Filler: "
    huge += b"y" * (web_worker.MAX_HEAD - len(huge))  # all of it read, so the server closes without a reset
    assert exchange(server.port, huge).startswith(b"HTTP/1.1 431 ")
