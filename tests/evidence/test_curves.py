"""Curve facts: each sign detected on a real-looking history, cited with its epoch."""
from __future__ import annotations

import math

import pytest

from assistant.evidence.curves import curve_facts
from tests.helpers import shipped_kb
from assistant.evidence.metrics import parse_metrics


def facts_of(history: dict) -> dict:
    return {f.key: f for f in curve_facts(shipped_kb(), parse_metrics(history))}


def test_nan_loss_names_the_epoch():
    facts = facts_of({"loss": [2.1, 1.7, float("nan"), float("nan")]})
    assert facts["loss_is_nan"].value is True
    assert facts["nan_epoch"].value == 3
    assert facts["nan_epoch"].source == "epoch 3 of the history.history dict"
    assert facts["loss_is_nan"].note == "loss became nan at epoch 3"


def test_a_console_log_says_how_many_epochs_the_run_was_set_to():
    facts = {f.key: f for f in curve_facts(shipped_kb(), parse_metrics("Epoch 1/50\n10/10 - 1s - loss: 0.9\n"))}
    assert (facts["epochs_run"].value, facts["epochs_planned"].value) == (1, 50)
    assert "epochs_planned" not in facts_of({"loss": [0.9, 0.8]})


def test_loss_stuck_at_ln10_is_a_uniform_guess():
    facts = facts_of({"loss": [2.3031, 2.3027, 2.3026, 2.3026, 2.3026], "accuracy": [0.1] * 5})
    assert facts["loss_at_uniform"].value is True
    assert facts["uniform_classes"].value == 10
    assert "ln 10" in facts["loss_at_uniform"].note
    assert facts["loss_flat"].value is True
    assert facts["accuracy_constant"].value is True


def test_noise_around_a_converged_loss_is_not_an_oscillation():
    converged = facts_of({"loss": [0.1026, 4.70e-4, 5.74e-4, 6.32e-4, 5.36e-4, 4.24e-4, 4.82e-4]})
    assert "loss_oscillates" not in converged
    swinging = facts_of({"loss": [1.0, 0.8, 0.9, 0.7, 0.85, 0.6, 0.75]})
    assert swinging["loss_oscillates"].value is True


def test_identical_losses_are_constant_not_merely_flat():
    facts = facts_of({"loss": [0.984] * 6})
    assert facts["loss_constant"].value is True
    assert "loss_flat" not in facts


def test_falling_loss_is_neither_flat_nor_uniform():
    facts = facts_of({"loss": [1.2, 0.9, 0.7, 0.55, 0.45]})
    assert "loss_flat" not in facts and "loss_at_uniform" not in facts
    assert facts["loss_still_falling"].value is True
    assert facts["loss_change_fraction"].value == pytest.approx((1.2 - 0.45) / 1.2)


def test_validation_gap_opens_after_the_validation_minimum():
    loss = [0.65, 0.51, 0.44, 0.38, 0.33, 0.29, 0.25, 0.21]
    val = [0.63, 0.60, 0.61, 0.62, 0.64, 0.66, 0.68, 0.70]
    facts = facts_of({"loss": loss, "val_loss": val})
    assert facts["val_min_epoch"].value == 2
    assert facts["val_gap_growing"].value is True
    assert "epoch 2" in facts["val_gap_growing"].note


def test_a_single_noisy_validation_epoch_is_not_a_growing_gap():
    facts = facts_of({"loss": [5e5, 6e4, 1e4, 7e3, 3e3], "val_loss": [2e5, 3e4, 2e3, 8e2, 9e3]})
    assert "val_gap_growing" not in facts


def test_oscillating_loss():
    facts = facts_of({"loss": [1.0, 0.6, 0.9, 0.5, 0.95, 0.4, 0.9, 0.45]})
    assert facts["loss_oscillates"].value is True


def test_divergence_and_negative_and_zero_losses():
    assert facts_of({"loss": [0.7, 0.9, 3.0, 12.0]})["loss_diverges"].value is True
    assert facts_of({"loss": [-33.2, -56.5, -80.7]})["loss_negative"].value is True
    assert facts_of({"loss": [0.0, 0.0, 0.0]})["loss_zero"].value is True


def test_validation_better_than_training():
    facts = facts_of({"loss": [1.0, 0.9, 0.8, 0.7], "val_loss": [0.6, 0.5, 0.45, 0.4]})
    assert facts["val_better_than_train"].value is True


def test_metric_stuck_while_loss_falls():
    facts = facts_of({"loss": [22704.8, 13997.0, 2960.0, 911.3], "accuracy": [0.0] * 4})
    assert facts["metric_stuck_while_loss_falls"].value is True
    assert facts_of({"loss": [0.5, 0.3, 0.2], "accuracy": [0.701, 0.7, 0.703]})["metric_stuck_while_loss_falls"].value
    # an accuracy already at 100% has nowhere left to go
    assert "metric_stuck_while_loss_falls" not in facts_of({"loss": [0.0116, 1e-4, 5.7e-9], "accuracy": [1.0] * 3})


def test_learning_rate_drop_and_zero_recall():
    facts = facts_of({"loss": [0.5, 0.4, 0.35, 0.3], "lr": [0.01, 0.01, 0.001, 0.001],
                      "recall": [0.0, 0.0, 0.0, 0.0]})
    assert facts["lr_dropped"].value is True and facts["lr_dropped"].source.startswith("epoch 3")
    assert facts["recall_zero"].value is True


def test_console_log_provenance_names_the_pasted_log():
    log = "Epoch 1/2\n5/5 - 0s - loss: nan - accuracy: 0.5\nEpoch 2/2\n5/5 - 0s - loss: nan - accuracy: 0.5\n"
    fact = {f.key: f for f in curve_facts(shipped_kb(), parse_metrics(log))}["nan_epoch"]
    assert fact.value == 1 and "console log" in fact.source
    assert not math.isnan(fact.value)


# --- the curve reader emits only what it declares (assistant kb check relies on the declaration) --

from pathlib import Path  # noqa: E402

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from assistant.evidence.curves import PRODUCES  # noqa: E402

_SERIES = st.lists(st.floats(allow_nan=True, allow_infinity=True) | st.floats(-5, 5) | st.sampled_from([0.0, 2.302585]),
                   min_size=1, max_size=12)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["loss", "val_loss", "accuracy", "val_accuracy", "recall", "learning_rate"]),
                       _SERIES, min_size=1).filter(lambda h: len({len(v) for v in h.values()}) == 1))
def test_any_history_gives_only_the_declared_curve_facts(history):
    assert {f.key for f in curve_facts(shipped_kb(), parse_metrics(history))} <= PRODUCES


def test_the_real_logs_give_only_the_declared_curve_facts():
    from assistant.evidence.facts import EvidenceError

    read = 0
    for path in sorted((Path(__file__).parent / "data").iterdir()):
        try:
            history = parse_metrics(path.read_bytes(), filename=path.name, lenient=True)
        except EvidenceError:
            continue  # a file of the metrics tests that is meant to be refused
        assert {f.key for f in curve_facts(shipped_kb(), history)} <= PRODUCES, path.name
        read += 1
    assert read >= 5


def test_every_declared_curve_fact_is_a_curve_fact_of_the_knowledge_base():
    kb = shipped_kb()
    assert {name for name in PRODUCES if kb.facts.get(name, {}).get("kind") != "curve"} == set()
