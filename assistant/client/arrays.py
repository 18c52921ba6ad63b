"""The dataset summary the API takes, computed here from the arrays ``fit`` trains on: only the summary travels."""
from __future__ import annotations

from typing import Any

import numpy as np

from .errors import InputError

#: Integer-valued targets with more distinct values than this are read as a regression target.
MAX_CLASSES = 1000


def dataset_summary(x: Any = None, y: Any = None) -> dict[str, Any]:
    """The contract's dataset facts for features ``x`` and labels ``y`` (either may be None)."""
    features = None if x is None else _array(x, "x")
    labels = None if y is None else _array(y, "y")
    if features is not None and labels is not None and len(features) != len(labels):
        raise InputError(f"x has {len(features)} samples but y has {len(labels)}: pass the arrays that fit() "
                         "trains on, row for row")
    summary: dict[str, Any] = {}
    if features is not None:
        summary.update(_features(features))
    if labels is not None:
        summary.update(_labels(labels))
    return summary


def _array(data: Any, name: str) -> np.ndarray:
    """A numpy array of the data, or InputError naming the argument."""
    try:
        array = np.asarray(data)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name}: cannot be read as an array ({exc}); pass a numpy array or a pandas object") from None
    if array.ndim == 0 or len(array) == 0:
        raise InputError(f"{name}: it holds no samples")
    return array


def _features(x: np.ndarray) -> dict[str, Any]:
    try:
        values = x.astype("float64").reshape(len(x), -1)
    except (TypeError, ValueError):
        raise InputError("x: the features must be numbers; encode text or categories before training") from None
    missing = np.isnan(values)
    finite = values[np.isfinite(values)]
    rows = np.ascontiguousarray(values)
    distinct = len(np.unique(rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))))) if rows.size else 0
    summary: dict[str, Any] = {
        "n_samples": len(x),
        "n_features": values.shape[1],
        "missing_fraction": round(float(missing.mean()), 6),
        "duplicate_fraction": round(1 - distinct / len(x), 6),
    }
    if finite.size:
        summary.update(feature_min=float(finite.min()), feature_max=float(finite.max()),
                       feature_mean=round(float(finite.mean()), 6), feature_std=round(float(finite.std()), 6))
    return summary


def _labels(y: np.ndarray) -> dict[str, Any]:
    """Task, classes and encoding, read from the labels themselves."""
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim == 2 and np.isin(y, (0, 1)).all() and (y.sum(axis=1) == 1).all():
        classes, label_format = y.argmax(axis=1), "one_hot"
    elif y.ndim == 1 and (y.dtype.kind in "iub" or (y.dtype.kind == "f" and np.isfinite(y).all()
                                                   and (y == np.round(y)).all())):
        classes, label_format = y, "integer"
    elif y.ndim == 1 and y.dtype.kind in "OUS":
        classes, label_format = y.astype(str), "other"
    else:
        return _regression(y) if y.ndim == 1 and y.dtype.kind == "f" else {"label_format": "other"}
    labels, counts = np.unique(classes, return_counts=True)
    if label_format == "integer" and len(labels) > MAX_CLASSES:
        return _regression(y)
    keys = [str(label) if label_format == "other" else str(int(label)) for label in labels]
    return {
        "task": "binary_classification" if len(labels) <= 2 else "multiclass_classification",
        "n_classes": int(y.shape[1]) if label_format == "one_hot" else len(labels),
        "class_counts": dict(zip(keys, counts.tolist())),
        "label_format": label_format,
        # Rows in one block per class, in any order: validation_split then cuts off whole classes.
        "sorted_by_label": bool(len(labels) > 1 and np.count_nonzero(classes[1:] != classes[:-1]) == len(labels) - 1),
    }


def _regression(y: np.ndarray) -> dict[str, Any]:
    """A regression target and its scale: targets in the thousands need scaling like inputs do."""
    values = y.astype("float64")
    finite = values[np.isfinite(values)]
    summary: dict[str, Any] = {"task": "regression"}
    if finite.size:
        summary.update(target_max=float(np.abs(finite).max()), target_std=round(float(finite.std()), 6))
    return summary
