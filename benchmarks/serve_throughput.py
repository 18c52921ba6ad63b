"""Throughput under gunicorn on loopback: a diagnosis turn (500-epoch history) next to a bare JSON
endpoint of the same app, and a web worker's memory next to a bare Flask worker's.

    .venv/bin/python benchmarks/serve_throughput.py [--seconds 15] [--connections 16] [--workers 2]
                                                    [--database-url postgresql+psycopg://...]

Both endpoints go through the same gunicorn settings (assistant.serving: gthread, JSON logs,
metrics), the same app and the same client in one run, so their ratio cancels the machine's
speed. The client shares the machine's cores with the server; it encodes each body once, so
its own work stays small beside the server's. Each line also gives the CPU time the workers
spent per request, which other load on the machine disturbs less than requests per second.
Aims (issue 16, against what a turn really costs): diagnosis / stored-only rps >= 0.7; web
worker memory <= 1.2x the "bare Flask + the libraries" floor below, and no TensorFlow in it; a
diagnosis turn's p99 <= 3x its p50. (The first aims, diagnosis/bare >= 0.3 and memory <= 1.5x
bare Flask, are still printed.)

For scale, two more figures: the same server answering a turn's body with everything but the
reasoning (decode the JSON, store the turn durably, reply), the ceiling of the diagnosis ratio;
and a bare Flask worker with the libraries the web tier cannot do without (SQLAlchemy,
jsonschema, Flask-Limiter, prometheus_client, PyYAML) imported, the floor of the memory ratio.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from flask import Flask, request

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.loopback import Client, Gunicorn, gunicorn  # noqa: E402
from benchmarks.turn_latency import diagnosis, percentiles  # noqa: E402

DIAGNOSIS = diagnosis(500)
DIAGNOSIS_BODY = json.dumps(DIAGNOSIS).encode()
PAGE = os.sysconf("SC_PAGE_SIZE")
ROOT = Path(__file__).resolve().parents[1]
TICK = os.sysconf("SC_CLK_TCK")


def bare_app() -> Flask:
    """The smallest Flask app with a JSON endpoint: what a web worker's memory is held against."""
    app = Flask("bare")
    app.add_url_rule("/healthz", "healthz", lambda: {"status": "ok"})
    return app


def measured_app(config: dict | None = None) -> Flask:
    """The service, plus a route that does what any turn must besides reasoning: decode the body and store it.

    Imported here, not with the module, so that the bare apps' workers load nothing of the service.
    """
    from assistant import conversations, create_app
    from assistant.evidence.facts import Facts

    app = create_app(config)

    def store_only() -> tuple[dict, int]:
        body = json.loads(request.get_data())
        conversation = conversations.Conversation.new(None, "stored only")
        conversations.save(conversation, conversations.Turn(body, {}, Facts(), frozenset()))
        return {"id": conversation.id}, 201

    app.add_url_rule("/bench/store", "store_only", store_only, methods=["POST"])
    return app


def libraries_app() -> Flask:
    """The bare app with the web tier's indispensable libraries imported, and nothing of the service."""
    import flask_limiter  # noqa: F401
    import jsonschema  # noqa: F401
    import prometheus_client  # noqa: F401
    import sqlalchemy  # noqa: F401
    import yaml  # noqa: F401

    return bare_app()


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


def measure(server: Gunicorn, name: str, request: Callable[[Client], object],
            args: argparse.Namespace) -> tuple[float, float, float]:
    """Requests per second under the load, and the p50 and p99 latencies (ms)."""
    asyncio.run(drive(server.port, request, args.connections, 2.0))  # warm every worker's caches
    workers = server.workers()
    cpu = cpu_seconds(workers)
    latencies = asyncio.run(drive(server.port, request, args.connections, args.seconds))
    cpu = cpu_seconds(workers) - cpu
    p50, p99 = percentiles(latencies)
    rps = len(latencies) / args.seconds
    print(f"{name:<46} {rps:8.1f} req/s   p50 {p50:6.1f} ms   p99 {p99:6.1f} ms"
          f"   worker CPU {cpu / len(latencies) * 1000:5.2f} ms/request   ({len(latencies)} requests)")
    return rps, p50, p99


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time the processes have used, all their threads together."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        total += int(fields[11]) + int(fields[12])
    return total / TICK


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
        # The package's bytecode compiled, as the image does at its build (deploy/Dockerfile) and as pip does for
        # the libraries: a worker that compiles it from source keeps the compiler's garbage (with
        # PYTHONDONTWRITEBYTECODE set, as here, every worker would).
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "assistant")], check=True)
        # The schema first, in a process of its own, as the service's own start does (assistant.serving.migrate_first).
        from assistant.serving import INIT_DB

        subprocess.run(INIT_DB, env={**os.environ, **environ}, cwd=ROOT, check=True, capture_output=True)
        with gunicorn(environ, Path(tmp) / "app.log", workers=args.workers,
                      app="benchmarks.serve_throughput:measured_app()") as server:
            (bare, _, _) = measure(server, "bare JSON endpoint (GET /healthz)", lambda c: c.send("GET", "/healthz"), args)
            (stored, _, _) = measure(server, "same body, decoded and stored only",
                             lambda c: c.send("POST", "/bench/store", DIAGNOSIS_BODY), args)
            (turn, turn_p50, turn_p99) = measure(server, "diagnosis turn, 500 epochs (POST /conversations)",
                           lambda c: c.send("POST", "/api/v1/conversations", DIAGNOSIS_BODY), args)
            workers = server.workers()
            web_mb, loaded = resident_mb(workers), tensorflow_loaded(workers)
        bare_mb, floor_mb = (served_mb(f"benchmarks.serve_throughput:{app}()", Path(tmp) / app, args)
                             for app in ("bare_app", "libraries_app"))

    print(f"{'diagnosis / bare throughput':<46} {turn / bare:8.2f}       (aim >= 0.3)")
    print(f"{'decoded and stored only / bare throughput':<46} {stored / bare:8.2f}       "
          f"(the most the diagnosis ratio can reach)")
    print(f"{'diagnosis / stored-only throughput':<46} {turn / stored:8.2f}       (aim >= 0.7)")
    print(f"{'diagnosis turn p99 / p50':<46} {turn_p99 / turn_p50:8.2f}       (aim <= 3)")
    print(f"{'web worker resident memory':<46} {web_mb:8.1f} MB    TensorFlow loaded: {'yes' if loaded else 'no'}")
    print(f"{'bare Flask worker resident memory':<46} {bare_mb:8.1f} MB")
    print(f"{'web / bare Flask worker memory':<46} {web_mb / bare_mb:8.2f}       (aim <= 1.5)")
    print(f"{'bare Flask + the libraries, resident memory':<46} {floor_mb:8.1f} MB    "
          f"({floor_mb / bare_mb:.2f}x bare Flask: the floor of that ratio)")
    print(f"{'web / (bare Flask + the libraries) memory':<46} {web_mb / floor_mb:8.2f}       (aim <= 1.2)")


def served_mb(app: str, folder: Path, args: argparse.Namespace) -> float:
    """A worker's resident memory after serving the bare endpoint of ``app`` for two seconds."""
    with gunicorn({"ASSISTANT_LOG_LEVEL": "WARNING", "PROMETHEUS_MULTIPROC_DIR": f"{folder}-metrics"},
                  folder.with_suffix(".log"), workers=args.workers, app=app) as server:
        asyncio.run(drive(server.port, lambda c: c.send("GET", "/healthz"), args.connections, 2.0))
        return resident_mb(server.workers())


if __name__ == "__main__":
    main()
