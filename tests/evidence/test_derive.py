"""Derived facts combine what different inputs said."""
from __future__ import annotations

import pytest

from assistant.evidence.derive import derive, rederive
from tests.helpers import shipped_kb


def test_class_balance_ignores_empty_classes():
    out = derive(shipped_kb(), {"class_counts": {"a": 10, "b": 30, "c": 0}})
    assert out["imbalance_ratio"] == 3
    assert out["majority_fraction"] == 0.75


def test_accuracy_at_the_majority_share_is_flagged():
    out = derive(shipped_kb(), {"class_counts": {"0": 900, "1": 100}, "accuracy_last": 0.897, "task": "binary_classification"})
    assert out["accuracy_at_majority"] is True
    assert out["chance_accuracy"] == pytest.approx(0.9)


def test_steps_per_epoch_uses_the_validation_split():
    out = derive(shipped_kb(), {"n_samples": 1000, "validation_split": 0.25, "batch_size": 1000})
    assert out["train_samples"] == 750
    assert out["steps_per_epoch"] == 1


def test_updates_count_the_whole_run_with_keras_default_batch_where_none_was_given():
    out = derive(shipped_kb(), {"n_samples": 13, "epochs": 500})
    assert out["updates"] == 500 and out["few_updates"] is True  # 13 examples: one batch of 32 an epoch
    out = derive(shipped_kb(), {"n_samples": 60000, "epochs": 5, "batch_size": 128})
    assert out["updates"] == 5 * 469 and out["few_updates"] is False
    # a history of 2 epochs from a run set to 3 is mostly a piece of it: the run's own length counts
    out = derive(shipped_kb(), {"n_samples": 100, "epochs": 3, "epochs_run": 2})
    assert out["updates"] == 3 * 4 and out["log_excerpt"] is True
    out = derive(shipped_kb(), {"n_samples": 100, "epochs_planned": 2, "epochs_run": 2})
    assert out["updates"] == 2 * 4 and out["log_excerpt"] is False
    assert "updates" not in derive(shipped_kb(), {"n_samples": 100})


def test_a_loss_at_zero_with_poor_accuracy_has_vanished_and_one_near_perfect_has_not():
    assert derive(shipped_kb(), {"loss_last": 1.1921e-07, "accuracy_last": 0.29})["loss_vanished"] is True
    assert derive(shipped_kb(), {"loss_last": 1.1921e-07, "accuracy_last": 0.999})["loss_vanished"] is False
    assert derive(shipped_kb(), {"loss_last": 0.3, "symptom_accuracy": 0.29})["loss_vanished"] is False
    assert "loss_vanished" not in derive(shipped_kb(), {"loss_last": 1e-8})


def test_a_nan_the_user_reports_stands_in_until_a_training_loss_was_read():
    assert derive(shipped_kb(), {"symptom_loss_nan": True})["loss_is_nan"] is True
    # a log of validation or custom columns only cannot show the training loss's NaN either
    assert derive(shipped_kb(), {"symptom_loss_nan": True, "epochs_run": 6})["loss_is_nan"] is True
    assert "loss_is_nan" not in derive(shipped_kb(), {"symptom_loss_nan": True, "epochs_run": 6, "loss_first": 2.0})


def test_a_learning_rate_is_judged_against_the_one_its_optimizer_is_meant_for():
    assert derive(shipped_kb(), {"learning_rate": 0.001, "optimizer": "adadelta"})["learning_rate_ratio"] == 0.001
    assert derive(shipped_kb(), {"learning_rate": 0.001, "optimizer": "adam"})["learning_rate_ratio"] == 1
    assert derive(shipped_kb(), {"learning_rate": 0.1, "optimizer": "sgd"})["learning_rate_ratio"] == 10
    assert derive(shipped_kb(), {"learning_rate": 0.01})["learning_rate_ratio"] == 10  # Adam's rate when not said


def test_extreme_values_far_from_the_mean_are_measured_in_standard_deviations():
    out = derive(shipped_kb(), {"feature_min": -1e6, "feature_max": 1e6, "feature_mean": 0.0, "feature_std": 35352.6})
    assert out["feature_extreme_z"] == pytest.approx(28.29, rel=1e-3)


@pytest.mark.parametrize("values, fits", [
    ({"loss": "categorical_crossentropy", "output_units": 1, "task": "binary_classification"}, False),
    ({"loss": "mse", "output_units": 3, "task": "multiclass_classification"}, False),
    ({"loss": "binary_crossentropy", "output_units": 1, "task": "binary_classification"}, True),
    ({"loss": "sparse_categorical_crossentropy", "output_units": 4, "task": "multiclass_classification"}, True),
    # binary_crossentropy scores each softmax output as a yes/no of its own: wrong over many classes
    ({"loss": "binary_crossentropy", "output_activation": "softmax", "n_classes": 16,
      "task": "multiclass_classification"}, False),
    ({"loss": "binary_crossentropy", "output_activation": "softmax", "output_units": 2,
      "task": "binary_classification"}, True),
    # one sigmoid unit scores one yes/no: a multiclass task says there are more than two classes
    ({"loss": "binary_crossentropy", "output_units": 1, "task": "multiclass_classification"}, False),
])
def test_loss_fits_task(values, fits):
    assert derive(shipped_kb(), values)["loss_fits_task"] is fits


