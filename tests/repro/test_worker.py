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


def test_an_experiment_that_trains_what_another_trained_is_not_trained_again(monkeypatch):
    for setting in ("set_intra_op_parallelism_threads", "set_inter_op_parallelism_threads"):  # set once per process
        monkeypatch.setattr(worker.tf.config.threading, setting, lambda threads: None)
    tiny = SPEC.replace(epochs=2).to_json()
    experiments = [{"name": "baseline", "kind": "baseline", "title": "Your setup", "spec": tiny},
                   {"name": "fix:label_noise", "kind": "fix", "title": "Fix", "spec": {**tiny, "notes": ["other words"]}},
                   {"name": "fix:too_few_epochs", "kind": "fix", "title": "Longer",
                    "spec": SPEC.replace(epochs=3).to_json()}]
    sent = []
    worker.run_job({"experiments": experiments, "names": NAMES, "deadline": math.inf}, sent.append)
    results = {m["name"]: m for m in sent if m["event"] == "result"}
    assert results["fix:label_noise"]["same_as"] == "baseline" and results["fix:label_noise"]["seconds"] == 0.0
    assert results["fix:label_noise"]["history"] == results["baseline"]["history"]
    assert "same_as" not in results["fix:too_few_epochs"] and len(results["fix:too_few_epochs"]["history"]["loss"]) == 3


def test_assumed_faults_reach_the_model_and_the_data():
    import numpy as np

    dead = worker.build_model(SPEC.replace(bias_init=-10.0), NAMES)
    assert all((np.asarray(layer.bias) == -10.0).all() for layer in dead.layers[:-1])
    wide = SPEC.replace(n_features=400, width=400, depth=1)
    kernel = np.asarray(worker.build_model(wide.replace(init_gain=3.0), NAMES).layers[0].kernel)
    assert kernel.std() == pytest.approx(3 * math.sqrt(2 / 400), rel=0.1)  # three times He's scale

    def separable(spec) -> float:
        """How well a linear model tells the classes apart on validation rows."""
        from sklearn.linear_model import LogisticRegression

        x, y, x_val, y_val = worker.make_data(spec)
        return LogisticRegression().fit(x, y).score(x_val, y_val)

    assert separable(SPEC) > 0.9 and separable(SPEC.replace(class_sep=0.3)) < 0.7  # a weak signal


def test_regression_targets_take_the_scale_the_spec_gives():
    import numpy as np

    regression = build(NAMES, {**TINY["training"], **TINY["dataset"], "task": "regression", "loss": "mse",
                               "output_activation": "linear", "output_units": 1, "class_counts": None},
                       history={"loss": [9.0, 4.0]})
    _, y_train, _, y_val = worker.make_data(regression)
    assert np.concatenate([y_train, y_val]).std() == pytest.approx(2.0, rel=0.01)


def test_lanes_take_the_users_setup_first_then_the_longest():
    def experiment(name: str, kind: str, epochs: int) -> dict:
        return {"name": name, "kind": kind, "spec": SPEC.replace(epochs=epochs).to_json()}

    plan = [experiment("baseline", "baseline", 5), experiment("fix:a", "fix", 5),
            experiment("fix:too_few_epochs", "fix", 20), experiment("assume:b", "assumed", 5),
            experiment("check:c", "check", 8)]
    ordered = [e["name"] for e in sorted(plan, key=worker.lane_order)]
    assert ordered == ["baseline", "assume:b", "fix:too_few_epochs", "check:c", "fix:a"]
