"""The training facts of a live Keras model, read off the object: nothing here imports Keras.

What ``compile`` set (optimizer, learning rate, loss) and what the layers are (output units and
activation, hidden activations, initializers, dropout, L2, batch normalization, parameter counts)
becomes the API's ``training`` field; the weights stay in the notebook.
"""
from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

from .errors import InputError

def training_facts(model: Any) -> dict[str, Any]:
    """The contract's training facts that ``model`` shows; what it does not show is left out."""
    if not hasattr(model, "layers") or not callable(getattr(model, "count_params", None)):
        raise InputError(f"model: expected a Keras model, got {type(model).__name__}")
    layers = list(_flatten(model))
    if not layers:
        raise InputError("model: it has no layers yet; build the model before asking about it")
    facts = {**_compiled(model), **_architecture(layers), **_parameters(model)}
    return {key: value for key, value in facts.items() if value is not None}


def _flatten(model: Any) -> Iterator[Any]:
    """Every layer, the layers of nested models in their place."""
    for layer in model.layers:
        if hasattr(layer, "layers"):
            yield from _flatten(layer)
        else:
            yield layer


def _number(value: Any) -> float | None:
    """A float from a Python number, a numpy scalar or a Keras variable; None when there is none.

    Keras keeps hyperparameters in float32: seven digits give back the number that was typed.
    """
    try:
        return float(f"{float(value):.7g}")
    except (TypeError, ValueError):
        return None


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def _compiled(model: Any) -> dict[str, Any]:
    """What ``compile`` was given."""
    optimizer = getattr(model, "optimizer", None)
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)  # mixed precision wraps the real one
    facts: dict[str, Any] = {}
    if optimizer is not None:
        facts["optimizer"] = _snake(type(optimizer).__name__)
        facts["learning_rate"] = _number(getattr(optimizer, "learning_rate", None))
        facts["momentum"] = _number(getattr(optimizer, "momentum", None))
    loss = getattr(model, "loss", None)
    if isinstance(loss, str):
        name, config = loss, {}
    elif callable(loss):
        name = getattr(loss, "name", None) or getattr(loss, "__name__", None)
        config = loss.get_config() if callable(getattr(loss, "get_config", None)) else {}
    else:  # not compiled, or one loss per output: nothing single to report
        return facts
    facts["loss"] = name
    if name and "crossentropy" in name:
        facts["from_logits"] = bool(config.get("from_logits", False))
    return facts


def _activation(layers: list[Any], index: int) -> str | None:
    """The activation a weighted layer's output goes through: its own, or that of an activation layer after it."""
    own = getattr(layers[index], "activation", None)
    name = getattr(own, "__name__", None)
    if name not in (None, "linear"):
        return name
    for layer in layers[index + 1:]:
        if hasattr(layer, "kernel_initializer"):
            break
        kind = type(layer).__name__
        if kind == "Activation":
            return getattr(layer.activation, "__name__", None)
        if "activations" in type(layer).__module__.split("."):  # ReLU, LeakyReLU, Softmax...: the service reads the name
            return _snake(kind)
    return name


def _most_common(values: list[Any]) -> Any:
    values = [value for value in values if value is not None]
    return Counter(values).most_common(1)[0][0] if values else None


def _architecture(layers: list[Any]) -> dict[str, Any]:
    """The output layer, the hidden layers, and the regularisation around them."""
    weighted = [i for i, layer in enumerate(layers) if hasattr(layer, "kernel_initializer")]
    facts: dict[str, Any] = {
        "dropout": max((float(layer.rate) for layer in layers
                        if type(layer).__name__.endswith("Dropout") and hasattr(layer, "rate")), default=0.0),
        "l2": max((float(getattr(layer.kernel_regularizer, "l2", 0.0)) for layer in layers
                   if getattr(layer, "kernel_regularizer", None) is not None), default=0.0),
        "batch_norm": any("BatchNormalization" in type(layer).__name__ for layer in layers),
    }
    if not weighted:
        return facts
    output = layers[weighted[-1]]
    hidden = weighted[:-1]
    facts.update({
        "output_units": getattr(output, "units", None) or getattr(output, "filters", None),
        "output_activation": _activation(layers, weighted[-1]),
        "n_hidden_layers": len(hidden),
        "hidden_activation": _most_common([_activation(layers, i) for i in hidden]),
        "kernel_initializer": _most_common([_snake(type(layers[i].kernel_initializer).__name__) for i in weighted]),
    })
    return facts


def _parameters(model: Any) -> dict[str, Any]:
    """Parameter counts; an unbuilt model has none yet."""
    try:
        total = int(model.count_params())
    except (ValueError, AttributeError):
        return {}
    trainable = sum(math.prod(int(d) for d in weight.shape) for weight in model.trainable_weights)
    return {"total_params": total, "trainable_params": trainable}
