"""The service under gunicorn on a loopback port, and a small asyncio HTTP/1.1 client that keeps
hundreds of connections busy at once from one thread: what the load test (tests/test_load.py)
and the throughput benchmark (benchmarks/serve_throughput.py) share.

Only 127.0.0.1 is ever addressed.
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


@dataclass
class Gunicorn:
    """A running gunicorn master on a loopback port."""

    process: subprocess.Popen
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def workers(self) -> list[int]:
        """The pids of the master's worker processes, as /proc shows them now."""
        found = []
        for entry in Path("/proc").iterdir():
            try:
                if entry.name.isdigit() and int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == self.process.pid:
                    found.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue  # the process ended while it was read
        return sorted(found)

    def wait_for_workers(self, count: int, timeout: float = 90.0) -> list[int]:
        """Wait until ``count`` workers run and the server answers; returns their pids."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}:\n{self.log.read_text()[-3000:]}")
            pids = self.workers()
            if len(pids) == count and self._answers():
                return pids
            time.sleep(0.2)
        raise TimeoutError(f"{count} gunicorn workers were not up within {timeout:g} s:\n{self.log.read_text()[-3000:]}")

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False


@contextmanager
def gunicorn(environ: Mapping[str, str], log: Path, *, workers: int, threads: int = 8,
             app: str | None = None) -> Iterator[Gunicorn]:
    """Run gunicorn with the service's settings (assistant.serving) and ``environ``; stop it afterwards.

    ``app`` serves another WSGI app (``module:callable()``) under the same settings.
    """
    port = free_port()
    command = [sys.executable, "-m", "gunicorn", "--config", "python:assistant.serving", "--bind", f"{HOST}:{port}",
               "--workers", str(workers), "--threads", str(threads), *([app] if app else [])]
    with log.open("ab") as output:
        process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), **environ},
                                   stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT)
    server = Gunicorn(process, port, log)
    try:
        server.wait_for_workers(workers)
        yield server
    finally:
        process.send_signal(signal.SIGTERM)  # a graceful stop: workers finish what they hold
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class ConnectionLost(Exception):
    """The connection broke before a whole response arrived: the request may or may not have been served."""


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Client:
    """One keep-alive HTTP/1.1 connection to the loopback server, opened again after it breaks."""

    def __init__(self, port: int, *, timeout: float = 180.0) -> None:
        self.port = port
        self.timeout = timeout
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def send(self, method: str, path: str, body: Any = None,
                   headers: Mapping[str, str] | None = None) -> Response:
        """Send one request, ``body`` as JSON or as bytes already encoded.

        Raises ConnectionLost when no whole response came back.
        """
        payload = b"" if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
        head = [f"{method} {path} HTTP/1.1", f"Host: {HOST}:{self.port}", f"Content-Length: {len(payload)}",
                *(["Content-Type: application/json"] if body is not None else []),
                *(f"{name}: {value}" for name, value in (headers or {}).items())]
        try:
            if self._streams is None:
                self._streams = await asyncio.wait_for(asyncio.open_connection(HOST, self.port), self.timeout)
            reader, writer = self._streams
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + payload)
            await writer.drain()
            return await asyncio.wait_for(self._read(reader), self.timeout)
        except (OSError, EOFError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError) as broken:
            await self.close()
            raise ConnectionLost(f"{method} {path}: {type(broken).__name__} {broken}") from None

    async def _read(self, reader: asyncio.StreamReader) -> Response:
        status_line = await reader.readline()
        if not status_line:
            raise EOFError("the server closed the connection")
        status = int(status_line.split()[1])
        headers = {}
        while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", 0)))
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return Response(status, headers, body)

    async def close(self) -> None:
        if self._streams is not None:
            writer = self._streams[1]
            self._streams = None
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass
