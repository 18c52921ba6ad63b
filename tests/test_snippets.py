"""Every snippet runs, and does what it says.

Each cause's template is rendered with the values a real conversation would hold (its facts
passed through the evidence pipeline, derived facts included) and executed in a session like
the user's: a small compiled Keras model named ``model`` and arrays named ``x_train``,
``y_train``, ``x_val`` and ``y_val``, set up with the fault the cause is about. Then each cause's
claim is checked on what the snippet did: the learning rate it compiled with, the class weights
it passed to ``fit``, the output layer of the model it trained, ...

``fit`` and ``compile`` are watched, not replaced: every call is recorded and then runs for
real, ``fit`` for one quiet epoch whatever the snippet asked for (the asked-for epochs are
recorded) and without tracing a graph, so the whole matrix takes a minute or two on two cores.
"""
from __future__ import annotations

import contextlib
import io
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from sklearn.utils.class_weight import compute_class_weight

from assistant.reasoning.engine import diagnose
from assistant.reply import render_snippet, snippet_context
from tests.helpers import facts_from, lazy_module, shipped_kb

# Watching compile makes every model's compile look overridden to clone_model, which then says it
# will not recompile the clone; the snippets compile their clones themselves.
pytestmark = [pytest.mark.tf, pytest.mark.filterwarnings("ignore:`compile\\(\\)` was not called:UserWarning")]
keras = lazy_module("keras")  # imported by the first test: collecting this module must not load TensorFlow

KB = shipped_kb()
N_TRAIN, N_VAL, FEATURES = 48, 16, 4

# --- the user's session, before the snippet runs -------------------------------------------


@dataclass(frozen=True)
class Task:
    """A kind of model a user trains: the setup it usually has, and which of it the conversation does not know."""

    setup: dict[str, Any]
    #: Setup the conversation was never told, so the snippet must read it from the session.
    unknown: frozenset[str] = frozenset()


COMMON = {"optimizer": "adam", "learning_rate": 0.001, "batch_size": 32, "epochs": 30, "hidden_activation": "relu",
          "n_hidden_layers": 1, "kernel_initializer": "glorot_uniform", "dropout": 0.0, "l2": 0.0,
          "n_samples": 1000, "n_features": FEATURES, "validation_split": 0.2}
TASKS = {
    "binary": Task({**COMMON, "task": "binary_classification", "n_classes": 2, "class_counts": {"0": 500, "1": 500},
                    "label_format": "integer", "loss": "binary_crossentropy", "output_activation": "sigmoid",
                    "output_units": 1}),
    # The conversation knows nothing of the optimizer: snippets must copy the model's own.
    "multiclass": Task({**COMMON, "task": "multiclass_classification", "n_classes": 3,
                        "class_counts": {"0": 340, "1": 330, "2": 330}, "label_format": "integer",
                        "loss": "sparse_categorical_crossentropy", "output_activation": "softmax", "output_units": 3},
                       unknown=frozenset({"optimizer", "learning_rate"})),
    "one_hot": Task({**COMMON, "optimizer": "rmsprop", "task": "multiclass_classification", "n_classes": 3,
                     "class_counts": {"0": 340, "1": 330, "2": 330}, "label_format": "one_hot",
                     "loss": "categorical_crossentropy", "output_activation": "softmax", "output_units": 3}),
    # An output layer without activation: the loss takes logits.
    "logits": Task({**COMMON, "task": "multiclass_classification", "n_classes": 3,
                    "class_counts": {"0": 340, "1": 330, "2": 330}, "label_format": "integer",
                    "loss": "sparse_categorical_crossentropy", "from_logits": True, "output_activation": "linear",
                    "output_units": 3}),
    "regression": Task({**COMMON, "optimizer": "sgd", "learning_rate": 0.01, "momentum": 0.9, "task": "regression",
                        "loss": "mse", "output_activation": "linear", "output_units": 1}),
}


@dataclass
class Session:
    """The names a snippet finds in the user's session."""

    model: keras.Model
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray

    def namespace(self) -> dict[str, Any]:
        return dict(vars(self))


def _labels(setup: dict[str, Any], score: np.ndarray) -> np.ndarray:
    """Labels that follow the features, shaped and encoded the way the setup says."""
    if setup["task"] == "regression":
        return score.astype("float32")
    counts = np.array([setup["class_counts"][k] for k in sorted(setup["class_counts"], key=float)], dtype=float)
    cuts = np.quantile(score, np.cumsum(counts / counts.sum())[:-1])
    classes = np.digitize(score, cuts)
    values = np.array(sorted((float(k) for k in setup["class_counts"])), dtype="int64")[classes]
    return np.eye(len(counts), dtype="float32")[classes] if setup["label_format"] == "one_hot" else values


