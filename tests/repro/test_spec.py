import dataclasses
import json

import pytest

from assistant.repro.spec import (
    PART_OF, Caps, Data, IncompleteFacts, Model, RunSpec, SpecError, Training, build, check_model_json,
    hidden_width, parameter_count, run_names, sample_data,
)
from tests.helpers import shipped_kb
from tests.repro.cases import TINY, model_json

NAMES = run_names(shipped_kb().keras)

FACTS = {**TINY["training"], **TINY["dataset"]}


def test_the_users_setup_becomes_a_spec():
    spec = build(NAMES, FACTS, metrics=["accuracy"])
    assert spec.model == Model(n_features=4, depth=1, width=10, hidden_activation="relu", output_units=3,
                               output_activation="softmax")
    assert parameter_count(spec.model) == FACTS["total_params"]
    assert (spec.training.optimizer, spec.training.learning_rate, spec.training.epochs) == ("adam", 5.0, 5)
    assert spec.training.metrics == ("accuracy",)
    assert spec.data.generator == "classification" and spec.data.class_shares == (1 / 3, 1 / 3, 1 / 3)
    assert spec.notes == ()


@pytest.mark.parametrize("total, depth, width", [(321, 1, 40), (15045, 3, 80), (802819, 4, 512)])
def test_hidden_width_solves_the_parameter_count(total, depth, width):
    features, outputs = {321: (6, 1), 15045: (20, 5), 802819: (25, 3)}[total]
    assert hidden_width(total, features, depth, outputs, batch_norm=False) == width


def test_missing_facts_are_named():
    with pytest.raises(IncompleteFacts) as refused:
        build(NAMES, {"optimizer": "adam", "task": "multiclass_classification"})
    assert refused.value.missing == ["loss", "n_features", "n_hidden_layers", "output_activation", "n_classes"]
    assert "n_features" in str(refused.value)


def test_unknowns_with_a_default_are_assumed_and_said():
    facts = {key: value for key, value in FACTS.items() if key not in ("batch_size", "learning_rate")}
    spec = build(NAMES, facts)
    assert (spec.training.batch_size, spec.training.learning_rate) == (32, 0.001)
    assert "assumed batch_size = 32 (Keras' default)" in spec.notes
    assert "assumed learning_rate = 0.001 (adam's default)" in spec.notes


@pytest.mark.parametrize("key, value", [("optimizer", "sgdw"), ("loss", "my_loss"), ("hidden_activation", "swishy"),
                                        ("kernel_initializer", "constant")])
def test_what_a_run_cannot_build_is_refused(key, value):
    with pytest.raises(SpecError, match=value):
        build(NAMES, {**FACTS, key: value})


def test_a_spec_over_the_caps_is_scaled_down_and_says_so():
    facts = {**FACTS, "n_samples": 50_000, "epochs": 100, "total_params": 5_000_000}
    spec = build(NAMES, facts, caps=Caps(samples=2000, epochs=20, params=100_000, steps=10_000))
    assert (spec.data.n_samples, spec.training.epochs) == (2000, 20)
    assert parameter_count(spec.model) <= 100_000
    assert "trained on 2,000 samples instead of 50,000" in spec.notes
    assert "20 epochs instead of 100" in spec.notes
    assert any(note.startswith("hidden layers of") for note in spec.notes)


def test_a_tiny_batch_gives_up_samples_first_then_epochs():
    spec = build(NAMES, {**FACTS, "batch_size": 1, "n_samples": 1000, "epochs": 10}, caps=Caps(steps=2000))
    steps = spec.training.epochs * spec.data.n_samples * (1 - spec.training.validation_split)
    assert steps <= 2000 and spec.data.n_samples < 1000 and spec.training.epochs == 10
    assert f"trained on {spec.data.n_samples} samples instead of 1,000, to keep the number of steps short" in spec.notes
    fewer_epochs = build(NAMES, {**FACTS, "batch_size": 1, "n_samples": 1000, "epochs": 20}, caps=Caps(steps=500))
    assert fewer_epochs.data.n_samples == 200 and fewer_epochs.training.epochs == 3
    assert "3 epochs instead of 20, to keep the number of steps short" in fewer_epochs.notes


def test_frozen_layers_follow_the_trainable_count():
    assert build(NAMES, {**FACTS, "trainable_params": 0}).model.frozen_layers == 2
    assert build(NAMES, {**FACTS, "trainable_params": 33}).model.frozen_layers == 1  # the first layer's 50 are frozen
    assert build(NAMES, FACTS).model.frozen_layers == 0


def test_labels_keep_the_users_coding():
    spec = build(NAMES, {**FACTS, "task": "binary_classification", "n_classes": 2, "class_counts": {"0": 300, "255": 300},
                  "n_features": 2, "output_units": 1, "output_activation": "sigmoid", "loss": "binary_crossentropy"})
    assert spec.data.labels == (0.0, 255.0) and spec.data.generator == "moons"
    assert build(NAMES, FACTS).data.labels == ()


