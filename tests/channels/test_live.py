"""Live training runs over the API: epochs posted one by one, each answered with the diagnosis of the run so far.

The first half drives the endpoints with the test client (on SQLite and PostgreSQL); the second
trains real Keras models with Keras's own ``RemoteMonitor`` posting to the app served on loopback
(marked ``tf``; Keras is imported by those tests only).
"""
from __future__ import annotations

import json
import math
import urllib.request

import numpy as np
import pytest

from assistant.channels.api import openapi_document
from tests.helpers import assert_error, assert_fits, lazy_module

keras = lazy_module("keras")
API = "/api/v1"
TRAINING = {"optimizer": "sgd", "learning_rate": 10.0, "loss": "mse", "output_units": 1,
            "output_activation": "linear"}
EXPLODING = [0.9, 4.0, 75.0, float("nan"), float("nan")]


def start(client, **fields) -> str:
    response = client.post(f"{API}/conversations", json={"symptom": "training a regression model", **fields})
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()["id"]


def post_epoch(client, path: str, logs: dict, **kwargs) -> dict:
    response = client.post(path, data=json.dumps(logs), content_type="application/json", **kwargs)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert_fits("ConversationReply", response.get_json())
    return response.get_json()


def test_each_epoch_is_diagnosed_with_the_run_so_far(client):
    conversation = start(client, training=TRAINING)
    replies = [post_epoch(client, f"{API}/conversations/{conversation}/epochs", {"epoch": epoch, "loss": loss})
               for epoch, loss in enumerate(EXPLODING)]

    assert [reply["reply"]["live"]["epochs"] for reply in replies] == [1, 2, 3, 4, 5]
    assert [reply["reply"]["live"]["epoch"] for reply in replies] == [0, 1, 2, 3, 4]
    assert replies[0]["reply"]["live"]["problems"] == []
    assert {"fact": "loss_diverges", "text": "loss grew from 0.9 to 75"} in replies[2]["reply"]["live"]["problems"]
    assert {"fact": "loss_is_nan", "text": "loss became nan at epoch 4"} in replies[3]["reply"]["live"]["problems"]
    assert all(reply["reply"]["causes"][0]["id"] == "learning_rate_too_high" for reply in replies)
    assert "loss became nan at epoch 4" in replies[-1]["reply"]["causes"][0]["evidence"]


def test_the_transcript_shows_an_epoch_only_when_the_diagnosis_changes(client, row_counts):
    conversation = start(client, training=TRAINING)
    for epoch, loss in enumerate(EXPLODING):
        post_epoch(client, f"{API}/conversations/{conversation}/epochs", {"epoch": epoch, "loss": loss})

    shown = client.get(f"{API}/conversations/{conversation}").get_json()
    live_turns = [turn["body"] for turn in shown["turns"] if turn["role"] == "user" and "epoch" in turn["body"]]
    # The leading cause never changes; the problems do at epoch 2 (diverging) and 3 (NaN).
    assert [turn["epoch"]["epoch"] for turn in live_turns] == [2, 3]
    assert live_turns[-1]["history"]["loss"][:3] == [0.9, 4.0, 75.0]
    assert row_counts()["live_epochs"] == 5
    assert shown["facts"]["epochs_run"] == 5  # the state followed every epoch


def test_an_epoch_number_seen_before_starts_the_run_again_from_there(client):
    conversation = start(client)
    path = f"{API}/conversations/{conversation}/epochs"
    for epoch, loss in enumerate(EXPLODING):
        post_epoch(client, path, {"epoch": epoch, "loss": loss})
    again = post_epoch(client, path, {"epoch": 1, "loss": 0.8})
    assert again["reply"]["live"] == {"epoch": 1, "epochs": 2, "problems": []}
    assert client.get(f"{API}/conversations/{conversation}").get_json()["facts"]["loss_last"] == 0.8


def test_a_conversation_goes_on_after_its_live_run(client):
    conversation = start(client)
    for epoch, loss in enumerate(EXPLODING):
        post_epoch(client, f"{API}/conversations/{conversation}/epochs", {"epoch": epoch, "loss": loss})
    turn = client.post(f"{API}/conversations/{conversation}/turns", json={"facts": {"learning_rate": 10}})
    assert turn.status_code == 200
    assert turn.get_json()["reply"]["causes"][0]["id"] == "learning_rate_too_high"
    assert "loss became nan at epoch 4" in turn.get_json()["reply"]["causes"][0]["evidence"]


