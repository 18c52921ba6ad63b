"""What a fix achieved: the verdict's rule, and one cause's snippet run on its own fault."""
from __future__ import annotations

import importlib.util
import math
import sys

import numpy as np
import pytest

from tests.helpers import ROOT

pytestmark = pytest.mark.tf  # the sessions are Keras models

_spec = importlib.util.spec_from_file_location("fix_effect", ROOT / "benchmarks" / "fix_effect.py")
fix_effect = sys.modules.setdefault("fix_effect", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(fix_effect)
Effect = fix_effect.Effect


def verdict(before, after, seconds=None, same_loss=True, judge=None):
    return fix_effect.verdict(Effect(before, after, "", seconds, same_loss, judge))


def test_a_snippet_that_leaves_the_model_as_it_was_inspects():
    assert verdict({"loss": 0.5, "accuracy": 0.8}, None) == "inspects"


def test_accuracy_must_rise_a_point_or_hold_with_a_lower_loss_under_the_same_loss():
    before = {"loss": 0.5, "accuracy": 0.80}
    assert verdict(before, {"loss": 0.49, "accuracy": 0.82}) == "better"
    assert verdict(before, {"loss": 0.30, "accuracy": 0.79}) == "better"
    assert verdict(before, {"loss": 0.30, "accuracy": 0.79}, same_loss=False) == "not better"
    assert verdict(before, {"loss": 0.49, "accuracy": 0.80}) == "not better"
    assert verdict(before, {"loss": 0.30, "accuracy": 0.75}) == "not better"


def test_a_nan_run_made_finite_is_better_and_errors_are_judged_in_the_users_units():
    assert verdict({"loss": math.nan, "accuracy": 0.5}, {"loss": 0.4}) == "better"
    assert verdict({"mae": math.nan}, {"mae": 9e3}, judge="mae") == "better"
    assert verdict({"mae": 1e5}, {"mae": 9.8e4}, judge="mae") == "not better"


def test_speed_counts_only_at_the_same_accuracy():
    before = {"loss": 0.1, "accuracy": 0.95}
    assert verdict(before, {"loss": 0.1, "accuracy": 0.95}, seconds=(1.0, 0.3)) == "better"
    assert verdict(before, {"loss": 0.3, "accuracy": 0.85}, seconds=(1.0, 0.3)) == "not better"
    assert verdict(before, {"loss": 0.1, "accuracy": 0.95}, seconds=(1.0, 0.9)) == "not better"


def test_balanced_accuracy_is_the_mean_recall_over_classes():
    labels = np.array([0] * 9 + [1])
    always_zero = np.zeros((10, 1))
    assert fix_effect._balanced_accuracy(always_zero, labels) == 0.5
    assert fix_effect._balanced_accuracy(np.eye(2)[labels], labels) == 1.0


def test_the_dead_relu_fix_revives_a_run_whose_units_are_all_dead(monkeypatch):
    monkeypatch.setattr(fix_effect.snippets, "N_TRAIN", 200)
    monkeypatch.setattr(fix_effect.snippets, "N_VAL", 200)
    result = fix_effect.effect("dead_relu", epochs=20)
    assert result.before["accuracy"] < 0.6  # no unit passes a gradient: the run is stuck at chance
    assert fix_effect.verdict(result) == "better", result


def test_written_effects_quote_the_score_that_made_the_fix_better_and_keep_the_causes_not_run(kb_copy):
    from assistant.kb import load

    results = {
        "dead_relu": Effect({"loss": 0.69, "accuracy": 0.5}, {"loss": 0.05, "accuracy": 0.98}, "", None, True, None),
        "overfitting": Effect({"loss": 0.36, "accuracy": 0.93}, {"loss": 0.17, "accuracy": 0.935}, "", None, True, None),
        "outliers": Effect({"mae": math.nan}, {"mae": 0.113}, "", None, False, "mae"),
        "label_noise": Effect({"loss": 0.5, "accuracy": 0.8}, None, "", None, False, None),
        "model_too_complex": Effect({"loss": 0.1, "accuracy": 0.98}, {"loss": 0.2, "accuracy": 0.9}, "", None, True, None),
    }
    (kb_copy / "effects.yaml").write_text("says: 'x {score}'\neffects:\n  unshuffled_data: {score: accuracy, before: 0.1, after: 0.9}\n"
                                          "  model_too_complex: {score: accuracy, before: 0.1, after: 0.9}\n", encoding="utf-8")
    fix_effect.write(results, epochs=30, samples=400, path=kb_copy / "effects.yaml")
    effects = load(kb_copy).effects
    assert set(effects) == {"dead_relu", "overfitting", "outliers", "unshuffled_data"}  # no longer better: dropped
    assert effects["dead_relu"].endswith("took validation accuracy from 0.5 to 0.98.")
    assert "the validation loss from 0.36 to 0.17" in effects["overfitting"]  # accuracy moved by half a point
    assert "from NaN to 0.113" in effects["outliers"]
