"""The run spec: a declarative description of one short training run, built from a conversation's facts.

A spec is plain data (JSON both ways), so the web tier builds and checks it without TensorFlow
and a worker on any machine trains exactly what it says. Nothing the user sent becomes code: a
Keras model JSON is checked here against an allow-list before a worker ever loads it.
"""
from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..kb.model import Keras, head

#: Metrics a run may track are those keras.yaml marks `runs`; the rest of a user's history columns are ignored.
MAX_MODEL_JSON = 512 * 1024
#: A dataset summary whose most extreme value lies this many standard deviations out has outliers.
OUTLIER_Z = 20.0
#: A feature spread this wide (standard deviation) means unscaled raw features.
WIDE_STD = 10.0
#: Fewest samples a run is scaled down to before it gives up epochs instead.
MIN_SAMPLES = 200


def run_names(keras: Keras) -> dict[str, Any]:
    """What a run can build, by Keras name (keras.yaml's `runs`): the web tier checks a spec against it,
    and the worker, which reads no knowledge base, builds optimizers and losses by these classes.

    Plain JSON, so that it travels with the job to a worker on any machine.
    """
    runs = {table: sorted(keras.having(table, "runs")) for table in ("optimizers", "losses", "activations",
                                                                     "initializers", "metrics")}
    return {
        **runs,
        "optimizer_classes": {name: keras.get("optimizers", name, "class") for name in runs["optimizers"]},
        "default_learning_rates": {name: keras.get("optimizers", name, "default_learning_rate")
                                   for name in runs["optimizers"]},
        "with_momentum": sorted(keras.having("optimizers", "momentum")),
        "loss_classes": {name: keras.get("losses", name, "class") for name in runs["losses"]
                         if keras.get("losses", name, "class")},
        "loss_errors": {name: keras.get("losses", name, "error") for name in runs["losses"]
                        if keras.get("losses", name, "error")},
        "model_json_classes": sorted(keras.model_json_classes),
        "heads": {kind: {**fit, "metrics": list(fit["metrics"])} for kind, fit in keras.tables["heads"].items()},
    }


class SpecError(ValueError):
    """The facts or the uploaded model cannot describe a run; the message says why, for the user."""


class IncompleteFacts(SpecError):
    """Facts a model cannot be built without are unknown."""

    def __init__(self, missing: Sequence[str]) -> None:
        self.missing = list(missing)
        #: The reply that asks for them, once the conversation has stored it.
        self.reply: dict[str, Any] | None = None
        super().__init__("to build your model I still need: " + ", ".join(self.missing))


@dataclass(frozen=True)
class Caps:
    """How large a run may get, so that a job stays short on two cores."""

    samples: int = 2000
    epochs: int = 20
    params: int = 1_000_000
    steps: int = 3000


@dataclass(frozen=True)
class Model:
    """A stack of equal Dense layers and an output layer, or an uploaded Keras model JSON."""

    n_features: int
    depth: int
    width: int
    hidden_activation: str
    output_units: int
    output_activation: str
    kernel_initializer: str = "glorot_uniform"
    dropout: float = 0.0
    l2: float = 0.0
    batch_norm: bool = False
    #: How many Dense layers, from the input on, have trainable=False.
    frozen_layers: int = 0
    #: The hidden layers' starting bias (a fault a run may assume: far below zero, every ReLU unit dead).
    bias_init: float = 0.0
    #: Above 0: kernels start at this many times He's scale instead of ``kernel_initializer`` (an assumed fault).
    init_gain: float = 0.0
    keras_json: str | None = None


@dataclass(frozen=True)
class Data:
    """Generated data shaped like the dataset summary, or the rows of an uploaded sample."""

    task: str
    generator: str  # moons | classification | regression | sample
    n_samples: int
    n_classes: int = 0
    class_shares: tuple[float, ...] = ()
    #: How the user codes each class (0 and 255, say); empty for 0..K-1.
    labels: tuple[float, ...] = ()
    one_hot: bool = False
    scale: str = "standard"  # standard | wide | outliers
    feature_mean: float = 0.0
    feature_std: float = 1.0
    feature_extreme: float = 0.0
    missing_fraction: float = 0.0
    sorted_by_label: bool = False
    label_noise: float = 0.0
    #: The generated regression targets' standard deviation (0: the generator's own).
    target_scale: float = 0.0
    #: How far apart the generated classes lie (scikit-learn's class_sep); small is a weak signal.
    class_sep: float = 1.0
    impute_missing: bool = False
    clip_outliers: bool = False
    standardize: bool = False
    shuffle_labels: bool = False
    zero_inputs: bool = False
    #: Uploaded rows: {"x": [[...], ...], "y": [...]}.
    sample: dict[str, list] | None = None
    seed: int = 0