def _model(setup: dict[str, Any], hidden_units: int) -> keras.Model:
    """A small model built and compiled the way the setup describes."""
    layers: list[Any] = [keras.Input(shape=(FEATURES,))]
    for _ in range(setup["n_hidden_layers"]):
        layers.append(keras.layers.Dense(hidden_units, activation=setup["hidden_activation"],
                                         kernel_initializer=setup["kernel_initializer"],
                                         kernel_regularizer=keras.regularizers.L2(setup["l2"]) if setup["l2"] else None))
        if setup["dropout"]:
            layers.append(keras.layers.Dropout(setup["dropout"]))
    layers.append(keras.layers.Dense(setup["output_units"], activation=setup["output_activation"]))
    model = keras.Sequential(layers)
    options = {"momentum": setup["momentum"]} if "momentum" in setup else {}
    optimizer = keras.optimizers.get(setup["optimizer"]).__class__(learning_rate=setup["learning_rate"], **options)
    metrics = ["mae"] if setup["task"] == "regression" else ["accuracy"]
    loss = getattr(keras.losses, KB.keras.get("losses", setup["loss"], "class"))(from_logits=True) if setup.get("from_logits") else setup["loss"]
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics)
    return model


def make_session(setup: dict[str, Any], hidden_units: int = 8) -> Session:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N_TRAIN + N_VAL, FEATURES)).astype("float32")
    y = _labels(setup, x @ np.array([1.0, -1.0, 0.5, 0.25]) + 0.1 * rng.normal(size=len(x)))
    return Session(_model(setup, hidden_units), x[:N_TRAIN], y[:N_TRAIN], x[N_TRAIN:], y[N_TRAIN:])


# --- what a snippet did ----------------------------------------------------------------------


@dataclass
class Call:
    model: keras.Model
    kwargs: dict[str, Any]


@dataclass
class Run:
    """A snippet's run: its code, the calls it made, the session afterwards, and the setup before."""

    code: str
    context: dict[str, Any]
    setup: dict[str, Any]
    before: Session
    after: dict[str, Any]
    #: What the snippet printed.
    output: str
    fits: list[Call] = field(default_factory=list)
    compiles: list[Call] = field(default_factory=list)

    @property
    def fit(self) -> Call:
        assert self.fits, "the snippet never calls fit"
        return self.fits[-1]

    @property
    def trained(self) -> keras.Model:
        return self.fit.model

    @property
    def regression(self) -> bool:
        return self.setup["task"] == "regression"

    def optimizer(self) -> keras.optimizers.Optimizer:
        return self.trained.optimizer

    def hidden_dense(self) -> list[keras.layers.Dense]:
        dense = [layer for layer in flat(self.trained) if isinstance(layer, keras.layers.Dense)]
        return dense[:-1]

    def output_layer(self) -> keras.layers.Dense:
        return [layer for layer in flat(self.trained) if isinstance(layer, keras.layers.Dense)][-1]


def flat(model: keras.Model) -> list[keras.layers.Layer]:
    return [inner for layer in model.layers for inner in (flat(layer) if isinstance(layer, keras.Model) else [layer])]


@pytest.fixture
def watch(monkeypatch):
    """Record every fit and compile call; let fit train one quiet epoch, eagerly.

    Tracing a graph for each of a hundred tiny models would take most of the time; what a
    snippet does to the model, the data and the optimizer is the same either way.
    """
    fits: list[Call] = []
    compiles: list[Call] = []
    real_fit, real_compile = keras.Model.fit, keras.Model.compile

    def fit(self, x=None, y=None, **kwargs):
        fits.append(Call(self, {"x": x, "y": y, **kwargs}))
        return real_fit(self, x, y, **{**kwargs, "epochs": 1, "verbose": 0})

    def compile(self, *args, **kwargs):
        compiles.append(Call(self, kwargs))
        return real_compile(self, *args, **{**kwargs, "run_eagerly": True})

    monkeypatch.setattr(keras.Model, "fit", fit)
    monkeypatch.setattr(keras.Model, "compile", compile)
    return fits, compiles


