"""The training worker: the one module that imports TensorFlow, always in processes of its own.

``python -m assistant.repro.worker`` is a warm worker: it imports TensorFlow once, then reads
jobs from stdin, one JSON line each, and forks a child for each, so that a run starts in
milliseconds instead of paying TensorFlow's seconds of start-up. The child runs in a session of
its own under the job's CPU and address-space limits and writes one JSON object per line on
stdout: ``epoch`` progress, each experiment's ``result`` (history, internals, range-test steps,
or an error), the ``plot``, then ``done``; the warm worker brackets it with ``started`` (the
child's pid, which the supervisor watches and kills) and ``exit`` (its exit status). Everything
TensorFlow or Keras prints goes to stderr instead (its start-up logging already does), so it
never mixes into the protocol. The warm worker never runs a TensorFlow op itself (TensorFlow's
thread pools would not survive a fork); each child starts them for its own job, or, to train
several experiments at once, forks lanes of its own first (in its process group, under its
limits), which start them each for theirs. The supervisor
in :mod:`assistant.repro.backends` starts the warm worker; should the supervisor die (its Celery
worker killed), the warm worker sees its stdin close, kills its child and exits, and a child
dies with its warm worker.
"""
from __future__ import annotations

import base64
import ctypes
import json
import math
import multiprocessing
import multiprocessing.connection
import os
import resource
import select
import signal
import sys
import time
import traceback
from typing import IO, Any, Callable

import keras
import numpy as np
import tensorflow as tf
from sklearn.datasets import make_classification, make_moons, make_regression

from .plot import curves_png
from .spec import Model, RunSpec, check_model_json

#: prctl(2)'s options: the signal this process gets when the thread that started it dies; its name.
PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15
#: How often a warm worker with a child looks whether its supervisor is still there.
POLL = 0.2