@pytest.mark.parametrize("summary, scale", [
    ({"feature_min": -3.5, "feature_max": 3.2, "feature_std": 1.0, "feature_mean": 0.0}, "standard"),
    ({"feature_min": -1e6, "feature_max": 1e6, "feature_std": 35352.6, "feature_mean": 0.0}, "outliers"),
    ({"feature_min": -77301.4, "feature_max": 1.0e7, "feature_std": 2.7e6, "feature_mean": 1.1e6}, "wide"),
])
def test_the_feature_scale_is_read_from_the_summary(summary, scale):
    assert build(NAMES, {**FACTS, **summary}).data.scale == scale


def test_a_spec_survives_json_and_is_changed_by_setting_name():
    spec = build(NAMES, FACTS)
    again = RunSpec.from_json(json.loads(json.dumps(spec.to_json())))
    assert again == spec
    changed = spec.replace(learning_rate=0.001, width=4, sorted_by_label=True)
    assert (changed.training.learning_rate, changed.model.width, changed.data.sorted_by_label) == (0.001, 4, True)
    assert changed.get("learning_rate") == 0.001


def test_setting_names_are_unique_across_the_parts():
    assert len(PART_OF) == sum(len(dataclasses.fields(part)) for part in (Model, Data, Training))


@pytest.mark.parametrize("name", ["sequential", "functional"])
def test_a_plain_keras_model_json_is_accepted(name):
    assert check_model_json(NAMES, model_json(name)) == 4
    spec = build(NAMES, {key: FACTS[key] for key in ("optimizer", "loss", "task", "n_classes")}, model_json=model_json(name))
    assert spec.model.keras_json == model_json(name) and spec.model.n_features == 4


def _tampered(change) -> str:
    config = json.loads(model_json("sequential"))
    change(config["config"]["layers"])
    return json.dumps(config)


@pytest.mark.parametrize("text, named", [
    (model_json("lambda"), "Lambda"),
    (_tampered(lambda layers: layers[1].update(module="os", class_name="Dense")), "module os"),
    (_tampered(lambda layers: layers[1].update(module="keras_evil.layers")), "module keras_evil.layers"),
    (_tampered(lambda layers: layers[1].update(module="kerasx")), "module kerasx"),
    (_tampered(lambda layers: layers[1].update(registered_name="evil>Dense")), "custom object evil>Dense"),
    (_tampered(lambda layers: layers[1]["config"].update(activation="evil>act")), "activation 'evil>act'"),
    (_tampered(lambda layers: layers.pop(0)), "no InputLayer"),
    ('{"class_name": "Sequential", "config": {"layers": [{"class_name": "TFOpLambda"}]}}', "TFOpLambda"),
    ("not json", "not valid JSON"),
    ('[1, 2]', "Sequential or Functional"),
    ("x" * 600_000, "at most 512 KiB"),
])
def test_a_model_json_outside_the_allow_list_is_refused(text, named):
    with pytest.raises(SpecError, match=named):
        check_model_json(NAMES, text)


def test_a_data_sample_is_thinned_evenly_and_keeps_its_order():
    rows = "\n".join(f"{i},{i * 2},{'cat' if i < 50 else 'dog'}" for i in range(100))
    data = sample_data("a,b,label\n" + rows, Caps(samples=10))
    assert len(data["x"]) == len(data["y"]) == 10
    assert data["y"] == sorted(data["y"]) and set(data["y"]) == {0.0, 1.0}
    assert data["x"][0] == [0.0, 0.0] and data["x"][-1] == [99.0, 198.0]


def test_a_sample_without_numeric_features_is_refused():
    with pytest.raises(SpecError, match="no numeric feature"):
        sample_data("colour,label\nred,1\nblue,0\n", Caps())


REGRESSION = {**FACTS, "task": "regression", "loss": "mse", "output_activation": "linear", "output_units": 1,
              "class_counts": None, "n_classes": None}


@pytest.mark.parametrize("told, history, scale", [
    ({}, {}, 0.0),  # nothing tells: the generator's own
    ({"target_std": 42.0}, {"loss": [0.5]}, 42.0),
    ({"target_max": 300.0}, {}, 100.0),
    # Input outliers inflate only the training loss: the clean validation loss says unit-size targets.
    ({}, {"loss": [1.4e8, 3.5e5], "val_loss": [0.87, 0.81]}, 1.0),
    ({}, {"loss": [30587.0, 30452.0], "val_loss": [30600.0, "nan"]}, pytest.approx(174.5, abs=0.1)),
    ({"loss": "mae"}, {"loss": [900.0, 120.0]}, 120.0),
    ({"loss": "msle"}, {"loss": [9.0, 4.0]}, 0.0),  # its value says nothing plain about the targets' size
])
def test_regression_targets_are_as_large_as_the_users_losses_say(told, history, scale):
    spec = build(NAMES, {**REGRESSION, **told}, history=history)
    assert spec.data.target_scale == scale


def test_classification_targets_are_never_rescaled():
    assert build(NAMES, FACTS, history={"loss": [400.0]}).data.target_scale == 0.0
