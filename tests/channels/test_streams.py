"""Progress streams over real HTTP: opened again with Last-Event-ID they send neither a duplicate nor leave a
gap; they end with a ``reconnect`` event when idle or when their gunicorn worker stops, and the request log
says how each one ended."""
from __future__ import annotations

import http.client
import json
import logging
import signal
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from sqlalchemy import update

from assistant import db
from benchmarks.loopback import HOST, gunicorn
from tests.helpers import app_factory, park_runs, serving
from tests.repro.cases import TINY

API = "/api/v1/conversations"
RECONNECT = {"retry": "5000", "event": "reconnect"}


@pytest.fixture
def parked(make_app):
    """A queued run that nothing trains, served on a loopback port: (the app, the run, the port)."""
    app = park_runs(make_app(STREAM_IDLE_SECONDS=1))
    client = app.test_client()
    conversation = client.post(API, json=TINY).get_json()["id"]
    run = client.post(f"{API}/{conversation}/reproductions").get_json()
    with serving(app) as url:
        yield app, run, urlsplit(url).port


def change(app, run: dict, **values) -> None:
    """Change the stored run, as its worker would."""
    with app.app_context(), db.get_engine().begin() as connection:
        connection.execute(update(db.reproductions).where(db.reproductions.c.id == run["id"]).values(**values))


def open_stream(port: int, path: str, last: str | None = None) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection(HOST, port, timeout=15)
    connection.request("GET", path, headers={"Last-Event-ID": last} if last else {})
    return connection.getresponse()


def blocks(response: http.client.HTTPResponse) -> Iterator[dict[str, str]]:
    """The stream's blocks as they arrive, each as its fields (comments left out), until it ends."""
    fields: dict[str, str] = {}
    while line := response.readline():
        line = line.decode().rstrip("\n")
        if not line:
            if fields:
                yield fields
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(": ")
            fields[name] = value


def follow(port: int, path: str, last: str | None = None) -> list[dict[str, str]]:
    """A stream read to its end: its blocks, the first of which sets only ``retry``."""
    response = open_stream(port, path, last)
    assert response.status == 200
    found = list(blocks(response))
    assert found[0] == {"retry": "5000"}
    return found[1:]


def logged(records: list[logging.LogRecord], path: str, count: int = 1) -> list[dict]:
    """The request log's fields for ``path``, once ``count`` lines are in (a stream's is written as it closes)."""
    deadline = time.monotonic() + 3
    while True:
        found = [record.fields for record in records if getattr(record, "fields", {}).get("path") == path]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_a_stream_opened_again_with_last_event_id_sends_no_duplicate_and_leaves_no_gap(parked, caplog):
    caplog.set_level(logging.INFO, logger="assistant.requests")
    app, run, port = parked
    path = run["links"]["events"]
    first = follow(port, path)
    assert [block.get("event") for block in first] == ["progress", "reconnect"]
    seen = first[0]
    assert json.loads(seen["data"])["status"] == "queued" and seen["id"]
    assert first[1] == {**RECONNECT, "data": '{"reason": "idle"}'}  # no id: the client's last one stands

    assert follow(port, path, seen["id"]) == [{**RECONNECT, "data": '{"reason": "idle"}'}]  # nothing new: nothing sent
    change(app, run, status="running", progress={"epoch": 3, "epochs": 6, "experiment": "baseline"})
    resumed = follow(port, path, seen["id"])
    assert [block.get("event") for block in resumed] == ["progress", "reconnect"]
    assert json.loads(resumed[0]["data"])["progress"]["epoch"] == 3 and resumed[0]["id"] != seen["id"]

    change(app, run, status="done", progress={"epoch": 6, "epochs": 6, "experiment": "baseline"})
    ended = follow(port, path, resumed[0]["id"])
    assert [block.get("event") for block in ended] == ["done"]  # the run's end, and no reconnect after it
    again = open_stream(port, path, ended[0]["id"])
    assert again.status == 204 and again.read() == b""  # seen to its end: an EventSource stops here
    assert follow(port, path, "an-id-of-another-run")[0]["id"] == ended[0]["id"]  # an unknown id: the run as it is

    lines = logged(caplog.records, path, 6)  # in the order the streams closed, which may trail the next request
    assert sorted((line["status"], line.get("stream_ended") or "") for line in lines) == [
        (200, "completed"), (200, "completed"), (200, "idle"), (200, "idle"), (200, "idle"), (204, "")]
    idle = [line["duration_ms"] for line in lines if line.get("stream_ended") == "idle"]
    assert min(idle) >= 1000  # timed to the stream's end, not to its headers