def die_with_parent(parent: int) -> None:
    """Have the kernel kill this process when its parent dies, even by SIGKILL (Linux), so no training
    outlives the worker that would report it; exit now if ``parent`` is already gone."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)



#: Rows the internals are measured on at every epoch.
PROBE_ROWS = 256
#: The learning-rate range test sweeps from the first to the second, geometrically.
LR_RANGE = (1e-6, 1.0)
#: Sigmoid outputs this close to 0 or 1 (tanh to ±1) are saturated.
SATURATED = 0.01
Emit = Callable[[dict[str, Any]], None]


def make_data(spec: RunSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Training and validation arrays as the spec describes them, split as Keras' validation_split does."""
    data, n_features = spec.data, spec.model.n_features
    rng = np.random.default_rng(data.seed)
    n = data.n_samples
    if data.generator == "sample":
        x = np.asarray(data.sample["x"], dtype="float64")[:n]
        target = np.asarray(data.sample["y"], dtype="float64")[:n]
    elif data.generator == "regression":
        x, target = make_regression(n, n_features, n_informative=min(n_features, 10), noise=10.0,
                                    random_state=data.seed)
        if data.target_scale:
            target = (target - target.mean()) / (target.std() + 1e-12) * data.target_scale
    elif data.generator == "moons":
        sizes = tuple(int(round(share * n)) for share in data.class_shares)
        x, target = make_moons(sizes, noise=0.2 / data.class_sep, random_state=data.seed)
    else:
        informative = min(n_features, max(2, n_features // 2, math.ceil(math.log2(max(data.n_classes, 2))) + 1))
        x, target = make_classification(n, n_features, n_informative=informative, n_redundant=0,
                                        n_classes=data.n_classes, n_clusters_per_class=1,
                                        weights=list(data.class_shares), flip_y=0.01, class_sep=data.class_sep,
                                        random_state=data.seed)
    n = len(target)
    classes = data.task != "regression"
    if classes and data.generator == "sample":
        target = np.unique(target, return_inverse=True)[1]  # class indexes; labels below say how they are coded
    if classes and data.label_noise:
        noisy = rng.random(n) < data.label_noise
        target[noisy] = (target[noisy] + rng.integers(1, data.n_classes, noisy.sum())) % data.n_classes
    if data.shuffle_labels:
        target = rng.permutation(target)
    order = np.argsort(target, kind="stable") if data.sorted_by_label and classes else rng.permutation(n)
    if data.sorted_by_label and data.generator == "sample":
        order = np.arange(n)  # the rows came sorted; keep them as they are
    x, target = x[order], target[order]
    split = int(n * (1 - spec.training.validation_split))
    if data.generator != "sample":
        x = _scaled_features(x, spec, rng, split)
    if data.missing_fraction:
        x[rng.random(x.shape) < data.missing_fraction] = np.nan
    if data.zero_inputs:
        x = np.zeros_like(x)
    x_train, x_val = _preprocessed(x[:split], x[split:], spec)
    y = _labels(target, spec) if classes else target
    return (x_train.astype("float32"), y[:split].astype("float32"), x_val.astype("float32"),
            y[split:].astype("float32"))


def _scaled_features(x: np.ndarray, spec: RunSpec, rng: np.random.Generator, split: int) -> np.ndarray:
    """Standardised features moved to the summary's scale: plain, raw sizes far apart, or with outliers.

    Outliers go into the training rows only: the summary describes what the model trains on,
    and a clean validation set shows what they do to the model.
    """
    data = spec.data
    z = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-12)
    if data.scale == "wide":  # raw features whose sizes differ by orders of magnitude, as unscaled data has
        scales = np.logspace(0, math.log10(max(data.feature_extreme / 3, 1.0)), x.shape[1])
        return z * scales + scales
    if data.scale == "outliers":  # enough cells at the extreme value to give the summary's spread
        train = z[:split].reshape(-1)
        cells = max(1, round(z.size * (data.feature_std ** 2 - 1) / data.feature_extreme ** 2))
        picked = rng.choice(train.size, min(cells, train.size), replace=False)
        train[picked] = data.feature_extreme * rng.choice([-1.0, 1.0], len(picked))
        z[:split] = train.reshape(z[:split].shape)
        return z
    return z * data.feature_std + data.feature_mean


def _preprocessed(train: np.ndarray, val: np.ndarray, spec: RunSpec) -> tuple[np.ndarray, np.ndarray]:
    """The fixes' preprocessing, fitted on the training rows only."""
    data = spec.data
    if data.impute_missing:
        means = np.nan_to_num(np.nanmean(train, axis=0))
        train, val = np.where(np.isnan(train), means, train), np.where(np.isnan(val), means, val)
    if data.clip_outliers:
        low, high = np.nanpercentile(train, 1, axis=0), np.nanpercentile(train, 99, axis=0)
        train, val = np.clip(train, low, high), np.clip(val, low, high)
    if data.standardize or data.clip_outliers:
        mean, std = np.nanmean(train, axis=0), np.nanstd(train, axis=0) + 1e-12
        train, val = (train - mean) / std, (val - mean) / std
    return train, val


def _labels(index: np.ndarray, spec: RunSpec) -> np.ndarray:
    """Class indexes in the user's coding: one-hot rows, or their own label values."""
    data = spec.data
    if data.one_hot:
        return np.eye(data.n_classes)[index.astype(int)]
    if data.labels:
        return np.asarray(data.labels)[index.astype(int)]
    return index


def build_model(spec: RunSpec, names: dict[str, Any]) -> Any:
    """The Keras model of the spec: a Dense stack, or the uploaded JSON loaded in safe mode."""
    model_spec = spec.model
    if model_spec.keras_json is not None:
        check_model_json(names, model_spec.keras_json)  # again: a worker trusts no model it is sent
        with keras.saving.custom_object_scope({}):
            return keras.saving.deserialize_keras_object(json.loads(model_spec.keras_json), safe_mode=True)
    regularizer = keras.regularizers.L2(model_spec.l2) if model_spec.l2 else None
    layers: list[Any] = [keras.Input((model_spec.n_features,))]
    dense = [keras.layers.Dense(model_spec.width, activation=model_spec.hidden_activation,
                                kernel_initializer=_kernel_initializer(model_spec), kernel_regularizer=regularizer,
                                bias_initializer=keras.initializers.Constant(model_spec.bias_init))
             for _ in range(model_spec.depth)]
    for layer in dense:
        layers.append(layer)
        if model_spec.batch_norm:
            layers.append(keras.layers.BatchNormalization())
        if model_spec.dropout:
            layers.append(keras.layers.Dropout(model_spec.dropout))
    output = keras.layers.Dense(model_spec.output_units, activation=model_spec.output_activation,
                                kernel_initializer=_kernel_initializer(model_spec), kernel_regularizer=regularizer)
    layers.append(output)
    for layer in (dense + [output])[:model_spec.frozen_layers]:
        layer.trainable = False
    return keras.Sequential(layers)


def _kernel_initializer(model_spec: Model) -> Any:
    """The spec's initializer by name, or He's normal scaled by ``init_gain``: weights that grow the signal at
    every layer."""
    if model_spec.init_gain > 0:
        return keras.initializers.VarianceScaling(2.0 * model_spec.init_gain ** 2, "fan_in", "untruncated_normal")
    return model_spec.kernel_initializer


def compile_model(model: Any, spec: RunSpec, names: dict[str, Any], steps_per_execution: int = 1) -> Any:
    """Compile as the user did; returns the loss object, which the internals reuse.

    ``steps_per_execution`` runs that many batches per call into TensorFlow: the same updates in
    the same order, without Python's overhead between every batch of a small model.
    """
    training = spec.training
    options: dict[str, Any] = {"learning_rate": training.learning_rate}
    if training.optimizer in names["with_momentum"]:
        options["momentum"] = training.momentum
    if training.clipnorm:
        options["clipnorm"] = training.clipnorm
    optimizer = getattr(keras.optimizers, names["optimizer_classes"][training.optimizer])(**options)
    if training.loss in names["loss_classes"]:
        loss = getattr(keras.losses, names["loss_classes"][training.loss])(from_logits=training.from_logits)
    else:
        loss = keras.losses.get(training.loss)
    binary = spec.data.task == "binary_classification"
    named = {"recall": keras.metrics.Recall, "precision": keras.metrics.Precision, "auc": keras.metrics.AUC}
    metrics = [named[m](name=m) if m in named else m for m in training.metrics if m not in named or binary]
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics, jit_compile=False,
                  steps_per_execution=steps_per_execution)
    return loss


