"""Facts that follow from other facts: recomputed whenever the known facts change.

They combine what different inputs told us (class counts with an accuracy curve, batch size
with the sample count), so they cannot be computed by any one parser.
"""
from __future__ import annotations

import math
from typing import Any, Callable

from .curves import uniform_classes

CROSS_ENTROPIES = {"binary_crossentropy", "categorical_crossentropy", "sparse_categorical_crossentropy",
                   "binary_focal_crossentropy", "categorical_focal_crossentropy"}
REGRESSION_LOSSES = {"mse", "mae", "mean_squared_error", "mean_absolute_error", "huber", "log_cosh",
                     "mean_squared_logarithmic_error", "msle", "mape"}
SQUASHING = {"sigmoid", "softmax", "tanh"}
#: Accuracy within this distance of the majority share is "no better than always guessing it".
MAJORITY_TOLERANCE = 0.015


def _classes(v: dict[str, Any]) -> int | None:
    counts = v.get("class_counts")
    if isinstance(counts, dict) and counts:
        return len(counts)
    if isinstance(v.get("n_classes"), int):
        return v["n_classes"]
    if v.get("task") == "binary_classification":
        return 2
    return None


def _class_balance(v: dict[str, Any]) -> dict[str, Any]:
    counts = v.get("class_counts")
    present = [n for n in counts.values() if n > 0] if isinstance(counts, dict) else []
    if not present:
        return {}
    return {"majority_fraction": max(present) / sum(present), "imbalance_ratio": max(present) / min(present)}


def _feature_scale(v: dict[str, Any]) -> dict[str, Any]:
    lo, hi, mean, std = (v.get(k) for k in ("feature_min", "feature_max", "feature_mean", "feature_std"))
    out: dict[str, Any] = {}
    if lo is not None and hi is not None:
        out["feature_range"] = hi - lo
    if None not in (lo, hi, mean, std) and std > 0:
        out["feature_extreme_z"] = max(abs(hi - mean), abs(lo - mean)) / std
    return out


def _training_volume(v: dict[str, Any]) -> dict[str, Any]:
    n = v.get("n_samples")
    if n is None:
        return {}
    train = n * (1 - (v.get("validation_split") or 0.0))
    out: dict[str, Any] = {"train_samples": train}
    if v.get("batch_size"):
        out["steps_per_epoch"] = max(1, math.ceil(train / v["batch_size"]))
    k = _classes(v)
    if k and v.get("task") != "regression":
        out["samples_per_class"] = train / k
    if v.get("trainable_params") is not None and train > 0:
        out["params_per_sample"] = v["trainable_params"] / train
    return out


def _trainable_share(v: dict[str, Any]) -> dict[str, Any]:
    total, trainable = v.get("total_params"), v.get("trainable_params")
    return {"trainable_params_share": trainable / total} if total and trainable is not None else {}


def _accuracy_level(v: dict[str, Any]) -> dict[str, Any]:
    k = _classes(v)
    majority = _class_balance(v).get("majority_fraction")
    chance = majority if majority is not None else (1 / k if k else None)
    if chance is None:
        return {}
    out: dict[str, Any] = {"chance_accuracy": chance}
    acc = v.get("accuracy_last", v.get("symptom_accuracy"))
    if acc is not None:
        out["accuracy_at_chance"] = acc <= chance + MAJORITY_TOLERANCE
        if majority is not None and k and majority > 1 / k + 0.1:
            out["accuracy_at_majority"] = abs(acc - majority) <= MAJORITY_TOLERANCE
    return out


def _accuracy_gap(v: dict[str, Any]) -> dict[str, Any]:
    train = v.get("accuracy_max", v.get("symptom_train_accuracy"))
    val = v.get("val_accuracy_max", v.get("symptom_val_accuracy"))
    return {} if train is None or val is None else {"accuracy_gap": train - val}


