"""Throughput under gunicorn on loopback: a diagnosis turn (500-epoch history) next to a bare JSON
endpoint of the same app, and a web worker's memory next to a bare Flask worker's.

    .venv/bin/python benchmarks/serve_throughput.py [--seconds 15] [--connections 16] [--workers 2]
                                                    [--database-url postgresql+psycopg://...]

Both endpoints go through the same gunicorn settings (assistant.serving: gthread, JSON logs,
metrics), the same app and the same client in one run, so their ratio cancels the machine's
speed. The client shares the machine's cores with the server. Aims: diagnosis/bare rps >= 0.3;
web worker memory <= 1.5x a bare Flask worker's, and no TensorFlow in it.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from flask import Flask

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.loopback import Client, Gunicorn, gunicorn  # noqa: E402
from benchmarks.turn_latency import history  # noqa: E402

DIAGNOSIS = {"symptom": "my loss goes down slowly and val loss goes up", "metrics": history(500),
             "training": {"optimizer": "adam", "learning_rate": 0.001, "batch_size": 32}}
PAGE = os.sysconf("SC_PAGE_SIZE")


def bare_app() -> Flask:
    """The smallest Flask app with a JSON endpoint: what a web worker's memory is held against."""
    app = Flask("bare")
    app.add_url_rule("/healthz", "healthz", lambda: {"status": "ok"})
    return app


async def drive(port: int, request: Callable[[Client], object], connections: int, seconds: float) -> list[float]:
    """Keep ``connections`` keep-alive connections busy for ``seconds``; the latency of every answered request."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def user() -> None:
        client = Client(port)
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            response = await request(client)
            if response.status not in (200, 201):
                raise RuntimeError(f"{response.status}: {response.body[:200]!r}")
            latencies.append(time.perf_counter() - started)
        await client.close()

    await asyncio.gather(*(user() for _ in range(connections)))
    return latencies


def measure(server: Gunicorn, name: str, request: Callable[[Client], object], args: argparse.Namespace) -> float:
    asyncio.run(drive(server.port, request, args.connections, 2.0))  # warm every worker's caches
    latencies = asyncio.run(drive(server.port, request, args.connections, args.seconds))
    ordered = sorted(latencies)
    rps = len(latencies) / args.seconds
    print(f"{name:<46} {rps:8.1f} req/s   p50 {statistics.median(ordered) * 1000:7.1f} ms"
          f"   p99 {ordered[int(0.99 * (len(ordered) - 1))] * 1000:7.1f} ms   ({len(latencies)} requests)")
    return rps


def resident_mb(pids: list[int]) -> float:
    """The largest resident memory among the worker processes, in MB."""
    return max(int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE for pid in pids) / 2**20


def tensorflow_loaded(pids: list[int]) -> bool:
    return any("tensorflow" in Path(f"/proc/{pid}/maps").read_text() for pid in pids)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--database-url", help="the database to store turns in (default: a fresh SQLite file)")
    args = parser.parse_args()
    print(f"gunicorn gthread, {args.workers} workers x 8 threads on {os.cpu_count()} cores, "
          f"{args.connections} keep-alive connections, {args.seconds:g} s per endpoint, "
          f"{(args.database_url or 'sqlite').split(':')[0]}")

    with tempfile.TemporaryDirectory() as tmp:
        environ = {"ASSISTANT_DATABASE_URL": args.database_url or f"sqlite:///{tmp}/bench.sqlite",
                   "ASSISTANT_REPRO_BACKEND": "off",
                   "ASSISTANT_RATELIMIT_ENABLED": "false", "ASSISTANT_LOG_LEVEL": "WARNING",
                   "PROMETHEUS_MULTIPROC_DIR": f"{tmp}/metrics"}
        with gunicorn(environ, Path(tmp) / "app.log", workers=args.workers) as server:
            bare = measure(server, "bare JSON endpoint (GET /healthz)", lambda c: c.send("GET", "/healthz"), args)
            turn = measure(server, "diagnosis turn, 500 epochs (POST /conversations)",
                           lambda c: c.send("POST", "/api/v1/conversations", DIAGNOSIS), args)
            workers = server.workers()
            web_mb, loaded = resident_mb(workers), tensorflow_loaded(workers)
        with gunicorn({"ASSISTANT_LOG_LEVEL": "WARNING", "PROMETHEUS_MULTIPROC_DIR": f"{tmp}/bare-metrics"},
                      Path(tmp) / "bare.log", workers=args.workers,
                      app="benchmarks.serve_throughput:bare_app()") as flask_only:
            asyncio.run(drive(flask_only.port, lambda c: c.send("GET", "/healthz"), args.connections, 2.0))
            bare_mb = resident_mb(flask_only.workers())

    print(f"{'diagnosis / bare throughput':<46} {turn / bare:8.2f}       (aim >= 0.3)")
    print(f"{'web worker resident memory':<46} {web_mb:8.1f} MB    TensorFlow loaded: {'yes' if loaded else 'no'}")
    print(f"{'bare Flask worker resident memory':<46} {bare_mb:8.1f} MB")
    print(f"{'web / bare Flask worker memory':<46} {web_mb / bare_mb:8.2f}       (aim <= 1.5)")


if __name__ == "__main__":
    main()
