"""The live callback: real short Keras runs with a known fault, against the app served on loopback."""
from __future__ import annotations

import threading
import time
import warnings

import numpy as np
import pytest

from assistant.client import Client, TrainingProblem
from assistant.client.callback import QUEUE_SIZE
from tests.helpers import lazy_module, refused_url

pytestmark = pytest.mark.tf
keras = lazy_module("keras")  # collecting this module must not load TensorFlow

EPOCHS = 8


def regression(learning_rate: float) -> tuple[keras.Model, np.ndarray, np.ndarray]:
    """A small regression model compiled with plain SGD at ``learning_rate``, and its data."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 8)).astype("float32")
    y = (x @ rng.normal(size=8)).astype("float32")
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=learning_rate), loss="mse")
    return model, x, y


def train(model, x, y, callback) -> tuple[keras.callbacks.History, list[warnings.WarningMessage]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(x, y, validation_split=0.2, epochs=EPOCHS, batch_size=32, verbose=0, callbacks=[callback])
    return history, [w for w in caught if issubclass(w.category, (TrainingProblem, RuntimeWarning))]


def test_a_learning_rate_of_ten_is_named_and_training_stopped(served):
    app, url = served
    model, x, y = regression(learning_rate=10.0)
    callback = Client(url).callback(x=x, y=y, stop_training=True)
    history, caught = train(model, x, y, callback)

    assert len(history.epoch) < EPOCHS, "the callback stops the run at the first problem"
    (warning,) = caught
    assert warning.category is TrainingProblem
    assert str(warning.message).startswith("keras-troubleshooter: loss became ")
    assert "Most likely: learning rate too high (" in str(warning.message) and "Training stopped." in str(warning.message)
    assert callback.diagnosis.causes[0]["id"] == "learning_rate_too_high"
    assert "learning rate 10 is far above what any optimizer tolerates" in callback.diagnosis.causes[0]["evidence"]
    assert callback.problems[0]["fact"] in ("loss_is_nan", "loss_diverges")

    stored = app.test_client().get(f"/api/v1/conversations/{callback.conversation_id}").get_json()
    assert stored["facts"]["learning_rate"] == 10 and stored["facts"]["optimizer"] == "sgd"
    assert stored["facts"]["n_samples"] == 256  # the data's summary came along; the data did not


def test_it_warns_once_and_lets_training_run_unless_asked(served):
    _, url = served
    model, x, y = regression(learning_rate=10.0)
    callback = Client(url).callback()
    history, caught = train(model, x, y, callback)
    assert len(history.epoch) == EPOCHS
    assert [w.category for w in caught] == [TrainingProblem]
    assert callback.diagnosis.response["reply"]["live"]["epochs"] == EPOCHS


def test_a_healthy_run_raises_no_warning(served):
    _, url = served
    model, x, y = regression(learning_rate=0.01)
    callback = Client(url).callback()
    history, caught = train(model, x, y, callback)
    assert caught == [] and callback.problems == []
    assert callback.diagnosis.response["reply"]["live"]["epochs"] == EPOCHS


def test_an_unreachable_service_never_interrupts_training():
    with refused_url() as url:
        model, x, y = regression(learning_rate=0.01)
        callback = Client(url).callback()
        history, caught = train(model, x, y, callback)
    assert len(history.epoch) == EPOCHS
    (warning,) = caught
    assert warning.category is RuntimeWarning
    assert str(warning.message).startswith(f"keras-troubleshooter: no live diagnosis for this run: could not reach "
                                           f"the service at {url}")
    assert callback.diagnosis is None and callback.conversation_id is None


def test_a_service_that_goes_away_mid_run(served):
    app, url = served
    model, x, y = regression(learning_rate=0.01)
    callback = Client(url).callback()

    class Outage(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:  # once the first two epochs are answered, the service refuses what comes next
                deadline = time.monotonic() + 30
                while live_epochs(callback) < 2 and time.monotonic() < deadline:
                    time.sleep(0.01)
                app.config["API_TOKENS"] = ["rotated"]

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(x, y, epochs=EPOCHS, verbose=0, callbacks=[Outage(), callback])
    assert len(history.epoch) == EPOCHS
    messages = [str(w.message) for w in caught if w.category is RuntimeWarning]
    assert len(messages) == 1 and "(401 unauthorized)" in messages[0]
    assert callback.diagnosis.response["reply"]["live"]["epochs"] == 2


def test_data_it_cannot_summarise_only_turns_it_off():
    model, x, y = regression(learning_rate=0.01)
    callback = Client("http://127.0.0.1:9").callback(x=x, y=y[:10])  # never contacted: the arrays are refused first
    history, caught = train(model, x, y, callback)
    assert len(history.epoch) == EPOCHS
    assert [str(w.message) for w in caught] == [
        "keras-troubleshooter: no live diagnosis for this run: x has 256 samples but y has 10: "
        "pass the arrays that fit() trains on, row for row"]


def live_epochs(callback) -> int:
    """How many epochs the service's latest answer to the callback covers."""
    diagnosis = callback.diagnosis
    return diagnosis.response["reply"].get("live", {}).get("epochs", 0) if diagnosis is not None else 0


class Gate:
    """WSGI middleware that holds every request until ``open`` is set: a service as slow as a test wants."""

    def __init__(self, app) -> None:
        self.app, self.open, self.arrived = app, threading.Event(), threading.Semaphore(0)

    def __call__(self, environ, start_response):
        self.arrived.release()
        self.open.wait(60)
        return self.app(environ, start_response)


def test_a_slow_service_never_holds_up_an_epoch_and_drops_with_one_warning(served):
    app, url = served
    gate = app.wsgi_app = Gate(app.wsgi_app)
    model, _, _ = regression(learning_rate=0.01)
    callback = Client(url).callback()
    callback.set_model(model)
    epochs = QUEUE_SIZE + 10
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        callback.on_train_begin()
        assert gate.arrived.acquire(timeout=30), "the conversation is being opened"
        for epoch in range(epochs):  # while the service holds the first request, every epoch end returns
            callback.on_epoch_end(epoch, {"loss": 1.0 / (epoch + 1)})
        assert not gate.open.is_set() and callback.diagnosis is None
        gate.open.set()
        assert callback.wait(30)
        callback.on_train_end()
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1 and messages[0].startswith(
        f"keras-troubleshooter: the service answers slower than this run trains; epoch {QUEUE_SIZE}'s logs")
    assert live_epochs(callback) == QUEUE_SIZE, "the epochs that found room were all sent, the rest dropped"
    assert callback.diagnosis.response["reply"]["live"]["epochs"] == QUEUE_SIZE


def test_a_fit_against_a_service_that_never_answers_ends_with_training(served):
    app, url = served
    gate = app.wsgi_app = Gate(app.wsgi_app)
    model, x, y = regression(learning_rate=0.01)
    callback = Client(url).callback(timeout=0.5)
    try:
        history, caught = train(model, x, y, callback)
    finally:
        gate.open.set()
    assert len(history.epoch) == EPOCHS
    assert [str(w.message) for w in caught] == [
        f"keras-troubleshooter: no live diagnosis for this run: could not reach the service at {url}: timed out"]