def _loss_fits_task(v: dict[str, Any]) -> dict[str, Any]:
    loss, task, units = v.get("loss"), v.get("task"), v.get("output_units")
    if loss is None:
        return {}
    k = _classes(v)
    misfits = [
        task == "regression" and loss in CROSS_ENTROPIES,
        task in ("binary_classification", "multiclass_classification") and loss in REGRESSION_LOSSES,
        loss == "categorical_crossentropy" and units == 1,
        loss == "binary_crossentropy" and task == "multiclass_classification" and (units or 0) > 1
        and v.get("label_format") != "one_hot",
        loss == "binary_crossentropy" and k is not None and k > 2 and units == 1,
    ]
    if task is None and units is None:
        return {}
    return {"loss_fits_task": not any(misfits)}


def _output_fits_task(v: dict[str, Any]) -> dict[str, Any]:
    act, task, units, loss = (v.get(k) for k in ("output_activation", "task", "output_units", "loss"))
    if act is None:
        return {}
    logits = v.get("from_logits")
    misfits = [
        task == "regression" and act in SQUASHING | {"relu"},
        act == "softmax" and units == 1,
        task in ("binary_classification", "multiclass_classification") and act in ("relu", "linear", None)
        and logits is False and loss in CROSS_ENTROPIES,
        logits is True and act in ("softmax", "sigmoid"),
        task == "multiclass_classification" and act == "sigmoid" and loss in CROSS_ENTROPIES - {"binary_crossentropy"},
    ]
    return {"output_fits_task": not any(misfits)}


def _labels_fit_loss(v: dict[str, Any]) -> dict[str, Any]:
    loss, fmt, counts = v.get("loss"), v.get("label_format"), v.get("class_counts")
    checks: list[bool] = []
    if loss and fmt:
        checks.append(not (loss == "sparse_categorical_crossentropy" and fmt == "one_hot"))
        checks.append(not (loss == "categorical_crossentropy" and fmt == "integer"
                           and (v.get("output_units") or 0) > 1))
    if isinstance(counts, dict) and counts and loss in CROSS_ENTROPIES:
        try:
            labels = sorted(float(k) for k in counts)
        except ValueError:
            labels = []
        if labels:
            top = 1 if loss == "binary_crossentropy" else len(counts) - 1
            checks.append(labels[0] >= 0 and labels[-1] <= top)
    return {"labels_fit_loss": all(checks)} if checks else {}


#: Signs the user describes in words, standing in for the measurements when no history was sent.
SAID_FOR_MEASURED = {
    "symptom_loss_nan": "loss_is_nan", "symptom_loss_flat": "loss_flat", "symptom_val_worse": "val_gap_growing",
    "symptom_jumpy": "loss_oscillates", "symptom_negative_loss": "loss_negative", "symptom_zero_loss": "loss_zero",
    "symptom_constant_metrics": "loss_constant",
}


def _said_curves(v: dict[str, Any]) -> dict[str, Any]:
    """Without a history, what the user says they saw is the best measurement there is."""
    if v.get("epochs_run") is not None:
        return {}
    out: dict[str, Any] = {measured: True for said, measured in SAID_FOR_MEASURED.items() if v.get(said) is True}
    stated = v.get("symptom_loss_value")
    k = uniform_classes(stated) if isinstance(stated, (int, float)) else None
    if k is not None:
        out.update(loss_at_uniform=True, uniform_classes=k)
    return out


DERIVATIONS: tuple[Callable[[dict[str, Any]], dict[str, Any]], ...] = (
    _said_curves, _class_balance, _feature_scale, _training_volume, _trainable_share, _accuracy_level, _accuracy_gap,
    _loss_fits_task, _output_fits_task, _labels_fit_loss,
)


def derive(values: dict[str, Any]) -> dict[str, Any]:
    """Every derived fact that the known values determine (known values themselves win)."""
    out: dict[str, Any] = {}
    for rule in DERIVATIONS:
        for key, value in rule(values).items():
            if key not in values:
                out[key] = value
    return out