def _number(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


class Validation(keras.callbacks.Callback):
    """The validation loss and metrics at every epoch's end, as ``fit(validation_data=...)`` logs them.

    All validation rows go through in one call (a run has a few hundred): the same figures
    without the dataset pipeline ``fit`` builds for them every epoch, which costs far more here.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        super().__init__()
        self.x, self.y = x, y

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None:  # the dict every later callback gets, History's included
            measured = self.model.test_on_batch(self.x, self.y, return_dict=True)
            logs.update({f"val_{name}": value for name, value in measured.items()})


class Probe(keras.callbacks.Callback):
    """A Keras callback: progress per epoch, and the network's internals on a fixed batch.

    Internals: gradient norm per Dense layer, share of dead ReLU units, share of saturated
    sigmoid/tanh activations, and how far the weights moved relative to their size.
    """

    def __init__(self, name: str, epochs: int, x: np.ndarray, y: np.ndarray, loss: Any, emit: Emit,
                 lr_steps: int = 0) -> None:
        super().__init__()
        self.name, self.epochs, self.x, self.y, self.loss, self.emit = name, epochs, x, y, loss, emit
        self.lr_steps = lr_steps
        self.gradients: list[list[float | None]] = []
        self.dead: list[float] = []
        self.saturated: list[float] = []
        self.updates: list[float] = []
        self.steps: list[tuple[float, float]] = []

    def set_model(self, model: Any) -> None:
        super().set_model(model)
        self.dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
        hidden = self.dense[:-1]
        self.activations = keras.Model(model.inputs[0], [layer.output for layer in hidden]) if hidden else None
        self.hidden_activation = [getattr(layer.activation, "__name__", "") for layer in hidden]

    def _kernels(self) -> list[np.ndarray]:
        return [np.array(layer.kernel) for layer in self.dense]

    def measure(self) -> None:
        kernels = [layer.kernel for layer in self.dense if layer.trainable]
        with tf.GradientTape() as tape:
            loss = self.loss(self.y, self.model(self.x, training=False))
        grads = tape.gradient(loss, kernels) if kernels else []
        norms = iter([_number(tf.norm(g)) if g is not None else None for g in grads])
        self.gradients.append([next(norms) if layer.trainable else None for layer in self.dense])
        if self.activations is None:
            return
        outputs = self.activations(self.x, training=False)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        relu = [np.asarray(o) for o, a in zip(outputs, self.hidden_activation) if a == "relu"]
        squashed = [(np.asarray(o), a) for o, a in zip(outputs, self.hidden_activation) if a in ("sigmoid", "tanh")]
        if relu:
            units = np.concatenate([(o <= 0).all(axis=0) for o in relu])
            self.dead.append(float(units.mean()))
        if squashed:
            stuck = [(np.minimum(o, 1 - o) < SATURATED) if a == "sigmoid" else (np.abs(o) > 1 - SATURATED)
                     for o, a in squashed]
            self.saturated.append(float(np.concatenate([s.reshape(-1) for s in stuck]).mean()))

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.measure()
        self.before = self._kernels()

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.mean_before = 0.0

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        if self.lr_steps:
            step = len(self.steps)
            low, high = LR_RANGE
            self.lr = low * (high / low) ** (step / max(1, self.lr_steps - 1))
            self.model.optimizer.learning_rate.assign(self.lr)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.lr_steps and logs and "loss" in logs:
            mean = float(logs["loss"])  # Keras reports the epoch's running mean: take this batch's share back out
            self.steps.append((self.lr, (batch + 1) * mean - batch * self.mean_before))
            self.mean_before = mean

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.measure()
        after = self._kernels()
        moved = math.sqrt(sum(float(((a - b) ** 2).sum()) for a, b in zip(after, self.before)))
        size = math.sqrt(sum(float((b ** 2).sum()) for b in self.before))
        self.updates.append(moved / size if size else (0.0 if moved == 0 else math.inf))
        self.before = after
        self.emit({"event": "epoch", "experiment": self.name, "epoch": epoch + 1, "epochs": self.epochs})

    def internals(self) -> dict[str, Any]:
        """Per-epoch measurements and the summary the verdict turns into facts."""
        first = self.gradients[0] if self.gradients else []
        ratio = None
        if len(first) > 1 and first[0] is not None and first[-1]:
            ratio = first[0] / first[-1]
        every = [g for epoch in self.gradients for g in epoch if g is not None]
        finite_updates = [u for u in self.updates if math.isfinite(u)]
        return {
            "gradient_norms": self.gradients, "dead_fraction_by_epoch": self.dead,
            "saturated_fraction_by_epoch": self.saturated, "update_ratio_by_epoch": self.updates,
            "summary": {
                "dead_fraction": self.dead[-1] if self.dead else None,
                "saturated_fraction": self.saturated[-1] if self.saturated else None,
                "gradient_ratio": ratio,
                "gradient_max": max(every) if every else None,
                "update_ratio": float(np.median(finite_updates)) if finite_updates else None,
            },
        }


def run_experiment(experiment: dict[str, Any], names: dict[str, Any], emit: Emit,
                   data: Callable[[RunSpec], tuple[np.ndarray, ...]] | None = None) -> dict[str, Any]:
    """Train one experiment; its history, internals and, for a range test, the loss at each step.

    ``data`` makes the spec's arrays (a run shares them between its experiments). Training stops
    at a loss that is no longer finite: later epochs cannot change what the verdict reads (the
    first such epoch reaches the same curves leaf, a broken run stays broken). A fix is never
    stopped for being clearly better early: a shorter history can reach another leaf (still
    improving or not) and so change which fix removed the symptom.
    """
    spec = RunSpec.from_json(experiment["spec"])
    keras.utils.set_random_seed(spec.data.seed)
    x_train, y_train, x_val, y_val = (data or make_data)(spec)
    model = build_model(spec, names)
    training = spec.training
    per_epoch = math.ceil(len(x_train) / training.batch_size)
    range_test = training.lr_schedule == "range"  # sets the rate before every batch, so batches go one by one
    loss = compile_model(model, spec, names, steps_per_execution=1 if range_test else per_epoch)
    probe = Probe(experiment["name"], training.epochs, x_train[:PROBE_ROWS], y_train[:PROBE_ROWS], loss, emit,
                  lr_steps=per_epoch * training.epochs if range_test else 0)
    class_weight = None
    if training.class_weight == "balanced" and spec.data.task != "regression" and not spec.data.one_hot:
        values, counts = np.unique(y_train, return_counts=True)
        class_weight = {int(v): len(y_train) / (len(values) * c) for v, c in zip(values, counts)}
    validation = [Validation(x_val, y_val)] if len(x_val) else []
    started, clock = time.time(), time.perf_counter()
    history = model.fit(x_train, y_train, batch_size=training.batch_size, epochs=training.epochs,
                        shuffle=training.shuffle, class_weight=class_weight,
                        callbacks=[*validation, probe, keras.callbacks.TerminateOnNaN()], verbose=0)
    result: dict[str, Any] = {
        "history": {key: [float(v) for v in values] for key, values in history.history.items()},
        "internals": probe.internals(),
        # The training itself, what a run cannot do without, and when it began (experiments overlap).
        "seconds": time.perf_counter() - clock, "started": started,
    }
    if probe.steps:
        result["steps"] = probe.steps
    return result


def shared_data() -> Callable[[RunSpec], tuple[np.ndarray, ...]]:
    """:func:`make_data` made once per distinct data description: a run's experiments mostly train on the
    same arrays (a learning rate or a layer changes, the data does not), and generating them is not free."""
    made: dict[str, tuple[np.ndarray, ...]] = {}

    def data(spec: RunSpec) -> tuple[np.ndarray, ...]:
        key = json.dumps([spec.to_json()["data"], spec.model.n_features, spec.training.validation_split],
                         sort_keys=True)
        if key not in made:
            made[key] = make_data(spec)
        return made[key]

    return data


def trained_as(experiment: dict[str, Any]) -> str:
    """What an experiment trains, without its words: two with the same key give the same result (the seed is
    part of the spec), so the second is not trained again (the fix of an assumed fault that restores the setup)."""
    spec = {part: experiment["spec"][part] for part in ("model", "data", "training")}
    return json.dumps(spec, sort_keys=True)


def run_job(job: dict[str, Any], emit: Emit) -> None:
    """Every experiment of a job, each result emitted as it ends; then the plot and ``done``.

    With ``processes`` above one, that many lanes (forked processes, one experiment at a time
    each) train the experiments at once, the user's setup first, then the longest; otherwise
    they train here, one after another, in the plan's order. An experiment that trains what an
    earlier one trains is not trained again: its result is the earlier one's.
    """
    experiments = job["experiments"]
    first = {}
    for experiment in experiments:
        first.setdefault(trained_as(experiment), experiment["name"])
    trained = [e for e in experiments if first[trained_as(e)] == e["name"]]
    if job.get("processes", 1) > 1 and len(trained) > 1:
        results = _in_lanes(trained, job, emit)
    else:
        _set_threads(job)
        data = shared_data()
        results = {e["name"]: _train(e, job, emit, data) for e in trained}
    histories = {}
    for experiment in experiments:
        name = experiment["name"]
        result = results[first[trained_as(experiment)]]
        if name not in results:  # trained under another name: that result, at no cost
            result = {**result, "name": name}
            if "history" in result:
                result.update(seconds=0.0, same_as=first[trained_as(experiment)])
            emit(result)
        if experiment["kind"] != "check" and "history" in result:
            histories[experiment["title"]] = result["history"]
    if histories:
        emit({"event": "plot", "png": base64.b64encode(curves_png(histories)).decode("ascii")})
    emit({"event": "done"})


def _set_threads(job: dict[str, Any]) -> None:
    """TensorFlow's thread pools for this process: set before its first operation, which starts them."""
    tf.config.threading.set_intra_op_parallelism_threads(job.get("threads", 1))
    tf.config.threading.set_inter_op_parallelism_threads(job.get("threads", 1))


def _train(experiment: dict[str, Any], job: dict[str, Any], emit: Emit,
           data: Callable[[RunSpec], tuple[np.ndarray, ...]]) -> dict[str, Any]:
    """One experiment's ``result`` message, emitted and returned: its outcome, its error, or that time ran out."""
    message: dict[str, Any] = {"event": "result", "name": experiment["name"]}
    if time.time() > job["deadline"]:
        message["skipped"] = "the run's time ran out before this experiment"
    else:
        try:
            message.update(run_experiment(experiment, job["names"], emit, data))
        except Exception as exc:  # a Keras error is the user's setup failing, which the verdict reports
            message["error"] = f"{type(exc).__name__}: {str(exc)[:500]}"
    emit(message)
    return message


class LaneDied(Exception):
    """A lane ended before it reported the experiment it was training; ``code`` is its exit status."""

    def __init__(self, code: int) -> None:
        super().__init__(f"a training process ended with exit status {code}")
        self.code = code


def _in_lanes(experiments: list[dict[str, Any]], job: dict[str, Any], emit: Emit) -> dict[str, dict[str, Any]]:
    """Train ``experiments`` in ``job["processes"]`` forked lanes, handing each lane the next one
    (:func:`lane_order`) as it ends the last; relay their messages; their results by name.
    Raises LaneDied.

    A lane forks from this process, which has run no TensorFlow operation (its thread pools would
    not survive the fork); it dies with this process, in the same process group, under the same limits.
    """
    context = multiprocessing.get_context("fork")
    waiting, results, lanes = sorted(experiments, key=lane_order), {}, {}
    for _ in range(min(job["processes"], len(experiments))):
        ours, theirs = context.Pipe()
        lane = context.Process(target=_lane, args=(theirs, job, os.getpid()), daemon=True)
        lane.start()
        theirs.close()
        ours.send(waiting.pop(0))
        lanes[ours] = lane
    while lanes:
        for conn in multiprocessing.connection.wait(list(lanes)):
            try:
                message = conn.recv()
            except EOFError:  # it died training: the run cannot be concluded without that experiment
                lane = lanes.pop(conn)
                lane.join()
                raise LaneDied(lane.exitcode) from None
            emit(message)
            if message["event"] == "result":
                results[message["name"]] = message
                if waiting:
                    conn.send(waiting.pop(0))
                else:  # nothing left for it: it ends
                    conn.send(None)
                    lanes.pop(conn).join()
    return results


def lane_order(experiment: dict[str, Any]) -> tuple[bool, int]:
    """The user's setup first (the baseline, and the baseline with an assumed fault: a run cut short still
    has them), then the longest experiments, so that none is left to train alone at the end."""
    spec = RunSpec.from_json(experiment["spec"])
    rows = spec.data.n_samples * (1 - spec.training.validation_split)
    batches = spec.training.epochs * math.ceil(rows / spec.training.batch_size)
    return experiment["kind"] not in ("baseline", "assumed"), -batches


def _lane(conn: multiprocessing.connection.Connection, job: dict[str, Any], parent: int) -> None:
    """A lane: train each experiment it is sent, its messages sent back, until it is sent None."""
    die_with_parent(parent)
    _set_threads(job)
    data = shared_data()
    while (experiment := conn.recv()) is not None:
        _train(experiment, job, conn.send, data)
    conn.close()


def _child(request: dict[str, Any], parent: int, emit: Emit, protocol: IO[str]) -> None:
    """A forked child: its own session, name and limits, then the job; never returns."""
    code = 1
    try:
        os.setsid()  # a process group of its own, which the supervisor kills whole
        die_with_parent(parent)
        if sys.platform.startswith("linux"):
            ctypes.CDLL(None).prctl(PR_SET_NAME, request["name"].encode()[:15])
        resource.setrlimit(resource.RLIMIT_CPU, (request["cpu"], request["cpu"] + 5))
        resource.setrlimit(resource.RLIMIT_AS, (request["address_space"], request["address_space"]))
        run_job(request["job"], emit)
        protocol.flush()
        code = 0
    except LaneDied as died:  # ends as its lane did, so the supervisor says why (a signal: the system's limits)
        if died.code < 0:
            sys.stderr.flush()
            os.kill(os.getpid(), -died.code)
        print(died, file=sys.stderr)
    except BaseException:  # noqa: BLE001 - whatever it was, the supervisor reads it on stderr
        traceback.print_exc()
    finally:
        sys.stderr.flush()
        os._exit(code)


def _wait(pid: int, stdin: IO[bytes]) -> int:
    """Wait for the child to end; its exit code (negative: a signal). Exit if stdin closes, which ends the child too."""
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        readable, _, _ = select.select([stdin], [], [], POLL)
        if readable and not os.read(stdin.fileno(), 1):  # the supervisor is gone: so is the run
            os._exit(1)  # and the child with it (its parent-death signal), whether or not it has its own group yet


def main() -> None:
    """The warm worker: TensorFlow is imported (above); fork a child for each job line until stdin closes."""
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # whatever TensorFlow prints goes to stderr, never into the protocol
    stdin = sys.stdin.buffer

    def emit(message: dict[str, Any]) -> None:
        protocol.write(json.dumps(message) + "\n")

    while line := stdin.readline():  # one job at a time: nothing more is sent until its ``exit``
        request = json.loads(line)
        warm = os.getpid()
        pid = os.fork()
        if pid == 0:
            _child(request, warm, emit, protocol)
        emit({"event": "started", "pid": pid})
        code = _wait(pid, stdin)
        protocol.write("\n")  # ends whatever a killed child left half-written, which is then skipped
        emit({"event": "exit", "code": code})


if __name__ == "__main__":
    main()
