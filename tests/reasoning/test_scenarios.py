"""Forum-style cases the public set does not contain: the knowledge base must generalise to them."""
from __future__ import annotations

import pytest

from assistant.reasoning.engine import diagnose
from tests.helpers import facts_from, shipped_kb

FLAT_LN10 = {"loss": [2.3041, 2.3027, 2.3026, 2.3026, 2.3026, 2.3026], "accuracy": [0.1] * 6}

SCENARIOS = [
    ("raw CIFAR pixels", "accuracy is stuck at 10% on CIFAR, loss 2.3026",
     FLAT_LN10, {"feature_min": 0, "feature_max": 255, "feature_mean": 120.7, "feature_std": 64.1,
                 "task": "multiclass_classification", "n_classes": 10},
     {"input_scaling": "none", "optimizer": "adam", "learning_rate": 0.001}, "unscaled_inputs"),
    ("softmax on one unit", "binary classifier accuracy stuck at 50%",
     {"loss": [0.0, 0.0, 0.0], "accuracy": [0.5, 0.5, 0.5]}, {"task": "binary_classification"},
     {"output_activation": "softmax", "output_units": 1, "loss": "binary_crossentropy"},
     "output_activation_mismatch"),
    ("SGD at lr 1", "getting nan loss after a few iterations",
     {"loss": [0.9, 3.5, float("nan"), float("nan")]}, {}, {"optimizer": "sgd", "learning_rate": 1.0},
     "learning_rate_too_high"),
    ("dropout 0.9", "training accuracy won't go above 40%",
     {"loss": [1.10, 1.09, 1.085, 1.084, 1.084, 1.083], "accuracy": [0.34, 0.36, 0.38, 0.39, 0.4, 0.4]},
     {"task": "multiclass_classification", "n_classes": 3}, {"dropout": 0.9, "l2": 0.0}, "regularization_too_strong"),
    ("labels sorted before validation_split", "val_accuracy is 0.0000 every epoch",
     {"loss": [1.0, 0.6, 0.3, 0.2], "accuracy": [0.6, 0.8, 0.95, 0.99], "val_accuracy": [0.0] * 4,
      "val_loss": [3.0, 4.0, 5.0, 6.0]}, {"sorted_by_label": True}, {"validation_split": 0.2}, "unshuffled_data"),
    ("accuracy on a house-price regression", "loss goes down but accuracy is always 0",
     {"loss": [5e4, 2e4, 9e3, 5e3], "accuracy": [0.0] * 4}, {"task": "regression"}, {"loss": "mse"},
     "metric_misconfiguration"),
    ("one-hot labels with the sparse loss", "loss is nan from the first epoch",
     {"loss": [float("nan")] * 3}, {"label_format": "one_hot", "task": "multiclass_classification"},
     {"loss": "sparse_categorical_crossentropy"}, "label_encoding_mismatch"),
]


@pytest.mark.parametrize("name, symptom, metrics, dataset, training, expected", SCENARIOS,
                         ids=[s[0] for s in SCENARIOS])
def test_expected_cause_leads(name, symptom, metrics, dataset, training, expected):
    facts = facts_from(symptom=symptom, metrics=metrics, dataset=dataset or None, training=training)
    ranked = [b.cause.id for b in diagnose(shipped_kb(), facts).beliefs]
    assert ranked[0] == expected, ranked[:3]


WORDS_ONLY = [
    ("val_loss starts increasing after epoch 5 while training loss keeps decreasing", {"overfitting"}),
    ("my CNN always predicts the same class", {"class_imbalance"}),
    ("I get nan loss after a few iterations", {"learning_rate_too_high", "exploding_gradients", "missing_values"}),
    ("loss is not decreasing at all, stays at 2.302 for 10 classes",
     {"learning_rate_too_low", "poor_initialization", "dead_relu"}),
]


@pytest.mark.parametrize("symptom, leaders", WORDS_ONLY, ids=[w[0][:30] for w in WORDS_ONLY])
def test_words_alone_point_at_the_right_family(symptom, leaders):
    facts = facts_from(symptom=symptom)
    diagnosis = diagnose(shipped_kb(), facts)
    assert diagnosis.beliefs[0].cause.id in leaders
    assert diagnosis.readings, "the reply should say what it read in the user's words"


def test_a_stated_loss_of_ln_k_counts_as_a_uniform_guess_without_a_history():
    facts = facts_from(symptom="loss stays at 2.302 every epoch")
    values = diagnose(shipped_kb(), facts).values
    assert values["loss_at_uniform"] is True and values["uniform_classes"] == 10