@dataclass(frozen=True)
class Training:
    """How the model is compiled and fit."""

    optimizer: str
    learning_rate: float
    loss: str
    batch_size: int
    epochs: int
    validation_split: float
    momentum: float = 0.0
    clipnorm: float | None = None
    from_logits: bool = False
    metrics: tuple[str, ...] = ()
    shuffle: bool = True
    class_weight: str | None = None  # balanced
    lr_schedule: str | None = None  # range: the learning-rate range test


_PARTS = {"model": Model, "data": Data, "training": Training}
#: Which part holds each setting; setting names are unique across the parts.
PART_OF = {f.name: part for part, cls in _PARTS.items() for f in dataclasses.fields(cls)}
ARCHITECTURE = frozenset(f.name for f in dataclasses.fields(Model)) - {"n_features", "keras_json"}


@dataclass(frozen=True)
class RunSpec:
    model: Model
    data: Data
    training: Training
    #: What was assumed or scaled down, in words for the user.
    notes: tuple[str, ...] = ()

    def get(self, name: str) -> Any:
        return getattr(getattr(self, PART_OF[name]), name)

    def replace(self, **changes: Any) -> RunSpec:
        """A copy with settings changed by name, whichever part holds them."""
        parts: dict[str, dict[str, Any]] = {}
        for name, value in changes.items():
            parts.setdefault(PART_OF[name], {})[name] = value
        return dataclasses.replace(self, **{p: dataclasses.replace(getattr(self, p), **c) for p, c in parts.items()})

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunSpec:
        def part(name: str) -> Any:
            values = dict(data[name])
            for f in dataclasses.fields(_PARTS[name]):
                if isinstance(values.get(f.name), list) and f.name != "sample":
                    values[f.name] = tuple(values[f.name])
            return _PARTS[name](**values)

        return cls(part("model"), part("data"), part("training"), tuple(data.get("notes", ())))


def fitting(spec: RunSpec, names: Mapping[str, Any]) -> dict[str, Any]:
    """The output layer, loss and metrics that suit the spec's task and label encoding (keras.yaml ``heads``)."""
    data = spec.data
    fit = head(names["heads"], regression=data.task == "regression", binary=data.n_classes <= 2,
               one_hot=data.one_hot, classes=data.n_classes)
    return {"output_units": fit["units"], "output_activation": fit["activation"], "loss": fit["loss"],
            "metrics": tuple(fit["metrics"])}


def hidden_width(total_params: int, n_features: int, depth: int, output_units: int, batch_norm: bool) -> int:
    """The width of ``depth`` equal Dense layers that gives the model ``total_params`` parameters."""
    # (d-1)·w² + (f + 1 + (d-1) + o + 4d·bn)·w + o = total
    a = depth - 1
    b = n_features + 1 + (depth - 1) + output_units + (4 * depth if batch_norm else 0)
    c = output_units - total_params
    width = -c / b if a == 0 else (-b + math.sqrt(b * b - 4 * a * c)) / (2 * a)
    return max(1, round(width))


def parameter_count(model: Model) -> int:
    """Parameters of the Dense stack a spec describes."""
    sizes = [model.n_features] + [model.width] * model.depth + [model.output_units]
    dense = sum((i + 1) * o for i, o in zip(sizes, sizes[1:]))
    return dense + (4 * model.width * model.depth if model.batch_norm else 0)


def _labels(values: Mapping[str, Any]) -> tuple[int, tuple[float, ...], tuple[float, ...]]:
    """Number of classes, their shares, and how they are coded when that is not 0..K-1."""
    counts = values.get("class_counts")
    if isinstance(counts, Mapping) and counts:
        try:
            coded = sorted((float(label), n) for label, n in counts.items())
        except ValueError:  # names such as "cat": whatever the user trains on is 0..K-1
            coded = list(enumerate(counts.values()))
        total = sum(n for _, n in coded) or 1
        codes = tuple(label for label, _ in coded)
        contiguous = codes == tuple(float(k) for k in range(len(codes)))
        return len(coded), tuple(n / total for _, n in coded), () if contiguous else codes
    k = values.get("n_classes") or (2 if values.get("task") == "binary_classification" else 0)
    return k, tuple([1 / k] * k) if k else (), ()