@pytest.mark.parametrize("values, classes", [
    ({"symptom_loss_value": 2.303}, 10),  # ln 10: a uniform guess over ten classes
    ({"symptom_loss_value": 2.303, "n_classes": 10}, 10),
    ({"symptom_loss_value": 6.0, "task": "binary_classification"}, None),  # ln 403 cannot be a guess over two
    ({"symptom_loss_value": 0.6931, "task": "binary_classification"}, 2),
])
def test_a_quoted_loss_is_a_uniform_guess_only_over_the_classes_there_are(values, classes):
    assert derive(shipped_kb(), values).get("uniform_classes") == classes


@pytest.mark.parametrize("values, fits", [
    ({"output_activation": "sigmoid", "task": "regression"}, False),
    ({"output_activation": "softmax", "output_units": 1, "task": "binary_classification"}, False),
    ({"output_activation": "softmax", "from_logits": True, "output_units": 3}, False),
    ({"output_activation": "linear", "task": "regression"}, True),
    # a cross-entropy loss on a linear output that is not told it gets logits, whether or not the task was said
    ({"output_activation": "linear", "loss": "binary_crossentropy", "from_logits": False}, False),
    ({"output_activation": "linear", "loss": "binary_crossentropy", "from_logits": True}, True),
    # a softmax on two classes: one unit always outputs 1, two are right; unknown until the units are
    ({"output_activation": "softmax", "task": "binary_classification"}, None),
    ({"output_activation": "softmax", "output_units": 2, "task": "binary_classification"}, True),
    ({"output_activation": "softmax", "task": "multiclass_classification"}, True),
])
def test_output_fits_task(values, fits):
    assert derive(shipped_kb(), values).get("output_fits_task") is fits


def test_labels_outside_zero_one_do_not_fit_binary_crossentropy():
    out = derive(shipped_kb(), {"loss": "binary_crossentropy", "class_counts": {"0": 300, "255": 300}})
    assert out["labels_fit_loss"] is False
    assert derive(shipped_kb(), {"loss": "binary_crossentropy", "class_counts": {"0": 3, "1": 3}})["labels_fit_loss"] is True


def test_known_values_are_never_overwritten():
    assert "imbalance_ratio" not in derive(shipped_kb(), {"class_counts": {"0": 1, "1": 9}, "imbalance_ratio": 2.0})


@pytest.mark.parametrize("known", [
    {},
    {"n_samples": 300, "batch_size": 32, "epochs": 5, "task": "multiclass_classification", "loss_last": 1e-8,
     "accuracy_last": 0.3, "optimizer": "adam", "learning_rate": 0.01, "output_units": 3},
    {"class_counts": {"1": 50, "2": 50}, "loss": "sparse_categorical_crossentropy", "symptom_loss_nan": True},
])
def test_working_out_again_only_what_an_answer_touches_gives_what_deriving_from_scratch_gives(known):
    kb = shipped_kb()
    values = {**known, **derive(kb, known)}
    for name, answers in kb.answers.items():
        for answer in answers:
            if name in known:
                continue
            fresh = {**known, name: answer}
            fresh.update(derive(kb, fresh))
            again, changed = rederive(kb, {**values, name: answer}, set(known) | {name}, {name})
            assert again == fresh, name
            assert changed >= {k for k in fresh.keys() | values.keys() if fresh.get(k) != values.get(k)}


@pytest.mark.parametrize("values, chance", [
    ({"loss_at_uniform": True, "uniform_classes": 10, "n_classes": 10}, True),
    ({"loss_at_uniform": True, "uniform_classes": 10}, True),  # K is all that is known of the classes
    ({"loss_at_uniform": True, "uniform_classes": 94306, "task": "binary_classification"}, False),
    ({"loss_at_uniform": False}, False),
])
def test_a_measured_loss_at_ln_k_is_a_guess_only_over_the_classes_there_are(values, chance):
    assert derive(shipped_kb(), values)["loss_at_chance"] is chance



@pytest.mark.parametrize("values, contradicts", [
    ({"loss_last": 0.03, "accuracy_last": 0.009}, True),  # a low loss cannot come with no right answers
    ({"loss_last": 0.03, "accuracy_last": 0.95}, False),
    ({"loss_last": 2.3, "accuracy_last": 0.1}, False),  # ln 10 and chance: a guess, consistent
    ({"symptom_loss_value": 0.17, "symptom_accuracy": 0.05}, True),
    ({"loss_last": 0.03}, None),
])
def test_a_low_loss_next_to_an_accuracy_near_zero_says_the_metric_measures_something_else(values, contradicts):
    assert derive(shipped_kb(), values).get("accuracy_contradicts_loss") is contradicts
