"""Caps per caller: open progress streams and active runs get 429 with Retry-After beyond them; streams end when idle."""
import http.client
import json
import time
from urllib.parse import urlsplit

import pytest

from tests.helpers import assert_error, park_runs, serving
from tests.repro.cases import TINY

API = "/api/v1/conversations"
ALICE, BOB, CAROL = ({"Authorization": f"Bearer {name}"} for name in ("alice", "bob", "carol"))


@pytest.fixture
def parked(make_app):
    """An app with tokens whose runs stay queued: (a test client, a function starting a run for a caller)."""
    app = park_runs(make_app(API_TOKENS=["alice", "bob", "carol"], STREAMS_PER_CALLER=2, STREAMS_PER_PROCESS=3,
                             RUNS_PER_CALLER=2, STREAM_IDLE_SECONDS=1))
    client = app.test_client()

    def run(headers) -> dict:
        conversation = client.post(API, json=TINY, headers=headers).get_json()["id"]
        response = client.post(f"{API}/{conversation}/reproductions", headers=headers)
        return response.get_json() if response.status_code == 202 else response

    with serving(app) as url:
        yield client, run, urlsplit(url).port


def stream(port: int, path: str, headers: dict) -> http.client.HTTPResponse:
    """A progress stream opened on the served app, its status and headers read and its body left unread."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", path, headers=headers)
    return connection.getresponse()


def refusal(response: http.client.HTTPResponse) -> str:
    assert response.status == 429 and int(response.headers["Retry-After"]) >= 10
    body = json.loads(response.read())
    assert body["error"]["code"] == "too_many_requests"
    return body["error"]["message"]


def test_a_caller_may_hold_only_a_few_streams_and_the_process_only_a_few_more(parked):
    _, run, port = parked
    events = run(ALICE)["links"]["events"]
    open_ = [stream(port, events, ALICE) for _ in range(2)]
    assert [response.status for response in open_] == [200, 200]
    assert "2 progress streams open" in refusal(stream(port, events, ALICE))

    open_.append(stream(port, run(BOB)["links"]["events"], BOB))
    assert open_[-1].status == 200  # another caller is not held back by the first one's streams
    assert "as many progress streams as it takes" in refusal(stream(port, run(CAROL)["links"]["events"], CAROL))

    open_.pop(0).read()  # a stream that ends (here: idle) gives its slot back, once its thread has finished
    deadline = time.monotonic() + 5
    while (again := stream(port, events, ALICE)).status == 429 and time.monotonic() < deadline:
        again.close()
        time.sleep(0.1)
    assert again.status == 200
    for response in (again, *open_):
        response.close()


def test_a_stream_ends_when_the_run_does_not_change(parked):
    client, run, _ = parked
    started = run(ALICE)
    began = time.monotonic()
    body = client.get(started["links"]["events"], headers=ALICE).get_data(as_text=True)
    assert 1 <= time.monotonic() - began < 5
    assert body.startswith("retry: 5000\n\nid: ") and body.count("event: progress\n") == 1
    assert body.endswith('event: reconnect\nretry: 5000\ndata: {"reason": "idle"}\n\n')


def test_a_caller_may_have_only_a_few_runs_queued_or_running(parked):
    client, run, _ = parked
    first, _ = run(ALICE), run(ALICE)
    refused = run(ALICE)
    assert "2 runs queued or running" in assert_error(refused, 429, "too_many_requests")
    assert int(refused.headers["Retry-After"]) >= 30
    assert run(BOB)["status"] == "queued"  # another caller's run is taken
    client.post(first["links"]["cancel"], headers=ALICE)
    assert run(ALICE)["status"] == "queued"  # a run that ended frees its place