def _scale(values: Mapping[str, Any]) -> dict[str, Any]:
    """Standard features, unscaled raw features of very different sizes, or standard ones with outliers."""
    mean, std = values.get("feature_mean") or 0.0, values.get("feature_std")
    low, high = values.get("feature_min"), values.get("feature_max")
    if std is None or low is None or high is None:
        return {"scale": "standard", "feature_mean": mean, "feature_std": std or 1.0}
    extreme = max(abs(low), abs(high))
    spread = max(abs(high - mean), abs(low - mean)) / std if std > 0 else 0.0
    if spread > OUTLIER_Z:
        return {"scale": "outliers", "feature_std": std, "feature_extreme": extreme}
    if std > WIDE_STD:
        return {"scale": "wide", "feature_std": std, "feature_extreme": extreme}
    return {"scale": "standard", "feature_mean": mean, "feature_std": std}


def _smallest(history: Mapping[str, Sequence[Any]], key: str) -> float | None:
    numbers = [float(v) for v in history.get(key, ()) if isinstance(v, (int, float)) and math.isfinite(v)]
    return min(numbers, default=None)


def target_scale(values: Mapping[str, Any], history: Mapping[str, Sequence[Any]], error: str | None) -> float:
    """How spread the generated regression targets are, so that a run's losses are the size of the user's.

    The user's target_std (or a third of target_max) when known; else the size of the smallest
    error their model reached on training or validation data (a model that got to an MSE of 0.8
    had targets near unit size; one stuck at 30,000 had targets in the hundreds), at least 1.
    The validation loss counts: input outliers inflate only the training loss. ``error`` says what
    the loss's value is (keras.yaml: ``squared`` or ``absolute``). 0 (the generator's own scale)
    when nothing tells.
    """
    if values.get("target_std"):
        return float(values["target_std"])
    if values.get("target_max"):
        return float(values["target_max"]) / 3
    lows = [low for low in (_smallest(history, "loss"), _smallest(history, "val_loss")) if low is not None and low >= 0]
    if not lows or error not in ("squared", "absolute"):
        return 0.0
    return max(1.0, math.sqrt(min(lows)) if error == "squared" else min(lows))


def _required(values: Mapping[str, Any], model_json: str | None) -> list[str]:
    needed = ["task", "optimizer", "loss"]
    if model_json is None:
        needed += ["n_features", "n_hidden_layers", "output_activation"]
        if values.get("n_hidden_layers"):
            needed.append("hidden_activation")
    if values.get("task") in ("binary_classification", "multiclass_classification") and not (
            values.get("class_counts") or values.get("n_classes")):
        needed.append("n_classes")
    return [key for key in needed if values.get(key) in (None, "")]


