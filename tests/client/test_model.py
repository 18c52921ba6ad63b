"""A live Keras model's training facts, read off the object; anything else is refused by name."""
from __future__ import annotations

import pytest

from assistant.client import InputError
from assistant.client.model import training_facts
from tests.helpers import lazy_module

pytestmark = pytest.mark.tf
keras = lazy_module("keras")  # collecting this module must not load TensorFlow


def test_a_compiled_sequential_model():
    model = keras.Sequential([
        keras.Input((4,)),
        keras.layers.Dense(8, activation="relu", kernel_initializer="he_normal",
                           kernel_regularizer=keras.regularizers.L2(0.01)),
        keras.layers.Dropout(0.3),
        keras.layers.Dense(8, kernel_initializer="he_normal"),
        keras.layers.BatchNormalization(),
        keras.layers.Activation("relu"),
        keras.layers.Dense(3, activation="softmax"),
    ])
    model.layers[0].trainable = False
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.05, momentum=0.9),
                  loss=keras.losses.SparseCategoricalCrossentropy(), metrics=["accuracy"])
    assert training_facts(model) == {
        "optimizer": "sgd", "learning_rate": 0.05, "momentum": 0.9,
        "loss": "sparse_categorical_crossentropy", "from_logits": False,
        "output_units": 3, "output_activation": "softmax", "n_hidden_layers": 2, "hidden_activation": "relu",
        "kernel_initializer": "he_normal", "dropout": 0.3, "l2": 0.01, "batch_norm": True,
        "total_params": model.count_params(), "trainable_params": model.count_params() - (4 * 8 + 8) - 2 * 8,
    }


def test_logits_and_a_frozen_base_inside_a_functional_model():
    base = keras.Sequential([keras.Input((4,)), keras.layers.Dense(5, activation="tanh")])
    base.trainable = False
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2)(base(inputs)))
    model.compile(optimizer="adam", loss=keras.losses.CategoricalCrossentropy(from_logits=True))
    facts = training_facts(model)
    assert facts["optimizer"] == "adam" and facts["learning_rate"] == 0.001
    assert facts["loss"] == "categorical_crossentropy" and facts["from_logits"] is True
    assert (facts["output_units"], facts["output_activation"]) == (2, "linear")
    assert (facts["n_hidden_layers"], facts["hidden_activation"]) == (1, "tanh")
    assert (facts["total_params"], facts["trainable_params"]) == (25 + 12, 12)


def test_a_model_not_yet_compiled_or_built():
    facts = training_facts(keras.Sequential([keras.layers.Dense(1, activation="sigmoid")]))
    assert facts == {"output_units": 1, "output_activation": "sigmoid", "n_hidden_layers": 0,
                     "kernel_initializer": "glorot_uniform", "dropout": 0.0, "l2": 0.0, "batch_norm": False}


@pytest.mark.parametrize(("model", "says"), [
    (lambda: "model.keras", "expected a Keras model, got str"),
    (lambda: {"layers": []}, "expected a Keras model, got dict"),
    (lambda: keras.Sequential(), "it has no layers yet"),  # built by the test: collection loads no Keras
], ids=["str", "dict", "empty-sequential"])
def test_what_is_not_a_readable_model(model, says):
    with pytest.raises(InputError, match=says):
        training_facts(model())