def test_a_client_gone_before_the_end_is_logged_as_closed(parked, caplog):
    caplog.set_level(logging.INFO, logger="assistant.requests")
    app, run, port = parked
    response = open_stream(port, run["links"]["events"])
    next(blocks(response))
    response.close()
    for epoch in (1, 2):  # the first write after the close still goes out; the second finds the connection reset
        change(app, run, progress={"epoch": epoch, "epochs": 6})
        time.sleep(0.7)
    assert [line["stream_ended"] for line in logged(caplog.records, run["links"]["events"])] == ["closed"]


def test_a_stream_ends_at_its_time_limit_with_a_reconnect_event(make_app, caplog):
    caplog.set_level(logging.INFO, logger="assistant.requests")
    app = park_runs(make_app(STREAM_IDLE_SECONDS=30, STREAM_SECONDS=1))
    client = app.test_client()
    conversation = client.post(API, json=TINY).get_json()["id"]
    path = client.post(f"{API}/{conversation}/reproductions").get_json()["links"]["events"]
    with serving(app) as url:
        began = time.monotonic()
        ended = follow(urlsplit(url).port, path)
    assert time.monotonic() - began < 5 and ended[-1] == {**RECONNECT, "data": '{"reason": "limit"}'}
    assert [line["stream_ended"] for line in logged(caplog.records, path)] == ["limit"]


@pytest.mark.services  # gunicorn
def test_a_stream_ends_with_a_reconnect_event_when_its_worker_stops_and_resumes_on_the_next(tmp_path):
    """SIGHUP retires the worker holding the stream (as a reload does), SIGTERM stops the server: each time the
    client gets a final ``reconnect`` within a second or two, not a cut after the 30 s grace period."""
    url = f"sqlite:///{tmp_path / 'streams.sqlite'}"
    with app_factory(DATABASE_URL=url) as make:
        client = park_runs(make()).test_client()
        conversation = client.post(API, json=TINY).get_json()["id"]
        path = client.post(f"{API}/{conversation}/reproductions").get_json()["links"]["events"]
    environ = {"ASSISTANT_DATABASE_URL": url, "ASSISTANT_REPRO_SWEEP": "false", "ASSISTANT_STREAM_IDLE_SECONDS": "60"}
    log = tmp_path / "gunicorn.log"
    with gunicorn(environ, log, workers=1, threads=4) as server:
        first = server.workers()

        def held_then_stopped(sig: signal.Signals, last: str | None) -> list[dict[str, str]]:
            response = open_stream(server.port, path, last)
            stream = blocks(response)
            opened = [next(stream) for _ in range(1 if last else 2)]  # retry, and the run unless the client has it
            began = time.monotonic()
            server.process.send_signal(sig)
            rest = list(stream)
            assert time.monotonic() - began < 5
            return opened + rest

        reloaded = held_then_stopped(signal.SIGHUP, None)
        assert [block.get("event") for block in reloaded] == [None, "progress", "reconnect"]
        assert reloaded[-1] == {**RECONNECT, "data": '{"reason": "shutdown"}'}
        assert server.wait_for_workers(1, timeout=30) != first
        stopped = held_then_stopped(signal.SIGTERM, reloaded[1]["id"])  # the new worker, the same run: no duplicate
        assert stopped == [{"retry": "5000"}, {**RECONNECT, "data": '{"reason": "shutdown"}'}]
        server.process.wait(timeout=10)
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    streams = [line for line in lines if line.get("path") == path]
    assert [(line["status"], line["stream_ended"]) for line in streams] == [(200, "shutdown"), (200, "shutdown")]
    assert all(line["message"].endswith("200 (shutdown)") and line["request_id"] for line in streams)