def conversation_values(known: dict[str, Any]) -> dict[str, Any]:
    """What a reply hands the templates for a conversation that was told ``known``."""
    return diagnose(KB, facts_from(facts=known)).values


def run_snippet(cause: str, task: str, watch) -> Run:
    fault = FAULTS[cause]
    setup = {**TASKS[task].setup, **fault.setup(task)}
    known = {key: value for key, value in setup.items() if key not in TASKS[task].unknown}
    session = make_session(setup, fault.hidden_units)
    if fault.prepare:
        fault.prepare(session, setup)
    values = conversation_values(known)
    code = render_snippet(KB, KB.causes[cause].snippet, values)
    watch[0].clear()  # preparing the session may train; only the snippet's calls count
    watch[1].clear()
    namespace = session.namespace()
    before = Session(**namespace)
    with contextlib.redirect_stdout(io.StringIO()) as output:
        exec(compile(code, f"<{cause} snippet>", "exec"), namespace)
    return Run(code, snippet_context(KB, values), setup, before, namespace, output.getvalue(), *watch)


# --- the faults, and what each snippet claims to change --------------------------------------


def _nan_weights(session: Session, setup: dict[str, Any]) -> None:
    """A run that diverged: every weight is NaN."""
    session.model.set_weights([np.full_like(w, np.nan) for w in session.model.get_weights()])


def _holes(session: Session, setup: dict[str, Any]) -> None:
    """Every tenth input value is missing, and the NaN loss has already poisoned the weights."""
    for x in (session.x_train, session.x_val):
        x.reshape(-1)[::10] = np.nan
    _nan_weights(session, setup)


def _huge_scale(session: Session, setup: dict[str, Any]) -> None:
    session.x_train = session.x_train * 1000 + 500
    session.x_val = session.x_val * 1000 + 500


def _spikes(session: Session, setup: dict[str, Any]) -> None:
    session.x_train[::12, 0] = 1e4


def _freeze_first_layer(session: Session, setup: dict[str, Any]) -> None:
    session.model.layers[0].trainable = False
    session.model.compile(optimizer=session.model.optimizer.from_config(session.model.optimizer.get_config()),
                          loss=session.model.loss)


def _sorted_rows(session: Session, setup: dict[str, Any]) -> None:
    """Rows ordered by label, then split as validation_split does: the last rows validate."""
    x = np.concatenate([session.x_train, session.x_val])
    y = np.concatenate([session.y_train, session.y_val])
    key = y if y.ndim == 1 else y.argmax(axis=-1)
    order = np.argsort(key, kind="stable")
    session.x_train, session.x_val = x[order][:N_TRAIN], x[order][N_TRAIN:]
    session.y_train, session.y_val = y[order][:N_TRAIN], y[order][N_TRAIN:]


def _scaled_targets(session: Session, setup: dict[str, Any]) -> None:
    session.y_train = session.y_train * 1000 + 5000
    session.y_val = session.y_val * 1000 + 5000


def _skewed_targets(session: Session, setup: dict[str, Any]) -> None:
    session.y_train = np.exp(session.y_train).astype("float32")
    session.y_val = np.exp(session.y_val).astype("float32")


def _price_targets(session: Session, setup: dict[str, Any]) -> None:
    """Regression targets in the hundreds of thousands, fed raw, as house prices are."""
    if setup["task"] == "regression":
        session.y_train = (session.y_train * 1e5 + 5e5).astype("float32")
        session.y_val = (session.y_val * 1e5 + 5e5).astype("float32")


def _unsafe_loss(setup: dict[str, Any]) -> Callable[..., Any]:
    """A hand-written loss with no clip or epsilon: a log of 0, or a sqrt at 0, for the setup's task."""
    ops = keras.ops

    def labels(y_true):
        return ops.reshape(ops.cast(y_true, "int32"), (-1, 1))

    if setup["task"] == "regression":
        def unsafe(y_true, y_pred):  # a root mean squared error: the gradient of sqrt at 0 is infinite
            y_true = ops.reshape(ops.cast(y_true, y_pred.dtype), ops.shape(y_pred))
            return ops.sqrt(ops.mean(ops.square(y_true - y_pred)))
    elif setup["output_activation"] == "linear":
        def unsafe(y_true, y_pred):  # softmax, then log: 0 and log(0) for large logits
            return -ops.mean(ops.log(ops.take_along_axis(ops.softmax(y_pred), labels(y_true), axis=-1)))
    elif setup["label_format"] == "one_hot":
        def unsafe(y_true, y_pred):
            return -ops.mean(ops.sum(y_true * ops.log(y_pred), axis=-1))
    elif setup["output_units"] == 1:
        def unsafe(y_true, y_pred):
            y_true = ops.reshape(ops.cast(y_true, y_pred.dtype), ops.shape(y_pred))
            return -ops.mean(y_true * ops.log(y_pred) + (1 - y_true) * ops.log(1 - y_pred))
    else:
        def unsafe(y_true, y_pred):
            return -ops.mean(ops.log(ops.take_along_axis(y_pred, labels(y_true), axis=-1)))

    def my_loss(y_true, y_pred):
        my_loss.calls += 1
        return unsafe(y_true, y_pred)

    my_loss.calls = 0
    return my_loss


