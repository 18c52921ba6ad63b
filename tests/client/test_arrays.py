"""The dataset summary is computed from the arrays, locally; mismatched or unreadable arrays are named."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from assistant.client import InputError
from assistant.client.arrays import dataset_summary


def test_features():
    x = np.array([[0.0, 10.0], [1.0, np.nan], [0.0, 10.0], [3.0, 20.0]])
    summary = dataset_summary(x)
    assert summary == {"n_samples": 4, "n_features": 2, "missing_fraction": 0.125, "duplicate_fraction": 0.25,
                       "feature_min": 0.0, "feature_max": 20.0, "feature_mean": pytest.approx(44 / 7, abs=1e-6),
                       "feature_std": pytest.approx(np.nanstd(x), abs=1e-6)}


def test_images_count_their_pixels_as_features():
    assert dataset_summary(np.zeros((5, 28, 28, 1), dtype="uint8"))["n_features"] == 784


def test_integer_labels():
    y = np.array([0, 0, 0, 1, 1, 2])
    assert dataset_summary(y=y) == {"task": "multiclass_classification", "n_classes": 3,
                                    "class_counts": {"0": 3, "1": 2, "2": 1}, "label_format": "integer",
                                    "sorted_by_label": True}


def test_one_hot_labels_and_their_order():
    y = np.eye(2)[[0, 1, 0, 1]]
    assert dataset_summary(y=y) == {"task": "binary_classification", "n_classes": 2,
                                    "class_counts": {"0": 2, "1": 2}, "label_format": "one_hot",
                                    "sorted_by_label": False}


def test_other_labels():
    assert dataset_summary(y=pd.Series(["cat", "dog", "cat"]))["class_counts"] == {"cat": 2, "dog": 1}
    assert dataset_summary(y=np.array([0.5, 1.7, -3.2])) == {"task": "regression", "target_max": 3.2,
                                                             "target_std": round(float(np.std([0.5, 1.7, -3.2])), 6)}
    assert dataset_summary(y=np.arange(5000.0)) == {"task": "regression", "target_max": 4999.0,
                                                    "target_std": round(float(np.arange(5000.0).std()), 6)}
    assert dataset_summary(y=np.array([[1, 1], [0, 1]])) == {"label_format": "other"}  # multi-label


def test_mismatched_and_unreadable_arrays():
    with pytest.raises(InputError, match="x has 4 samples but y has 3"):
        dataset_summary(np.zeros((4, 2)), np.zeros(3))
    with pytest.raises(InputError, match="x: the features must be numbers"):
        dataset_summary(np.array([["red", "big"]]))
    with pytest.raises(InputError, match="y: it holds no samples"):
        dataset_summary(y=[])
