"""Every cause's snippet on a zoo of correct user models: it runs, and keeps what it does not mean to change.

`tests/test_snippets.py` checks on five small dense models that each snippet fixes its fault. Users'
models are more varied: text, images, two inputs, their own loss, a frozen pretrained base. Here
every snippet runs on each of them, once rendered for a conversation that was told the model's
setup and once for one that has only the user's words and a history, so that what it needs and was
not told it reads from the session. Each run must end in training with a finite loss, or in a
printed line that says why the fix does not apply; the model it trains keeps the user's layer kinds
(the architecture causes keep the front), output units and loss; and the cause's own change is there.
"""
from __future__ import annotations

import contextlib
import io
import json
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from assistant.reasoning.engine import diagnose
from assistant.reply import render_snippet
from tests.helpers import facts_from, lazy_module, shipped_kb
from tests.test_snippets import Call, flat, watch  # noqa: F401 (watch is a fixture)

pytestmark = [pytest.mark.tf, pytest.mark.filterwarnings("ignore:`compile\\(\\)` was not called:UserWarning")]
keras = lazy_module("keras")

KB = shipped_kb()
N_TRAIN, N_VAL = 24, 8
#: What a user who has only words and a history sends.
WORDS = {"symptom": "my model is not learning, the loss barely moves",
         "metrics": {"loss": [0.7, 0.69, 0.69, 0.68, 0.68], "val_loss": [0.7, 0.7, 0.69, 0.7, 0.7]}}
#: Layers the architecture causes may change; every other kind a snippet must keep, as many as there were.
HEAD_KINDS = {"Dense", "Dropout"}
#: Layers a snippet may put in front of the user's model (a scaling step).
ADDED_IN_FRONT = {"Normalization", "InputLayer"}


def three_times_bce(y_true, y_pred):
    """A user's own loss: Keras must not replace it."""
    return 3 * keras.losses.binary_crossentropy(y_true, y_pred)


@dataclass(frozen=True)
class User:
    """A user's model and data, and the setup they would tell the conversation."""

    build: Callable[[np.random.Generator], tuple[Any, Any, Any, Any, Any]]
    told: dict[str, Any]


def _split(model, x, y):
    take = lambda a, s: [part[s] for part in a] if isinstance(a, list) else a[s]  # noqa: E731
    return model, take(x, slice(0, N_TRAIN)), y[:N_TRAIN], take(x, slice(N_TRAIN, None)), y[N_TRAIN:]


def _classes(score: np.ndarray, k: int) -> np.ndarray:
    return np.digitize(score, np.quantile(score, np.linspace(0, 1, k + 1)[1:-1])).astype("int64")