def _compile_unsafe_loss(session: Session, setup: dict[str, Any]) -> None:
    """The model compiled with the user's own unsafe loss; where it outputs probabilities a NaN step has
    already poisoned the weights."""
    session.model.compile(optimizer=session.model.optimizer.from_config(session.model.optimizer.get_config()),
                          loss=_unsafe_loss(setup))
    if setup["output_activation"] in ("sigmoid", "softmax"):
        _nan_weights(session, setup)


#: The validation inputs left raw while the training inputs were scaled: x_val = x * SPREAD + SHIFT.
RAW_SPREAD, RAW_SHIFT = 50.0, 120.0


def _raw_validation_inputs(session: Session, setup: dict[str, Any]) -> None:
    session.x_val = session.x_val * RAW_SPREAD + RAW_SHIFT


@dataclass(frozen=True)
class Fault:
    """A cause as a user meets it: their setup, their session, and what the snippet must change."""

    claim: Callable[[Run], None]
    setup: Callable[[str], dict[str, Any]] = lambda task: {}
    prepare: Callable[[Session, dict[str, Any]], None] | None = None
    hidden_units: int = 8


def _close(actual: float, expected: float) -> bool:
    return math.isclose(float(actual), expected, rel_tol=1e-5)


def _finite_training(run: Run) -> None:
    loss = run.after["history"].history["loss"]
    assert all(math.isfinite(value) for value in loss), loss


def _loss(call: Call) -> tuple[str, bool]:
    """The name of the loss a compile call passed, and whether it takes logits."""
    loss = call.kwargs["loss"]
    return (loss, False) if isinstance(loss, str) else (loss.name, loss.get_config()["from_logits"])


def _fresh_weights(run: Run) -> None:
    assert run.trained is not run.before.model, "the snippet trains the old weights on"


def _usual_rate(run: Run) -> float:
    """The usual learning rate of the setup's optimizer (keras.yaml): a fixed rate goes no further than it."""
    return KB.keras.get("optimizers", run.setup["optimizer"], "default_learning_rate")


def claim_learning_rate_too_high(run: Run) -> None:
    optimizer = run.optimizer()
    assert type(optimizer) is type(run.before.model.optimizer)
    assert _close(optimizer.learning_rate, min(run.setup["learning_rate"] / 10, _usual_rate(run)))
    assert optimizer.clipnorm == 1
    if "momentum" in run.setup:
        assert _close(optimizer.momentum, run.setup["momentum"])
    _fresh_weights(run)
    _finite_training(run)


def claim_learning_rate_too_low(run: Run) -> None:
    optimizer = run.optimizer()
    assert type(optimizer) is type(run.before.model.optimizer)
    assert _close(optimizer.learning_rate, max(run.setup["learning_rate"] * 10, _usual_rate(run)))


def claim_batch_size(run: Run) -> None:
    assert run.fit.kwargs["batch_size"] == 32 != run.setup["batch_size"]
    assert run.fit.kwargs["epochs"] == run.setup["epochs"]


def _balanced(counts: dict[str, int]) -> dict[int, float]:
    """What compute_class_weight("balanced") gives for labels in these counts."""
    labels = np.repeat([int(k) for k in counts], list(counts.values()))
    classes = np.unique(labels)
    return dict(zip(classes.tolist(), compute_class_weight("balanced", classes=classes, y=labels).tolist()))


