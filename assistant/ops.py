"""What operators watch: liveness and readiness probes, and request counts, latencies and errors for Prometheus.

Under gunicorn every worker process counts on its own. With ``PROMETHEUS_MULTIPROC_DIR`` set
(gunicorn's settings in :mod:`assistant.serving` set it) the workers keep their counts in files
there, and ``/metrics`` adds up all of them, whichever worker answers the scrape. The runs' own
figures (:mod:`assistant.repro.metrics`) are read at the scrape.
"""
from __future__ import annotations

import os
from typing import Any

from flask import Blueprint, Flask, Response, current_app, request
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import text

from . import db
from .logs import elapsed
from .repro import reproductions
from .repro.metrics import RunsCollector

#: Seconds the broker gets to answer the readiness probe.
BROKER_TIMEOUT = 2.0

REQUESTS = Counter("assistant_http_requests", "HTTP requests answered, by method, route and status.",
                   ["method", "route", "status"])
ERRORS = Counter("assistant_http_errors", "HTTP requests answered with a server error (5xx).", ["method", "route"])
LATENCY = Histogram("assistant_http_request_duration_seconds",
                    "Time to answer an HTTP request (to its headers, for a stream).", ["method", "route"],
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def healthz() -> dict[str, Any]:
    """The process answers; nothing else is asked, so a slow database never gets a healthy worker restarted."""
    return {"status": "ok"}


@bp.get("/readyz")
def readyz() -> tuple[dict[str, Any], int]:
    """Whether this machine can serve: the database answers, and the broker too where runs go to Celery.

    With no Celery worker answering, runs wait but all else works: ``degraded``, still 200, so that
    the balancer keeps the machine (every machine would fail the same check).
    """
    checks = {"database": _check(_database)}
    if current_app.config["REPRO_BACKEND"] == "celery":
        checks["broker"] = _check(_broker)
        if checks["broker"] == "ok":
            checks["workers"] = _check(_workers)
    ready = all(outcome == "ok" for name, outcome in checks.items() if name != "workers")
    status = "unavailable" if not ready else "ready" if checks.get("workers", "ok") == "ok" else "degraded"
    return {"status": status, "checks": checks}, 200 if ready else 503


@bp.get("/metrics")
def metrics() -> Response:
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    runs, read_now = reproductions(), CollectorRegistry()
    if runs is not None:
        read_now.register(RunsCollector(current_app._get_current_object(), runs.backend))
    return Response(generate_latest(registry) + generate_latest(read_now), content_type=CONTENT_TYPE_LATEST)


def _check(probe: Any) -> str:
    """``ok``, what the probe returned, or the kind of failure; the reason goes to the log, since a failure's
    text names hosts, databases and users, and the probe answers anyone who asks."""
    try:
        found = probe()
    except Exception as failure:  # noqa: BLE001 - any failure means not ready
        current_app.logger.warning("readiness: %s failed: %s", probe.__name__.strip("_"),
                                   f"{type(failure).__name__}: {failure}".splitlines()[0][:300])
        return f"unavailable ({type(failure).__name__}; the reason is in the service's log)"
    return found or "ok"


def _database() -> None:
    """The database takes a write: a row changed, then rolled back. ``SELECT 1`` also passes on a database that
    refuses writes (a read-only file, a replica, a full disk), where every turn would fail."""
    db.ensure_reached()
    with db.get_engine().connect() as connection, connection.begin() as transaction:
        connection.execute(text("UPDATE alembic_version SET version_num = version_num"))
        transaction.rollback()


def _broker() -> None:
    with current_app.extensions["celery"].connection_for_write() as connection:
        connection.ensure_connection(max_retries=0, timeout=BROKER_TIMEOUT)


def _workers() -> str | None:
    return None if reproductions().backend.workers() else "degraded: no worker answered"


def _count(response: Response) -> Response:
    """Count the request under its route's pattern, never its path, so that ids do not multiply the series."""
    route = request.url_rule.rule if request.url_rule else "unmatched"
    REQUESTS.labels(request.method, route, str(response.status_code)).inc()
    LATENCY.labels(request.method, route).observe(elapsed())
    if response.status_code >= 500:
        ERRORS.labels(request.method, route).inc()
    return response


def init_app(app: Flask) -> None:
    """Serve the probes and the metrics, and count every request."""
    app.register_blueprint(bp)
    app.after_request(_count)