def test_remote_monitor_payloads_open_a_named_session(client):
    form = client.post(f"{API}/live/run-1", data={"data": json.dumps({"epoch": 0, "loss": 0.69, "accuracy": 0.5})})
    assert form.status_code == 200, form.get_data(as_text=True)
    conversation = form.get_json()["id"]
    as_json = post_epoch(client, f"{API}/live/run-1", {"epoch": 1, "loss": 0.69, "accuracy": 0.5})
    assert as_json["id"] == conversation
    assert as_json["reply"]["live"]["epochs"] == 2

    polled = client.get(f"{API}/live/run-1")
    assert polled.status_code == 200
    assert_fits("ConversationReply", polled.get_json())
    assert polled.get_json()["reply"]["live"]["epoch"] == 1
    assert client.get(f"{API}/conversations/{conversation}").get_json()["title"] == "Live training run run-1"
    assert post_epoch(client, f"{API}/live/run-2", {"epoch": 0, "loss": 1.0})["id"] != conversation


def test_remote_monitor_nan_from_its_form_payload(client):
    # RemoteMonitor's form carries the logs as Python's json.dumps writes them: NaN as a bare literal.
    for epoch, loss in enumerate(EXPLODING):
        response = client.post(f"{API}/live/exploding", data={"data": json.dumps({"epoch": epoch, "loss": loss})})
        assert response.status_code == 200, response.get_data(as_text=True)
    assert {"fact": "loss_is_nan", "text": "loss became nan at epoch 4"} in response.get_json()["reply"]["live"]["problems"]


def test_live_sessions_belong_to_the_token_that_posts(make_app):
    client = make_app(API_TOKENS=["alice-token", "bob-token"]).test_client()
    alice, bob = ({"Authorization": f"Bearer {name}-token"} for name in ("alice", "bob"))
    first = post_epoch(client, f"{API}/live/run", {"epoch": 0, "loss": 1.0}, headers=alice)
    assert post_epoch(client, f"{API}/live/run", {"epoch": 0, "loss": 2.0}, headers=bob)["id"] != first["id"]
    assert client.get(f"{API}/live/run", headers=alice).get_json()["reply"]["live"]["epochs"] == 1
    assert_error(client.get(f"{API}/conversations/{first['id']}", headers=bob), 404, "not_found")
    assert_error(client.post(f"{API}/live/run", json={"epoch": 0, "loss": 1.0}), 401, "unauthorized")


@pytest.mark.parametrize(("path", "kwargs", "status", "code", "says"), [
    ("/live/run", {"json": {"loss": 0.5}}, 400, "bad_input", "'epoch' is a required property"),
    ("/live/run", {"json": {"epoch": -1, "loss": 0.5}}, 400, "bad_input", "epoch"),
    ("/live/run", {"json": {"epoch": 0, "loss": [0.5]}}, 400, "bad_input", "loss"),
    ("/live/run", {"json": {"epoch": 0, "loss": "lots"}}, 400, "bad_input", "record 1"),
    ("/live/run", {"data": {"data": "{not json"}}, 400, "bad_input", "data: not valid JSON"),
    ("/live/run", {"data": {"logs": "{}"}}, 400, "bad_input", "'data' is a required property"),
    ("/live/run", {"data": "epoch=0", "content_type": "text/plain"}, 415, "unsupported_media_type", "JSON"),
    ("/live/-run", {"json": {"epoch": 0, "loss": 0.5}}, 400, "bad_input", "session name"),
    (f"/conversations/conv-{'0' * 32}/epochs", {"json": {"epoch": 0, "loss": 0.5}}, 404, "not_found", "conv-"),
])
def test_bad_epochs_get_a_clear_refusal(client, row_counts, path, kwargs, status, code, says):
    message = assert_error(client.post(API + path, **kwargs), status, code)
    assert says in message
    assert row_counts()["live_epochs"] == 0


def test_polling_a_session_before_its_first_epoch(client):
    assert "no epochs" in assert_error(client.get(f"{API}/live/later"), 404, "not_found")