def claim_class_imbalance(run: Run) -> None:
    if run.regression:
        weights = run.fit.kwargs["sample_weight"]
        targets = np.asarray(run.fit.kwargs["y"])
        assert len(weights) == len(targets) and math.isclose(float(np.mean(weights)), 1.0, rel_tol=0.05)
        assert weights[np.argmax(targets)] > weights[np.argmin(np.abs(targets - np.median(targets)))]
        return
    expected = _balanced(run.setup["class_counts"])
    assert run.fit.kwargs["class_weight"].keys() == expected.keys()
    for label, weight in run.fit.kwargs["class_weight"].items():
        assert math.isclose(weight, expected[label], abs_tol=1e-4), (label, weight, expected[label])
    if run.setup["output_units"] == 1:
        assert {"recall", "auc"} <= {getattr(m, "name", m) for m in run.compiles[-1].kwargs["metrics"]}


def claim_dead_relu(run: Run) -> None:
    hidden = run.hidden_dense()
    assert hidden and all(layer.activation.__name__ == "leaky_relu" for layer in hidden)
    assert all(isinstance(layer.kernel_initializer, keras.initializers.HeNormal) for layer in hidden)


def claim_exploding_gradients(run: Run) -> None:
    assert run.optimizer().clipnorm == 1
    hidden = run.hidden_dense()
    assert hidden and all(isinstance(layer.kernel_initializer, keras.initializers.HeNormal) for layer in hidden)
    assert [type(layer) for layer in flat(run.trained)] == [type(layer) for layer in flat(run.before.model)]
    _fresh_weights(run)


def claim_frozen_layers(run: Run) -> None:
    assert "trainable weights before: 2 of 4" in run.output
    assert len(run.trained.trainable_weights) == len(run.trained.weights)


def claim_insufficient_data(run: Run) -> None:
    assert len(run.fits) == 5 and len(run.after["scores"]) == 5
    assert sum(len(call.kwargs["x"]) for call in run.fits) == 4 * (N_TRAIN + N_VAL)
    assert all(call.model is not run.before.model for call in run.fits)


def claim_label_encoding_mismatch(run: Run) -> None:
    if run.regression:
        assert "need no label encoding" in run.output and not run.fits
        return
    y = np.asarray(run.fit.kwargs["y"])
    units = run.setup["output_units"]
    assert y.ndim == 1 and set(np.unique(y).tolist()) == set(range(max(units, 2)))
    expected = "binary_crossentropy" if units == 1 else "sparse_categorical_crossentropy"
    assert _loss(run.compiles[-1]) == (expected, run.setup["output_activation"] == "linear")


def claim_label_noise(run: Run) -> None:
    suspects = run.after["suspects"]
    assert len(suspects) == min(20, N_TRAIN) and len(set(suspects.tolist())) == len(suspects)
    assert 0 <= suspects.min() and suspects.max() < N_TRAIN


def claim_metric_misconfiguration(run: Run) -> None:
    names = {metric.name for metric in run.compiles[-1].kwargs["metrics"]}
    assert names == ({"mae", "rmse"} if run.regression else {"accuracy"} | ({"auc"} if run.setup["output_units"] == 1
                                                                             else set()))


def claim_missing_values(run: Run) -> None:
    assert np.isnan(run.before.x_train).any()
    for name in ("x", "validation_data"):
        data = run.fit.kwargs[name]
        assert np.isfinite(np.asarray(data[0] if name == "validation_data" else data)).all()
    _fresh_weights(run)
    _finite_training(run)


def claim_model_too_complex(run: Run) -> None:
    assert run.trained.count_params() < run.before.model.count_params()
    assert any(isinstance(layer, keras.layers.Dropout) for layer in flat(run.trained))
    assert any(isinstance(c, keras.callbacks.EarlyStopping) for c in run.fit.kwargs["callbacks"])


def claim_model_too_simple(run: Run) -> None:
    assert not [layer for layer in run.before.model.layers[:-1] if isinstance(layer, keras.layers.Dense)]
    assert [layer.units for layer in run.hidden_dense()] == [64, 64]


def claim_optimizer_choice(run: Run) -> None:
    assert isinstance(run.optimizer(), keras.optimizers.Adam)
    assert _close(run.optimizer().learning_rate, 0.001)


def claim_outliers(run: Run) -> None:
    assert np.abs(run.before.x_train).max() >= 1e4
    assert np.abs(np.asarray(run.fit.kwargs["x"])).max() < 10


def _fitting_head(run: Run) -> tuple[int, str]:
    if run.regression:
        return 1, "linear"
    return (1, "sigmoid") if run.setup["n_classes"] == 2 and run.setup["label_format"] != "one_hot" else (
        run.setup["n_classes"], "softmax")


def claim_output_activation_mismatch(run: Run) -> None:
    head = run.output_layer()
    assert (head.units, head.activation.__name__) == _fitting_head(run)
    _fresh_weights(run)


