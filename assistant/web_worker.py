"""gunicorn's threaded worker, made to survive slow clients and to answer liveness whatever its threads do.

gthread hands a connection to a thread as soon as its first byte arrives; a client that then sends
its request head a byte at a time holds that thread for as long as it likes, and 40 such
connections left ``/healthz`` unanswered. Here the worker's event loop reads each request head
itself, without a thread, and hands the connection on only once the head is complete: a client
gets ``HEAD_TIMEOUT`` seconds for it and is then closed. A thread serving a request stops waiting
on a silent client after ``IO_TIMEOUT`` seconds (a body sent slowly, a response not read).
``GET /healthz`` is answered by the event loop itself, so busy threads cannot block liveness.
A buffering proxy in front (deploy/nginx.conf) does the same and more; these hold without one.

When the worker begins to stop (SIGTERM: a shutdown, or a reload retiring the old workers; a
restart after ``max_requests``), it sets :data:`STOPPING`, so that responses that would outlast the
grace period (progress streams) end with a word to the client instead of being cut.
"""
from __future__ import annotations

import errno
import selectors
import threading
import time
from functools import partial
from typing import Any

from gunicorn import http
from gunicorn.workers.gthread import ThreadWorker, TConn

#: Seconds a client has to send its whole request line and headers.
HEAD_TIMEOUT = 10.0
#: Seconds a thread waits on a client that sends nothing more of its body, or takes nothing of the response.
IO_TIMEOUT = 30.0
#: A request head larger than this is refused (gunicorn's own limits stop far shorter heads).
MAX_HEAD = 64 * 1024
LIVE = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 16\r\nConnection: close\r\n\r\n" \
       b'{"status":"ok"}\n'
HEAD_TOO_LARGE = b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
#: Set once this process's worker stops being alive; never set outside gunicorn.
STOPPING = threading.Event()


class Worker(ThreadWorker):
    """gthread, except that a thread gets a connection only with a whole request head, and liveness needs none."""

    @property
    def alive(self) -> bool:
        return self._alive

    @alive.setter
    def alive(self, alive: bool) -> None:
        """gunicorn stops a worker by this flag, whatever the reason, so :data:`STOPPING` follows it."""
        self._alive = alive
        if not alive:
            STOPPING.set()

    def accept(self, listener: Any) -> None:
        try:
            sock, address = listener.accept()
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        self._await_head(TConn(self.cfg, sock, address, listener.getsockname()))

    def on_client_socket_readable(self, conn: TConn, client: Any) -> None:
        """A kept-alive connection starts its next request: its head is read here too."""
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self._await_head(conn)

    def handle_request(self, req: Any, conn: TConn) -> Any:
        conn.sock.settimeout(IO_TIMEOUT)  # a blocking socket, now with a limit on each wait
        return super().handle_request(req, conn)

    def _await_head(self, conn: TConn) -> None:
        if self.cfg.is_ssl:  # the loop cannot read TLS without blocking: as gthread does
            self.enqueue_req(conn)
            return
        conn.sock.setblocking(False)
        conn.head = bytearray()
        conn.timeout = time.monotonic() + HEAD_TIMEOUT  # murder_pending closes it then
        self.pending_conns.append(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_head_readable, conn))

    def _on_head_readable(self, conn: TConn, client: Any) -> None:
        try:
            chunk = client.recv(MAX_HEAD)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        conn.head += chunk
        complete = b"\r\n\r\n" in conn.head
        if chunk and not complete and len(conn.head) < MAX_HEAD:
            return  # more to come: the connection waits in the poller, holding no thread
        self.poller.unregister(client)
        self.pending_conns.remove(conn)
        if not complete:  # closed before its head ended, or a head too large to be one
            self._answer(conn, HEAD_TOO_LARGE if chunk else b"")
        elif _asks_liveness(conn.head):
            self._answer(conn, LIVE)
        else:
            if conn.parser is None:
                conn.parser = http.get_parser(self.cfg, conn.sock, conn.client)
            conn.parser.unreader.unread(bytes(conn.head))
            conn.data_ready = True
            self.enqueue_req(conn)

    def _answer(self, conn: TConn, response: bytes) -> None:
        """Send a short answer from the event loop (a non-blocking send; it fits any socket buffer) and close."""
        try:
            if response:
                conn.sock.send(response)
        except OSError:
            pass
        self.nr_conns -= 1
        conn.close()


def _asks_liveness(head: bytes) -> bool:
    """``GET /healthz`` (with or without a query), the one request the event loop answers itself."""
    method, _, rest = head.partition(b" ")
    return method == b"GET" and rest.partition(b" ")[0].partition(b"?")[0] == b"/healthz"
