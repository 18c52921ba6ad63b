"""The worker's own parts, in this process: what a run shares between its experiments, and when one stops early."""
from __future__ import annotations

import math

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


def test_an_experiment_stops_at_a_loss_that_is_no_longer_finite():
    diverging = SPEC.replace(optimizer="sgd", learning_rate=1e6, epochs=8)
    result = worker.run_experiment({"name": "baseline", "spec": diverging.to_json()}, NAMES, lambda message: None)
    loss = result["history"]["loss"]
    assert len(loss) < 8 and not math.isfinite(loss[-1]) and all(map(math.isfinite, loss[:-1]))