def _dense(units: int, activation: str, loss: Any, metrics=("accuracy",), features: int = 6):
    model = keras.Sequential([keras.Input((features,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(units, activation=activation)])
    model.compile(optimizer=keras.optimizers.Adam(0.001), loss=loss, metrics=list(metrics))
    return model


def _tabular(rng, features: int = 6):
    x = rng.normal(size=(N_TRAIN + N_VAL, features)).astype("float32")
    return x, x @ rng.normal(size=features)


def binary_mlp(rng):
    x, score = _tabular(rng)
    return _split(_dense(1, "sigmoid", "binary_crossentropy"), x, _classes(score, 2))


def softmax_integer(rng):
    x, score = _tabular(rng)
    return _split(_dense(3, "softmax", "sparse_categorical_crossentropy"), x, _classes(score, 3))


def softmax_one_hot(rng):
    x, score = _tabular(rng)
    return _split(_dense(3, "softmax", "categorical_crossentropy"), x, np.eye(3, dtype="float32")[_classes(score, 3)])


def regression(rng):
    x, score = _tabular(rng)
    return _split(_dense(1, "linear", "mse", metrics=("mae",)), x, (3e5 + 1e5 * score).astype("float32"))


def custom_loss(rng):
    x, score = _tabular(rng)
    return _split(_dense(1, "sigmoid", three_times_bce), x, _classes(score, 2))


def text_lstm(rng):
    words = rng.integers(1, 50, size=(N_TRAIN + N_VAL, 7))
    model = keras.Sequential([keras.Input((7,), dtype="int32"), keras.layers.Embedding(50, 8),
                              keras.layers.LSTM(6, return_sequences=True), keras.layers.LSTM(6),
                              keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return _split(model, words, (words[:, 0] > 25).astype("int64"))


def _images(rng):
    x = rng.uniform(size=(N_TRAIN + N_VAL, 8, 8, 1)).astype("float32")
    return x, x.mean(axis=(1, 2, 3))


def small_cnn(rng):
    x, score = _images(rng)
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3, activation="relu"),
                              keras.layers.MaxPooling2D(), keras.layers.Flatten(),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return _split(model, x, _classes(score, 3))


def frozen_base(rng):
    x, score = _images(rng)
    base = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3, activation="relu"),
                             keras.layers.GlobalAveragePooling2D()], name="pretrained_base")
    base.trainable = False
    model = keras.Sequential([keras.Input((8, 8, 1)), base, keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return _split(model, x, _classes(score, 2))


def two_inputs(rng):
    x, score = _tabular(rng, 7)
    numbers, flags = keras.Input((4,)), keras.Input((3,))
    joined = keras.layers.Concatenate()([keras.layers.Dense(8, activation="relu")(numbers), flags])
    model = keras.Model([numbers, flags], keras.layers.Dense(1, activation="sigmoid")(joined))
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return _split(model, [x[:, :4], x[:, 4:]], _classes(score, 2))


_BINARY = {"task": "binary_classification", "n_classes": 2, "class_counts": {"0": 16, "1": 16},
           "label_format": "integer", "loss": "binary_crossentropy", "output_activation": "sigmoid", "output_units": 1}
_THREE = {"task": "multiclass_classification", "n_classes": 3, "class_counts": {"0": 11, "1": 11, "2": 10},
          "label_format": "integer", "loss": "sparse_categorical_crossentropy", "output_activation": "softmax",
          "output_units": 3}
_COMMON = {"optimizer": "adam", "learning_rate": 0.001, "batch_size": 32, "epochs": 10, "n_samples": 32}
ZOO = {
    "binary_mlp": User(binary_mlp, {**_BINARY, "n_hidden_layers": 1, "hidden_activation": "relu"}),
    "softmax_integer": User(softmax_integer, {**_THREE, "n_hidden_layers": 1, "hidden_activation": "relu"}),
    "softmax_one_hot": User(softmax_one_hot, {**_THREE, "label_format": "one_hot", "loss": "categorical_crossentropy",
                                              "n_hidden_layers": 1, "hidden_activation": "relu"}),
    "regression": User(regression, {"task": "regression", "loss": "mse", "output_activation": "linear",
                                    "output_units": 1, "target_max": 6e5, "target_std": 1e5}),
    "custom_loss": User(custom_loss, {k: v for k, v in _BINARY.items() if k != "loss"}),
    "text_lstm": User(text_lstm, {**_BINARY, "output_activation": "softmax", "output_units": 2,
                                  "loss": "sparse_categorical_crossentropy"}),
    "small_cnn": User(small_cnn, _THREE),
    "frozen_base": User(frozen_base, {**_BINARY, "trainable_params": 17, "total_params": 57}),
    "two_inputs": User(two_inputs, _BINARY),
}


@dataclass
class ZooRun:
    code: str
    before: dict[str, Any]
    after: dict[str, Any]
    output: str
    fits: list[Call]
    compiles: list[Call]


def code_for(user: str, cause: str, told: bool) -> str:
    """The cause's snippet for a conversation told the user's setup, or given only words and a history."""
    inputs = {"facts": {**_COMMON, **ZOO[user].told}, "symptom": WORDS["symptom"]} if told else WORDS
    return render_snippet(KB, KB.causes[cause].snippet, diagnose(KB, facts_from(**inputs)).values)


def run_on(user: str, code: str, watch) -> ZooRun:
    model, x_train, y_train, x_val, y_val = ZOO[user].build(np.random.default_rng(0))
    before = {"model": model, "x_train": x_train, "y_train": y_train, "x_val": x_val, "y_val": y_val}
    namespace = dict(before)
    before["learning_rate"] = float(model.optimizer.learning_rate)
    watch[0].clear()
    watch[1].clear()
    with contextlib.redirect_stdout(io.StringIO()) as output:
        exec(compile(code, "<snippet>", "exec"), namespace)
    return ZooRun(code, before, namespace, output.getvalue(), *watch)


def _kinds(model) -> Counter:
    return Counter(type(layer).__name__ for layer in flat(model))


def _loss_kept(before, after) -> bool:
    """The user's own loss object, or a guard that calls it."""
    return after is before or getattr(after, "__wrapped__", None) is before or (
        isinstance(before, str) and getattr(after, "name", after) == before)


#: The cause's own change, as seen on a correct model: the run and the model it trained.
OWN: dict[str, Callable[[ZooRun, Any], bool]] = {
    "learning_rate_too_high": lambda r, m: m.optimizer.clipnorm == 1
    and float(m.optimizer.learning_rate) < r.before["learning_rate"],
    "learning_rate_too_low": lambda r, m: float(m.optimizer.learning_rate) > r.before["learning_rate"],
    "batch_size_too_large": lambda r, m: r.fits[-1].kwargs["batch_size"] == 32,
    "batch_size_too_small": lambda r, m: r.fits[-1].kwargs["batch_size"] == 32,
    "class_imbalance": lambda r, m: bool(r.fits[-1].kwargs.get("class_weight") or
                                         r.fits[-1].kwargs.get("sample_weight") is not None),
    "exploding_gradients": lambda r, m: m.optimizer.clipnorm == 1,
    "frozen_layers": lambda r, m: len(m.trainable_weights) == len(m.weights),
    "insufficient_data": lambda r, m: len(r.fits) == 5,
    "overfitting": lambda r, m: any(isinstance(c, keras.callbacks.EarlyStopping) for c in r.fits[-1].kwargs["callbacks"]),
    "too_few_epochs": lambda r, m: any(isinstance(c, keras.callbacks.EarlyStopping)
                                       for c in r.fits[-1].kwargs["callbacks"]),
    "optimizer_choice": lambda r, m: isinstance(m.optimizer, keras.optimizers.Adam),
    "unshuffled_data": lambda r, m: r.fits[-1].kwargs["shuffle"] is True,
    "model_too_complex": lambda r, m: m.count_params() < r.before["model"].count_params(),
    "model_too_simple": lambda r, m: _kinds(m)["Dense"] > _kinds(r.before["model"])["Dense"],
    "dead_relu": lambda r, m: not any(getattr(layer, "activation", None) is keras.activations.relu
                                      for layer in flat(m) if layer.trainable),
    "poor_initialization": lambda r, m: all(type(layer.kernel_initializer).__name__ in ("HeNormal", "GlorotUniform")
                                            for layer in flat(m) if hasattr(layer, "kernel_initializer")),
}
def problems_of(run: ZooRun, cause: str) -> list[str]:
    """What is wrong with one snippet's run on a correct model; empty when nothing."""
    if not run.fits:
        return [] if run.output.strip() else ["neither trains nor says why not"]
    trained, original = run.fits[-1].model, run.before["model"]
    found = []
    loss = run.after.get("history") and run.after["history"].history.get("loss")
    if loss and not all(math.isfinite(v) for v in loss):
        found.append(f"the loss is not finite: {loss}")
    if trained.outputs[0].shape[-1] != original.outputs[0].shape[-1]:
        found.append(f"output units {original.outputs[0].shape[-1]} -> {trained.outputs[0].shape[-1]}")
    if not _loss_kept(original.loss, trained.loss):
        found.append(f"loss {original.loss} -> {trained.loss}")
    kinds, before = _kinds(trained), _kinds(original)
    free = HEAD_KINDS if cause in ("model_too_simple", "model_too_complex") else set()
    changed = {k for k in kinds.keys() | before.keys() if kinds[k] != before[k]} - free - ADDED_IN_FRONT
    if changed:
        found.append(f"layers {dict(before)} -> {dict(kinds)}")
    if cause in OWN and not OWN[cause](run, trained):
        found.append("the cause's own change is missing")
    return found


@pytest.mark.parametrize("user", ZOO)
def test_every_snippet_runs_on_the_users_own_model(user, watch):
    failures = {}
    for cause in sorted(KB.causes):
        told = code_for(user, cause, True)
        words_only = code_for(user, cause, False)
        for how, code in {"told": told, "words only": words_only}.items():
            if how == "words only" and code == told:
                continue  # the same code on the same model runs the same way
            try:
                found = problems_of(run_on(user, code, watch), cause)
            except Exception as error:  # noqa: BLE001 (a crash is what the test reports)
                found = [f"{type(error).__name__}: {str(error)[:200]}"]
            if found:
                failures[f"{cause} ({how})"] = found
    assert not failures, "\n".join(f"{key}: {'; '.join(value)}" for key, value in failures.items())


# --- the snippets of the public cases' replies, on a model built as each case describes ---------------

GOLDEN = Path(__file__).resolve().parent / "data" / "golden_replies.json"


def case_session(facts: dict[str, Any]) -> dict[str, Any]:
    """A model and data as a public case's facts describe them (its fault included)."""
    rng = np.random.default_rng(0)
    features, units = int(facts.get("n_features") or 4), int(facts.get("output_units") or 1)
    hidden = facts.get("hidden_activation") or "relu"
    layers = [keras.Input((features,))] + [keras.layers.Dense(8, activation=hidden)
                                           for _ in range(int(facts.get("n_hidden_layers") or 0))]
    model = keras.Sequential(layers + [keras.layers.Dense(units, activation=facts.get("output_activation") or "linear")])
    optimizer = keras.optimizers.get(facts.get("optimizer") or "adam")
    optimizer.learning_rate = facts.get("learning_rate") or optimizer.learning_rate
    model.compile(optimizer=optimizer, loss=facts.get("loss") or "mse")
    x = rng.normal(size=(N_TRAIN + N_VAL, features)).astype("float32")
    if facts.get("task") == "regression":
        y = (x @ rng.normal(size=features)).astype("float32")
    else:
        y = _classes(x @ rng.normal(size=features), int(facts.get("n_classes") or 2))
        y = np.eye(int(facts.get("n_classes") or 2), dtype="float32")[y] if facts.get("label_format") == "one_hot" else y
    _, x_train, y_train, x_val, y_val = _split(model, x, y)
    return {"model": model, "x_train": x_train, "y_train": y_train, "x_val": x_val, "y_val": y_val}


def public_snippets(recording: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(case, cause, code) for each cause of the first reply to each public dev case."""
    return [(key, cause["id"], cause["snippet"]["code"]) for key, case in sorted(recording.items())
            if key.startswith("cases/") for cause in case["replies"][0]["causes"]]


def test_every_snippet_of_the_public_cases_runs(watch):
    recording = json.loads(GOLDEN.read_text(encoding="utf-8"))
    failures = []
    for key, cause, code in public_snippets(recording):
        namespace = case_session(recording[key]["facts"])
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                exec(compile(code, f"<{cause} snippet for {key}>", "exec"), namespace)
        except Exception as error:  # noqa: BLE001 (a crash is what the test reports)
            failures.append(f"{key} {cause}: {type(error).__name__}: {str(error)[:200]}")
    assert not failures, "\n".join(failures)
