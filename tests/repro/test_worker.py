"""The worker's own parts, in this process: what a run shares between its experiments, and when one stops early."""
from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from assistant.repro.spec import build, run_names
from tests.helpers import lazy_module, shipped_kb
from tests.repro.cases import TINY

pytestmark = pytest.mark.tf
worker = lazy_module("assistant.repro.worker")  # imports TensorFlow: collecting this module must not

NAMES = run_names(shipped_kb().keras)
SPEC = build(NAMES, {**TINY["training"], **TINY["dataset"]})


def test_experiments_that_train_on_the_same_data_share_its_arrays():
    data = worker.shared_data()
    first = data(SPEC)
    assert data(SPEC.replace(learning_rate=0.001, width=64)) is first  # a training or model change: same arrays
    standardized = data(SPEC.replace(standardize=True))
    assert standardized is not first and data(SPEC.replace(standardize=True)) is standardized
    assert all((a == b).all() for a, b in zip(first, worker.make_data(SPEC)))  # what make_data itself gives


def settled(baseline, epochs: int = 6, task: str = "multiclass_classification"):
    model = SimpleNamespace(stop_training=False)
    callback = worker.Settled(baseline, task, epochs)
    callback.set_model(model)
    return callback, model


def epochs_until_stopped(callback, model, logs: list[dict]) -> int | None:
    for epoch, values in enumerate(logs):
        callback.on_epoch_end(epoch, values)
        if model.stop_training:
            return epoch + 1
    return None


BASELINE = {"loss": [1.1, 1.0, 0.95, 0.9, 0.9, 0.9], "val_loss": [1.1, 1.0, 1.0, 1.0, 1.0, 1.0],
            "val_accuracy": [0.3, 0.35, 0.4, 0.4, 0.4, 0.4]}
GOOD = [{"loss": 0.8, "val_loss": 0.7, "val_accuracy": 0.6}] * 6


def test_an_experiment_whose_loss_is_no_longer_finite_stops_there():
    callback, model = settled(None)
    assert epochs_until_stopped(callback, model, [{"loss": 2.0}, {"loss": math.nan}, {"loss": 1.0}]) == 2


def test_a_fix_clearly_better_than_the_baseline_stops_after_half_its_epochs():
    callback, model = settled(BASELINE)
    assert epochs_until_stopped(callback, model, GOOD) == 3


def test_a_fix_no_better_than_the_baseline_trains_to_the_end():
    callback, model = settled(BASELINE)
    assert epochs_until_stopped(callback, model, [{"loss": 0.9, "val_loss": 1.0, "val_accuracy": 0.41}] * 6) is None


def test_against_a_baseline_that_diverged_a_fix_trains_to_the_end():
    """Better than NaN says nothing yet: the fix may only postpone the divergence, which the verdict must see."""
    callback, model = settled({**BASELINE, "loss": [1.0, math.inf, math.nan, math.nan, math.nan, math.nan]})
    assert epochs_until_stopped(callback, model, GOOD) is None