def build(names: Mapping[str, Any], values: Mapping[str, Any], *, metrics: Sequence[str] = (), model_json: str | None = None,
          sample: dict[str, list] | None = None, caps: Caps = Caps(),
          history: Mapping[str, Sequence[Any]] | None = None) -> RunSpec:
    """The spec of the user's own run, from what the conversation knows; scaled down to the caps.

    ``metrics`` are the names the user's history tracked (the run tracks the same), ``model_json``
    an uploaded ``model.to_json()``, ``sample`` uploaded rows to train on instead of generated data,
    ``history`` the user's own (``history.history``), whose losses say how large regression targets are.
    """
    missing = _required(values, model_json)
    if missing:
        raise IncompleteFacts(missing)
    notes: list[str] = []

    def known(key: str, default: Any, why: str) -> Any:
        if values.get(key) is None:
            notes.append(f"assumed {key} = {default} ({why})")
            return default
        return values[key]

    optimizer = str(values["optimizer"]).lower()
    if optimizer not in names["optimizers"]:
        raise SpecError(f"a run can use the optimizers {', '.join(names['optimizers'])}, not {optimizer}")
    if values["loss"] not in names["losses"]:
        raise SpecError(f"a run cannot train with the loss {values['loss']}")
    for key, allowed in (("hidden_activation", "activations"), ("output_activation", "activations"),
                         ("kernel_initializer", "initializers")):
        if values.get(key) is not None and values[key] not in names[allowed]:
            raise SpecError(f"a run cannot build a model with {key} = {values[key]}")
    task = values["task"]
    k, shares, codes = _labels(values) if task != "regression" else (0, (), ())
    n_features = values.get("n_features")
    if model_json is not None:
        n_features = check_model_json(names, model_json)
    elif sample is not None:
        n_features = len(sample["x"][0])
    depth = 0 if model_json else values["n_hidden_layers"]
    output_units = values.get("output_units") or (1 if task != "multiclass_classification" else k)
    model = Model(
        n_features=n_features, depth=depth, width=0,
        hidden_activation=values.get("hidden_activation") or "relu",
        output_units=output_units, output_activation=values.get("output_activation") or "linear",
        kernel_initializer=values.get("kernel_initializer") or "glorot_uniform",
        dropout=values.get("dropout") or 0.0, l2=values.get("l2") or 0.0, batch_norm=bool(values.get("batch_norm")),
        keras_json=model_json)
    if depth:
        total = values.get("total_params")
        width = 64 if total is None else hidden_width(total, n_features, depth, output_units, model.batch_norm)
        if total is None:
            notes.append("assumed hidden layers of 64 units (the parameter count is unknown)")
        model = dataclasses.replace(model, width=width)
    if values.get("trainable_params") is not None and values.get("total_params") and model_json is None:
        model = dataclasses.replace(model, frozen_layers=_frozen_layers(model, values["total_params"]
                                                                         - values["trainable_params"]))
    data = Data(
        task=task, generator=_generator(task, k, n_features, sample),
        n_samples=len(sample["y"]) if sample else known("n_samples", 1000, "a typical size"),
        n_classes=k, class_shares=shares, labels=codes, one_hot=values.get("label_format") == "one_hot",
        missing_fraction=values.get("missing_fraction") or 0.0, sorted_by_label=bool(values.get("sorted_by_label")),
        target_scale=target_scale(values, history or {}, names["loss_errors"].get(values.get("loss")))
        if task == "regression" else 0.0,
        sample=sample, **_scale(values))
    tracked = tuple(dict.fromkeys(m for m in metrics if m in names["metrics"]))
    training = Training(
        optimizer=optimizer,
        learning_rate=known("learning_rate", names["default_learning_rates"][optimizer], f"{optimizer}'s default"),
        loss=values["loss"], from_logits=bool(values.get("from_logits")),
        batch_size=known("batch_size", 32, "Keras' default"), epochs=known("epochs", 10, "a short run"),
        validation_split=values.get("validation_split") or 0.2, momentum=values.get("momentum") or 0.0,
        shuffle=values.get("shuffle") is not False, metrics=tracked)
    if not values.get("validation_split"):
        notes.append("held out the last 20% of the rows for validation")
    spec = RunSpec(model, data, training, tuple(notes))
    if not tracked:
        spec = spec.replace(metrics=fitting(spec, names)["metrics"])
    return scaled(spec, caps)


def _frozen_layers(model: Model, frozen_params: int) -> int:
    """How many Dense layers, from the input on, hold the parameters that are not trainable."""
    sizes = [model.n_features] + [model.width] * model.depth + [model.output_units]
    count = 0
    for params in ((i + 1) * o for i, o in zip(sizes, sizes[1:])):
        if frozen_params < params / 2:
            break
        frozen_params -= params
        count += 1
    return count


def _generator(task: str, k: int, n_features: int, sample: dict[str, list] | None) -> str:
    if sample is not None:
        return "sample"
    if task == "regression":
        return "regression"
    return "moons" if k == 2 and n_features == 2 else "classification"