def test_a_run_longer_than_the_service_reads_is_refused(make_app, row_counts):
    client = make_app(MAX_EPOCHS=2).test_client()
    for epoch in range(2):
        post_epoch(client, f"{API}/live/long", {"epoch": epoch, "loss": 1.0})
    message = assert_error(client.post(f"{API}/live/long", json={"epoch": 2, "loss": 1.0}), 413, "too_large")
    assert "3 epochs" in message
    assert row_counts()["live_epochs"] == 2


def test_the_live_endpoints_are_documented():
    document = openapi_document()
    assert {"/conversations/{id}/epochs", "/live/{session}"} <= set(document["paths"])
    assert set(document["paths"]["/live/{session}"]) >= {"get", "post"}
    form = document["paths"]["/live/{session}"]["post"]["requestBody"]["content"]
    assert set(form) == {"application/json", "application/x-www-form-urlencoded"}


# --- Keras's RemoteMonitor, training for real against the app on loopback ---------------------------


def data(task: str) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 8)).astype("float32")
    target = x @ rng.normal(size=8)
    return x, (target > 0).astype("int64") if task == "binary" else target.astype("float32")


def small_model(task: str, optimizer: keras.optimizers.Optimizer) -> keras.Model:
    keras.utils.set_random_seed(0)
    head = keras.layers.Dense(1, activation="sigmoid" if task == "binary" else None)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), head])
    model.compile(optimizer=optimizer, loss="binary_crossentropy" if task == "binary" else "mse",
                  metrics=["accuracy"] if task == "binary" else [])
    return model


def poll_callback(url: str) -> keras.callbacks.Callback:
    """A Poll callback; its class is defined when a test first needs Keras."""

    class Poll(keras.callbacks.Callback):
        """After each epoch (after RemoteMonitor has posted it), read the session's diagnosis as a user would."""

        def __init__(self, url: str) -> None:
            super().__init__()
            self.url = url
            self.seen: list[dict] = []

        def on_epoch_end(self, epoch, logs=None):
            with urllib.request.urlopen(self.url, timeout=10) as response:
                self.seen.append(json.load(response)["reply"])

    return Poll(url)


@pytest.mark.tf
@pytest.mark.parametrize("send_as_json", [False, True], ids=["form", "json"])
def test_remote_monitor_names_a_learning_rate_too_low_before_training_ends(served, send_as_json):
    _, url = served
    path = f"/api/v1/live/slow-{send_as_json}"
    monitor = keras.callbacks.RemoteMonitor(root=url, path=path, send_as_json=send_as_json)
    poll = poll_callback(url + path)
    x, y = data("binary")
    small_model("binary", keras.optimizers.Adam(learning_rate=1e-6)).fit(
        x, y, validation_split=0.2, epochs=6, batch_size=32, verbose=0, callbacks=[monitor, poll])

    assert [reply["live"]["epochs"] for reply in poll.seen] == [1, 2, 3, 4, 5, 6]
    named = [i for i, reply in enumerate(poll.seen)
             if reply["causes"][0]["id"] == "learning_rate_too_low"
             and "loss_flat" in {problem["fact"] for problem in reply["live"]["problems"]}]
    assert named and named[0] < 5, [(r["causes"][0]["id"], r["live"]["problems"]) for r in poll.seen]


@pytest.mark.tf
def test_remote_monitor_reports_a_learning_rate_of_ten(served):
    """A NaN loss from the first epoch could also be NaN inputs: the service names both and asks which."""
    _, url = served
    path = "/api/v1/live/fast"
    poll = poll_callback(url + path)
    x, y = data("regression")
    history = small_model("regression", keras.optimizers.SGD(learning_rate=10.0)).fit(
        x, y, validation_split=0.2, epochs=4, batch_size=32, verbose=0,
        callbacks=[keras.callbacks.RemoteMonitor(root=url, path=path), poll])

    assert not math.isfinite(history.history["loss"][0])
    first = poll.seen[0]
    assert first["live"]["problems"][0]["fact"] == "loss_is_nan"
    assert "learning_rate_too_high" in [cause["id"] for cause in first["causes"]]
    assert "learning_rate" in [question["fact"] for question in first["questions"]]

    with urllib.request.urlopen(url + path) as response:
        conversation = json.load(response)["id"]
    request = urllib.request.Request(f"{url}/api/v1/conversations/{conversation}/turns", method="POST",
                                     data=json.dumps({"facts": {"optimizer": "sgd", "learning_rate": 10}}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as response:
        assert json.load(response)["reply"]["causes"][0]["id"] == "learning_rate_too_high"
