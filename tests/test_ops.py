"""What operators watch: the probes, request ids in JSON log lines, and the Prometheus counters."""
from __future__ import annotations

import io
import json
import logging

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import create_engine

from assistant.logs import JsonFormatter


def test_healthz_answers_while_the_process_lives(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}


def test_readyz_checks_the_database_and_names_no_host(app, client, caplog):
    assert client.get("/readyz").get_json() == {"status": "ready", "checks": {"database": "ok"}}
    app.extensions["assistant.db"] = create_engine("postgresql+psycopg://nobody@127.0.0.1:1/secretdb")
    with caplog.at_level(logging.WARNING):
        response = client.get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "unavailable" and body["checks"]["database"].startswith("unavailable (OperationalError")
    assert "127.0.0.1" not in response.get_data(as_text=True) and "secretdb" not in response.get_data(as_text=True)
    assert "127.0.0.1" in caplog.text  # the operator finds the reason in the log


def test_readyz_proves_a_write(app, client):
    """A database that answers SELECT 1 but refuses writes (here: a transaction set read-only) is not ready."""
    from sqlalchemy import event

    engine = app.extensions["assistant.db"]
    event.listen(engine, "begin", lambda connection: connection.exec_driver_sql(
        "PRAGMA query_only = ON" if engine.dialect.name == "sqlite" else "SET TRANSACTION READ ONLY"))
    response = client.get("/readyz")
    assert response.status_code == 503 and response.get_json()["checks"]["database"].startswith("unavailable")


def test_readyz_checks_the_broker_where_runs_go_to_celery(make_app):
    unreachable = make_app(REPRO_BACKEND="celery", CELERY_BROKER_URL="redis://127.0.0.1:1/0").test_client()
    response = unreachable.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["database"] == "ok"
    assert response.get_json()["checks"]["broker"].startswith("unavailable (OperationalError")


def test_readyz_is_degraded_while_no_worker_answers(make_app, redis_url):
    """Runs wait, everything else works: still 200, so the balancer keeps the machine (tests/repro/test_drill.py: ready)."""
    response = make_app(REPRO_BACKEND="celery", CELERY_BROKER_URL=redis_url).test_client().get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "degraded", "checks": {
        "database": "ok", "broker": "ok", "workers": "degraded: no worker answered"}}


def test_runs_by_status_are_metrics(app, client):
    from assistant import conversations
    from assistant.repro import store
    from tests.repro.cases import TINY

    with app.app_context():
        conversation_id, _ = conversations.start(None, TINY)
        run = store.create(conversation_id, None, "local", [], [])
        store.claim(run["id"])
    exposed = client.get("/metrics").get_data(as_text=True)
    assert 'assistant_repro_runs{status="running"} 1.0' in exposed
    assert 'assistant_repro_runs{status="queued"} 0.0' in exposed
    assert "# TYPE assistant_repro_run_duration_seconds histogram" in exposed


@pytest.mark.parametrize(("sent", "kept"), [
    ("lb-7f3a.42", True),
    ("a" * 128, True),
    ("a" * 129, False),
    ("two words", False),
    ('x", "level": "critical', False),  # would forge a field of the log line
    (None, False),
])
def test_every_response_carries_a_request_id(client, sent, kept):
    response = client.get("/api/v1/conversations", headers={"X-Request-ID": sent} if sent else {})
    assert (response.headers["X-Request-ID"] == sent) is kept
    assert len(response.headers["X-Request-ID"]) == 32 or kept


@pytest.fixture
def log_lines():
    """What the JSON formatter writes for the app's loggers while the test runs, parsed."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("assistant")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_each_request_is_one_json_line_with_its_id(client, log_lines):
    response = client.post("/api/v1/conversations", json={"symptom": "loss is nan"}, headers={"X-Request-ID": "r-1"})
    (line,) = [line for line in log_lines() if line["logger"] == "assistant.requests"]
    assert line["request_id"] == response.headers["X-Request-ID"] == "r-1"
    assert line["message"] == "POST /api/v1/conversations 201"
    assert (line["method"], line["path"], line["status"], line["remote_addr"]) == (
        "POST", "/api/v1/conversations", 201, "127.0.0.1")
    assert line["duration_ms"] > 0 and line["level"] == "info" and line["time"].endswith("+00:00")


def test_a_fault_is_logged_with_its_traceback_under_the_requests_id(make_app, log_lines):
    app = make_app()

    @app.get("/fault")
    def fault():
        raise RuntimeError("the disk is on fire")

    response = app.test_client().get("/fault", headers={"X-Request-ID": "r-2"})
    assert response.status_code == 500 and "fire" not in response.get_data(as_text=True)
    fault_line, request_line = log_lines()
    assert fault_line["request_id"] == request_line["request_id"] == "r-2"
    assert fault_line["level"] == "error" and "RuntimeError: the disk is on fire" in fault_line["exception"]
    assert request_line["status"] == 500


def test_probes_are_not_logged(client, log_lines):
    client.get("/healthz")
    client.get("/readyz")
    assert log_lines() == []


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_requests_latencies_and_errors_are_counted_by_route(make_app):
    app = make_app()

    @app.get("/fault")
    def fault():
        raise RuntimeError("boom")

    client = app.test_client()
    route = "/api/v1/conversations/<conversation_id>"
    before = (_sample("assistant_http_requests_total", method="GET", route=route, status="404"),
              _sample("assistant_http_request_duration_seconds_count", method="GET", route=route),
              _sample("assistant_http_errors_total", method="GET", route="/fault"))
    for number in range(3):
        client.get(f"/api/v1/conversations/conv-{number:032d}")
    client.get("/fault")
    after = (_sample("assistant_http_requests_total", method="GET", route=route, status="404"),
             _sample("assistant_http_request_duration_seconds_count", method="GET", route=route),
             _sample("assistant_http_errors_total", method="GET", route="/fault"))
    assert [b - a for a, b in zip(before, after)] == [3, 3, 1]

    exposed = client.get("/metrics")
    assert exposed.status_code == 200 and exposed.mimetype == "text/plain"
    assert f'assistant_http_requests_total{{method="GET",route="{route}",status="404"}}' in exposed.get_data(as_text=True)


def test_paths_never_become_series(client):
    client.get("/no/such/page/unique-token-qzx")  # letters: a number could appear in a sample's value
    assert "unique-token-qzx" not in client.get("/metrics").get_data(as_text=True)