def scaled(spec: RunSpec, caps: Caps) -> RunSpec:
    """The spec within the caps, each reduction noted in words."""
    notes = list(spec.notes)
    changes: dict[str, Any] = {}
    model, data, training = spec.model, spec.data, spec.training
    samples = data.n_samples
    if samples > caps.samples:
        notes.append(f"trained on {caps.samples:,} samples instead of {samples:,}")
        samples = changes["n_samples"] = caps.samples
    if model.keras_json is None and model.depth and parameter_count(model) > caps.params:
        width = model.width
        while width > 1 and parameter_count(dataclasses.replace(model, width=width)) > caps.params:
            width = int(width * 0.9)
        notes.append(f"hidden layers of {width} units instead of {model.width}, to stay under "
                     f"{caps.params:,} parameters")
        changes["width"] = width
    epochs = training.epochs
    if epochs > caps.epochs:
        notes.append(f"{caps.epochs} epochs instead of {epochs}")
        epochs = changes["epochs"] = caps.epochs

    def steps(n: int) -> int:
        return epochs * math.ceil(n * (1 - training.validation_split) / max(1, training.batch_size))

    if steps(samples) > caps.steps and data.generator != "sample":
        fewer = samples
        while fewer > MIN_SAMPLES and steps(fewer) > caps.steps:
            fewer = max(MIN_SAMPLES, int(fewer * 0.8))
        if fewer < samples:
            notes.append(f"trained on {fewer:,} samples instead of {samples:,}, to keep the number of steps short")
            changes["n_samples"] = samples = fewer
    if steps(samples) > caps.steps:
        per_epoch = max(1, steps(samples) // epochs)
        fewer_epochs = max(1, caps.steps // per_epoch)
        notes.append(f"{fewer_epochs} epochs instead of {epochs}, to keep the number of steps short")
        changes["epochs"] = fewer_epochs
    return dataclasses.replace(spec.replace(**changes), notes=tuple(notes))


def sample_data(csv_text: str | bytes, caps: Caps) -> dict[str, list]:
    """An uploaded sample's rows to train on: numeric features and numeric labels, thinned evenly to the cap.

    Thinning keeps every k-th row, so rows that came sorted by label stay sorted. pandas is
    imported here, not with the module: only the web workers that are sent a sample load it.
    """
    import numpy as np
    import pandas as pd

    from ..evidence.sample import sample_rows

    features, y, _ = sample_rows(csv_text)
    numeric = features.select_dtypes("number")
    if numeric.shape[1] == 0:
        raise SpecError("the data sample has no numeric feature columns to train on")
    if not pd.api.types.is_numeric_dtype(y):
        y = pd.Series(pd.factorize(y, sort=True)[0])
    labelled = y.notna().to_numpy()
    numeric, y = numeric[labelled], y[labelled]
    keep = np.unique(np.linspace(0, len(y) - 1, min(len(y), caps.samples)).round().astype(int))
    return {"x": numeric.iloc[keep].astype(float).to_numpy().tolist(), "y": y.iloc[keep].astype(float).tolist()}


def _class_names(node: Any) -> Any:
    """Every (class_name, module, registered_name) in a serialized Keras config, depth first."""
    if isinstance(node, dict):
        if "class_name" in node:
            yield node["class_name"], node.get("module"), node.get("registered_name")
        for value in node.values():
            yield from _class_names(value)
    elif isinstance(node, list):
        for value in node:
            yield from _class_names(value)


def check_model_json(names: Mapping[str, Any], text: str) -> int:
    """Refuse a model JSON that names anything but plain built-in layers; returns its number of input features.

    Keras' safe mode already refuses lambdas when the worker loads it; this check runs first, in
    the web process, so that nothing outside the allow-list (custom objects, ``Lambda``, other
    modules) ever reaches a loader.
    """
    if not isinstance(text, str) or len(text) > MAX_MODEL_JSON:
        raise SpecError(f"the model must be the text of model.to_json(), at most {MAX_MODEL_JSON // 1024} KiB")
    try:
        config = json.loads(text)
    except ValueError as exc:
        raise SpecError(f"the model is not valid JSON: {exc}") from None
    if not isinstance(config, dict) or config.get("class_name") not in ("Sequential", "Functional"):
        raise SpecError("the model must be the JSON of a Sequential or Functional Keras model")
    for name, module, registered in _class_names(config):
        if name not in names["model_json_classes"]:
            raise SpecError(f"the model uses {name}, which a run does not load (only built-in Dense-style layers)")
        if module is not None and str(module).split(".")[0] != "keras":  # keras, keras.layers; not keras_evil
            raise SpecError(f"the model names the module {module}; only Keras' own classes are loaded")
        if registered not in (None, name):
            raise SpecError(f"the model uses the custom object {registered}, which a run does not load")
    layers = config.get("config", {}).get("layers", [])
    for layer in layers:
        activation = layer.get("config", {}).get("activation")
        if activation is not None and activation not in names["activations"]:
            raise SpecError(f"the model uses the activation {activation!r}, which a run does not load")
    for layer in layers:
        if layer.get("class_name") == "InputLayer":
            shape = layer.get("config", {}).get("batch_shape") or layer.get("config", {}).get("batch_input_shape")
            if isinstance(shape, list) and len(shape) == 2 and isinstance(shape[1], int) and shape[1] > 0:
                return shape[1]
    raise SpecError("the model JSON has no InputLayer with a flat input shape (None, n_features)")
