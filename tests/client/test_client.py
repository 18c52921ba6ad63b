"""The notebook client against the real app served on loopback, and against servers that misbehave."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import numpy as np
import pandas as pd
import pytest
from werkzeug.wrappers import Request, Response

from assistant.client import Client, Diagnosis, InputError, ServiceError, Unreachable
from tests.helpers import refused_url, serving, shipped_kb

#: A loss that turns NaN without first exploding: the service cannot tell the cause yet, so it asks.
HISTORY = {"loss": [0.9, 0.85, 0.8, float("nan")], "val_loss": [1.0, 0.95, 0.9, float("nan")]}


@pytest.fixture
def url(app):
    with serving(app) as base:
        yield base


def test_diagnose_and_reply(url):
    client = Client(url)
    diagnosis = client.diagnose("the loss turns nan", history=HISTORY, training={"optimizer": "adam"})
    assert isinstance(diagnosis, Diagnosis) and diagnosis.id.startswith("conv-")
    assert "learning_rate" in [question["fact"] for question in diagnosis.questions]

    answered = diagnosis.reply(facts={"learning_rate": 5.0})
    assert answered.id == diagnosis.id
    assert answered.causes[0]["id"] == "learning_rate_too_high"
    assert "learning rate 5 is far above the usual 0.001 for adam" in answered.causes[0]["evidence"]
    again = client.reply(answered, "I also normalise the inputs", training={"input_scaling": "standardize"})
    assert again.causes[0]["id"] == "learning_rate_too_high"


@pytest.mark.parametrize("history", [
    HISTORY,
    pd.DataFrame(HISTORY),
    type("History", (), {"history": HISTORY})(),  # what model.fit returns, as far as the client looks
    [{"epoch": epoch, "loss": loss} for epoch, loss in enumerate(HISTORY["loss"])],
], ids=["dict", "dataframe", "keras-history", "records"])
def test_every_kind_of_history_reaches_the_service(url, history):
    diagnosis = Client(url).diagnose("the loss turns nan", history=history)
    assert any("loss became nan at epoch 4" in cause["evidence"] for cause in diagnosis.causes)


def test_only_the_summary_of_the_data_travels(url, app):
    x = np.random.default_rng(0).normal(size=(500, 3))
    y = np.array([0] * 450 + [1] * 50)
    diagnosis = Client(url).diagnose("accuracy is stuck at 90%", x=x, y=y, dataset={"n_samples": 1000})
    turn = app.test_client().get(f"/api/v1/conversations/{diagnosis.id}").get_json()["turns"][0]["body"]
    sent = turn["dataset"]
    assert set(sent) <= set(shipped_kb().vocabulary)
    assert sent["class_counts"] == {"0": 450, "1": 50} and sent["sorted_by_label"] is True
    assert sent["n_samples"] == 1000  # the user's own facts win over what was computed
    assert len(json.dumps(turn)) < 2000


def test_the_services_refusal_carries_its_message(url):
    with pytest.raises(ServiceError) as raised:
        Client(url).diagnose("stuck", training={"learning_rate": "fast"})
    assert raised.value.status == 400 and raised.value.code == "bad_input"
    assert raised.value.message.startswith("training.learning_rate: expected a number")
    assert str(raised.value) == f"{raised.value.message} (400 bad_input)"

    with pytest.raises(ServiceError, match="no conversation conv-0+") as raised:
        Client(url).reply("conv-" + "0" * 32, "hello")
    assert raised.value.status == 404


def test_tokens(make_app):
    with serving(make_app(API_TOKENS=["s3cret"])) as base:
        assert Client(base, token="s3cret").diagnose("loss is flat").causes
        with pytest.raises(ServiceError) as raised:
            Client(base, token="wrong").diagnose("loss is flat")
    assert raised.value.status == 401 and "Bearer" in raised.value.message


def test_in_process_needs_no_server():
    client = Client.in_process()
    diagnosis = client.diagnose("the loss turns nan", history=HISTORY)
    assert diagnosis.reply(facts={"learning_rate": 5.0}).causes[0]["id"] == "learning_rate_too_high"


def test_nothing_listening():
    with refused_url() as url:
        with pytest.raises(Unreachable, match=f"could not reach the service at {url}: .*refused"):
            Client(url).diagnose("loss is flat")


def test_a_server_that_is_not_the_service():
    @Request.application
    def elsewhere(request):
        return Response("<html>It works!</html>", status=200 if request.path == "/" else 404, mimetype="text/html")

    with serving(elsewhere) as base:
        with pytest.raises(ServiceError, match="is it a keras-troubleshooter service") as raised:
            Client(base).diagnose("loss is flat")
    assert raised.value.status == 404


def test_a_service_too_slow_to_answer():
    release = threading.Event()

    @Request.application
    def slow(request):
        release.wait(5)
        return Response("{}", mimetype="application/json")

    with serving(slow) as base:
        started = time.monotonic()
        with pytest.raises(Unreachable, match="timed out"):
            Client(base, timeout=0.3).diagnose("loss is flat")
        release.set()
    assert time.monotonic() - started < 3


def test_not_a_web_address():
    with pytest.raises(InputError, match="'localhost:5000' is not a web address"):
        Client("localhost:5000").diagnose("loss is flat")


def test_what_the_client_refuses_before_sending():
    client = Client("http://127.0.0.1:9")  # never reached: each is refused first
    with pytest.raises(InputError, match="symptom"):
        client.diagnose("  ")
    with pytest.raises(InputError, match="give an answer, facts or evidence"):
        client.reply("conv-" + "0" * 32)
    with pytest.raises(InputError, match="cannot be sent"):
        client.diagnose("loss is flat", dataset={"task": object()})


def test_the_client_imports_without_tensorflow():
    code = ("import sys; sys.modules['tensorflow'] = sys.modules['keras'] = None; "
            "import assistant.client; from assistant.client import Client; "
            "Client.in_process().diagnose('loss is flat', history={'loss': [0.7, 0.7, 0.7]}); "
            "assert 'keras' not in [m for m in sys.modules if sys.modules[m] is not None]")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