def claim_overfitting(run: Run) -> None:
    (stopper,) = [c for c in run.fit.kwargs["callbacks"] if isinstance(c, keras.callbacks.EarlyStopping)]
    assert stopper.patience == max(3, min(20, run.setup["epochs"] // 10)) and stopper.restore_best_weights
    assert stopper.monitor == "val_loss"
    _fresh_weights(run)


def claim_poor_initialization(run: Run) -> None:
    hidden = run.hidden_dense()
    assert hidden and all(isinstance(layer.kernel_initializer, keras.initializers.HeNormal) for layer in hidden)


def claim_regularization_too_strong(run: Run) -> None:
    regularizers = [layer.kernel_regularizer for layer in run.hidden_dense()]
    assert regularizers and all(_close(r.l2, 1e-4) for r in regularizers)
    rates = [layer.rate for layer in run.trained.layers if isinstance(layer, keras.layers.Dropout)]
    assert rates and max(rates) <= 0.2


def claim_too_few_epochs(run: Run) -> None:
    assert run.fit.kwargs["epochs"] == max(run.setup["epochs"] * 5, 50)
    assert any(isinstance(c, keras.callbacks.EarlyStopping) for c in run.fit.kwargs["callbacks"])
    assert run.trained is run.before.model, "training goes on from where it stopped"


def claim_unscaled_inputs(run: Run) -> None:
    (normalizer,) = [layer for layer in run.trained.layers if isinstance(layer, keras.layers.Normalization)]
    np.testing.assert_allclose(np.ravel(normalizer.mean), run.before.x_train.mean(axis=0), rtol=1e-4)
    np.testing.assert_allclose(np.ravel(normalizer.variance), run.before.x_train.var(axis=0), rtol=1e-3)


def claim_unshuffled_data(run: Run) -> None:
    assert run.fit.kwargs["shuffle"] is True
    y_val = np.asarray(run.fit.kwargs["validation_data"][1])
    before = np.asarray(run.before.y_val)
    if run.regression:
        assert y_val.min() < before.min(), "the validation rows are still the largest targets"
        return
    classes = lambda y: set((y if y.ndim == 1 else y.argmax(axis=-1)).tolist())  # noqa: E731
    assert len(classes(before)) == 1 and classes(y_val) == classes(np.asarray(run.fit.kwargs["y"]))


def claim_vanishing_gradients(run: Run) -> None:
    hidden = run.hidden_dense()
    assert len(hidden) == run.setup["n_hidden_layers"], "the snippet changes the number of layers"
    assert all(layer.activation.__name__ == "relu" for layer in hidden)
    assert all(isinstance(layer.kernel_initializer, keras.initializers.HeNormal) for layer in hidden)


def claim_wrong_loss_function(run: Run) -> None:
    units = run.output_layer().units
    name, from_logits = _loss(run.compiles[-1])
    assert from_logits == (run.setup["output_activation"] == "linear" and not run.regression)
    if run.regression:
        assert name == "mse"
    elif units == 1:
        assert name == "binary_crossentropy"
    else:
        assert name == ("categorical_crossentropy" if run.setup["label_format"] == "one_hot"
                        else "sparse_categorical_crossentropy")
    assert name != run.setup["loss"]
    _finite_training(run)


def claim_unscaled_targets(run: Run) -> None:
    if not run.regression:
        assert "Nothing to scale" in run.output and not run.fits
        return
    assert np.asarray(run.before.y_train).std() > 1e4
    y = np.asarray(run.fit.kwargs["y"])
    assert abs(float(y.mean())) < 1e-3 and math.isclose(float(y.std()), 1.0, rel_tol=1e-3)
    # On raw targets the first loss is in the tens of billions; on scaled ones it is near 1.
    assert run.after["history"].history["loss"][-1] < 10
    predicted = np.asarray(run.after["target_model"].predict(run.before.x_val, verbose=0)).ravel()
    y_val = np.asarray(run.before.y_val)
    assert abs(float(predicted.mean() - y_val.mean())) < 3 * float(y_val.std()), "predictions are not in the targets' units"
    assert [type(layer) for layer in flat(run.trained)] == [type(layer) for layer in flat(run.before.model)]
    _fresh_weights(run)


def claim_numerical_instability(run: Run) -> None:
    user_loss = run.before.model.loss
    y = np.asarray(run.before.y_train)[:8]
    edge = np.zeros((8, run.setup["output_units"]), "float32")
    logits = np.resize(np.array([1e4, -1e4], "float32"), edge.shape)  # where a softmax underflows to 0
    if run.regression:  # sqrt at 0: the value is finite, its gradient where predictions meet the targets is not
        assert re.search(r"not finite \(value or gradient\) at predictions of: .*the targets", run.output), run.output
    else:
        assert not np.isfinite(float(keras.ops.mean(user_loss(y, logits if run.setup["output_activation"] == "linear"
                                                               else edge))))
        assert "not finite" in run.output
    if run.setup["output_activation"] not in ("sigmoid", "softmax"):
        # Logits and regression values cannot be clipped: the snippet says where to guard, and swaps nothing.
        assert "inside your loss" in run.output and not run.fits and not run.compiles
        return
    guarded = run.compiles[-1].kwargs["loss"]
    calls = user_loss.calls
    assert np.isfinite(float(keras.ops.mean(guarded(y, edge)))), "the guarded loss is still not finite at 0"
    assert user_loss.calls > calls, "the snippet replaced the user's own loss instead of guarding it"
    _fresh_weights(run)
    _finite_training(run)


def claim_preprocessing_mismatch(run: Run) -> None:
    model = run.after["model"]
    assert any(layer is run.before.model for layer in model.layers), "the user's trained model is not kept"
    (normalizer,) = [layer for layer in flat(model) if isinstance(layer, keras.layers.Normalization)]
    raw = np.asarray(run.before.x_val)
    as_trained = (raw - RAW_SHIFT) / RAW_SPREAD  # the validation inputs prepared like the training inputs
    np.testing.assert_allclose(keras.ops.convert_to_numpy(normalizer(raw)), as_trained, atol=0.6)
    # The training inputs are now prepared like the rest; the model's own step turns them back.
    np.testing.assert_allclose(keras.ops.convert_to_numpy(normalizer(np.asarray(run.after["x_train"], "float32"))),
                               run.before.x_train, atol=1e-3)
    # What the user's model says on properly prepared inputs, the new one says on raw inputs: the mismatch
    # that raw inputs caused is gone, all but the estimate's error.
    meant = run.before.model.predict(as_trained, verbose=0)
    mismatch = np.abs(run.before.model.predict(raw, verbose=0) - meant).mean()
    assert np.abs(model.predict(raw, verbose=0) - meant).mean() < 0.2 * mismatch


def _wrong_loss(task: str) -> dict[str, Any]:
    return {"binary": {"loss": "mse"}, "multiclass": {"loss": "categorical_crossentropy"},
            "one_hot": {"loss": "sparse_categorical_crossentropy"}, "logits": {"loss": "categorical_crossentropy"},
            "regression": {"loss": "binary_crossentropy"}}[task]


def _wrong_output(task: str) -> dict[str, Any]:
    return {"binary": {"output_activation": "softmax"}, "multiclass": {"output_activation": "relu"},
            "one_hot": {"output_activation": "sigmoid"}, "logits": {"output_activation": "softmax"},
            "regression": {"output_activation": "sigmoid"}}[task]


def _odd_labels(task: str) -> dict[str, Any]:
    """Binary labels 0/255, classes numbered from 1, one-hot rows with a sparse loss, targets in thousands."""
    return {"binary": {"class_counts": {"0": 500, "255": 500}},
            "multiclass": {"class_counts": {"1": 340, "2": 330, "3": 330}},
            "logits": {"class_counts": {"1": 340, "2": 330, "3": 330}},
            "one_hot": {"loss": "sparse_categorical_crossentropy"},
            "regression": {}}[task]


def _imbalanced(task: str) -> dict[str, Any]:
    return {} if task == "regression" else (
        {"class_counts": {"0": 900, "1": 100}} if task == "binary" else {"class_counts": {"0": 700, "1": 200, "2": 100}})


FAULTS: dict[str, Fault] = {
    "learning_rate_too_high": Fault(claim_learning_rate_too_high, lambda task: {"learning_rate": 0.5},
                                    prepare=_nan_weights),
    "learning_rate_too_low": Fault(claim_learning_rate_too_low, lambda task: {"learning_rate": 1e-6}),
    "batch_size_too_large": Fault(claim_batch_size, lambda task: {"batch_size": 1024}),
    "batch_size_too_small": Fault(claim_batch_size, lambda task: {"batch_size": 1}),
    "class_imbalance": Fault(claim_class_imbalance, _imbalanced,
                             prepare=lambda s, setup: _skewed_targets(s, setup) if setup["task"] == "regression" else None),
    "dead_relu": Fault(claim_dead_relu, lambda task: {"n_hidden_layers": 2, "learning_rate": 0.05}),
    "exploding_gradients": Fault(claim_exploding_gradients,
                                 lambda task: {"kernel_initializer": "random_normal", "n_hidden_layers": 3}),
    "frozen_layers": Fault(claim_frozen_layers, lambda task: {"total_params": 200, "trainable_params": 40},
                           prepare=_freeze_first_layer),
    "insufficient_data": Fault(claim_insufficient_data, lambda task: {"n_samples": 64}),
    "label_encoding_mismatch": Fault(claim_label_encoding_mismatch, _odd_labels,
                                     prepare=lambda s, setup: _scaled_targets(s, setup) if setup["task"] == "regression"
                                     else None),
    "label_noise": Fault(claim_label_noise),
    "metric_misconfiguration": Fault(claim_metric_misconfiguration),
    "missing_values": Fault(claim_missing_values, lambda task: {"missing_fraction": 0.1}, prepare=_holes),
    "model_too_complex": Fault(claim_model_too_complex, lambda task: {"n_hidden_layers": 3, "n_samples": 64,
                                                                      "trainable_params": 34000}, hidden_units=96),
    "model_too_simple": Fault(claim_model_too_simple, lambda task: {"n_hidden_layers": 0}),
    "optimizer_choice": Fault(claim_optimizer_choice, lambda task: {"optimizer": "sgd", "learning_rate": 0.01}),
    "outliers": Fault(claim_outliers, lambda task: {"feature_max": 1e4}, prepare=_spikes),
    "output_activation_mismatch": Fault(claim_output_activation_mismatch, _wrong_output),
    "overfitting": Fault(claim_overfitting, lambda task: {"epochs": 200}),
    "poor_initialization": Fault(claim_poor_initialization, lambda task: {"kernel_initializer": "zeros"}),
    "regularization_too_strong": Fault(claim_regularization_too_strong, lambda task: {"l2": 0.5, "dropout": 0.7}),
    "too_few_epochs": Fault(claim_too_few_epochs, lambda task: {"epochs": 5}),
    "unscaled_inputs": Fault(claim_unscaled_inputs, lambda task: {"feature_max": 3500.0, "feature_min": -2500.0},
                             prepare=_huge_scale),
    "unshuffled_data": Fault(claim_unshuffled_data, lambda task: {"sorted_by_label": True, "shuffle": False},
                             prepare=_sorted_rows),
    "vanishing_gradients": Fault(claim_vanishing_gradients, lambda task: {"hidden_activation": "sigmoid",
                                                                          "n_hidden_layers": 6}),
    "wrong_loss_function": Fault(claim_wrong_loss_function, _wrong_loss),
    "unscaled_targets": Fault(claim_unscaled_targets,
                              lambda task: {"target_max": 9e5, "target_std": 1.5e5} if task == "regression" else {},
                              prepare=_price_targets),
    "numerical_instability": Fault(claim_numerical_instability, lambda task: {"custom_math": True},
                                   prepare=_compile_unsafe_loss),
    "preprocessing_mismatch": Fault(claim_preprocessing_mismatch, lambda task: {"same_preprocessing": False},
                                    prepare=_raw_validation_inputs),
}


def test_every_cause_has_a_template_and_a_claim():
    assert set(FAULTS) == set(KB.causes)
    for cause in KB.causes.values():
        assert cause.snippet in KB.snippets, f"{cause.id} names snippet {cause.snippet}, which has no template"


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("cause", sorted(FAULTS))
def test_snippet_runs_and_changes_what_it_claims(cause, task, watch):
    run = run_snippet(cause, task, watch)
    try:
        FAULTS[cause].claim(run)
    except AssertionError as error:
        raise AssertionError(f"{error}\n--- the {cause} snippet for a {task} model ---\n{run.code}") from None


def test_snippets_leave_no_blanks_to_fill_in():
    """The matrix above shows that each snippet runs on the user's five objects alone; none asks for more."""
    for task in TASKS:
        values = conversation_values(TASKS[task].setup)
        for cause in KB.causes.values():
            code = render_snippet(KB, cause.snippet, values)
            assert not re.search(r"X_train|# your data|<[a-z ]+>|\.\.\.\s*$|TODO", code, re.M), code
