"""Tests for reading the contract's dataset/training/facts mappings into typed facts."""
import json
import math

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from assistant.evidence import gather
from assistant.evidence.facts import EvidenceError, Fact
from assistant.evidence.inputs import coerce, contract_facts, unknown_keys
from tests.helpers import CASES, ROOT, shipped_kb

CONTRACT_KEYS = {
    "optimizer", "learning_rate", "momentum", "batch_size", "epochs", "loss", "from_logits",
    "output_activation", "output_units", "hidden_activation", "n_hidden_layers", "total_params",
    "trainable_params", "kernel_initializer", "dropout", "l2", "batch_norm", "input_scaling", "shuffle",
    "validation_split", "task", "n_samples", "n_features", "n_classes", "class_counts", "label_format",
    "feature_min", "feature_max", "feature_mean", "feature_std", "missing_fraction", "duplicate_fraction",
    "sorted_by_label", "custom_math", "target_max", "target_std", "same_preprocessing",
}


def values(mapping, field="training"):
    return {f.key: f.value for f in contract_facts(shipped_kb(), mapping, source="the training config you sent", field=field)}


def error(mapping, field="training") -> str:
    with pytest.raises(EvidenceError) as caught:
        contract_facts(shipped_kb(), mapping, source="s", field=field)
    return caught.value.message


def test_vocabulary_is_the_contract_and_follows_facts_yaml():
    assert set(shipped_kb().vocabulary) == CONTRACT_KEYS
    entries = yaml.safe_load((ROOT / "knowledge" / "facts.yaml").read_text())["facts"]
    for key, spec in shipped_kb().vocabulary.items():
        assert (spec.min, spec.max) == (entries[key].get("min"), entries[key].get("max")), key


@pytest.mark.parametrize("key, sent, expected", [
    ("learning_rate", "0.001", 0.001),
    ("learning_rate", " 1e-3 ", 0.001),
    ("learning_rate", np.float32(0.5), 0.5),
    ("batch_size", "32", 32),
    ("batch_size", 32.0, 32),
    ("epochs", np.int64(10), 10),
    ("shuffle", "yes", True),
    ("shuffle", "TRUE", True),
    ("from_logits", "no", False),
    ("batch_norm", 0, False),
    ("optimizer", "Adam", "adam"),
    ("optimizer", "tf.keras.optimizers.RMSprop", "rmsprop"),
    ("optimizer", "AdamW", "adamw"),
    ("loss", "SparseCategoricalCrossentropy", "sparse_categorical_crossentropy"),
    ("loss", "keras.losses.BinaryCrossentropy(from_logits=True)", "binary_crossentropy"),
    ("loss", "mean_squared_error", "mse"),
    ("loss", "MeanSquaredError", "mse"),
    ("loss", "binary cross-entropy", "binary_crossentropy"),
    ("loss", "FocalLoss", "focal_loss"),
    ("output_activation", "LeakyReLU", "leaky_relu"),
    ("output_activation", "None", "linear"),
    ("hidden_activation", "ReLU", "relu"),
    ("kernel_initializer", "HeNormal", "he_normal"),
    ("kernel_initializer", "Zeros", "zeros"),
    ("input_scaling", "StandardScaler", "standardize"),
    ("input_scaling", "min-max", "minmax"),
    ("task", "Binary", "binary_classification"),
    ("label_format", "one-hot", "one_hot"),
    ("class_counts", {0: 760, 1.0: "40"}, {"0": 760, "1": 40}),
    ("class_counts", [900, 100], {"0": 900, "1": 100}),
    ("class_counts", '{"cat": 3, "dog": 5}', {"cat": 3, "dog": 5}),
])
def test_values_are_read_into_their_canonical_form(key, sent, expected):
    assert coerce(shipped_kb(), key, sent) == expected
    assert type(coerce(shipped_kb(), key, sent)) is type(expected)


@pytest.mark.parametrize("key, sent, message", [
    ("learning_rate", "fast", 'training.learning_rate: expected a number of at least 0, got "fast"'),
    ("learning_rate", -0.1, "training.learning_rate: expected a number of at least 0, got -0.1"),
    ("learning_rate", float("nan"), "training.learning_rate: expected a number of at least 0, got NaN"),
    ("learning_rate", "nan", 'training.learning_rate: expected a number of at least 0, got "nan"'),
    ("learning_rate", "inf", 'training.learning_rate: expected a number of at least 0, got "inf"'),
    ("learning_rate", True, "training.learning_rate: expected a number of at least 0, got true"),
    ("batch_size", 0, "training.batch_size: expected a whole number of at least 1, got 0"),
    ("batch_size", 32.5, "training.batch_size: expected a whole number of at least 1, got 32.5"),
    ("dropout", 1.5, "training.dropout: expected a number between 0 and 1, got 1.5"),
    ("shuffle", "maybe", 'training.shuffle: expected true or false, got "maybe"'),
    ("task", "clustering", 'training.task: expected one of binary_classification, '
                           'multiclass_classification, regression, got "clustering"'),
    ("optimizer", 3, "training.optimizer: expected a name such as adam, adamw, sgd, rmsprop, adagrad, "
                     "adadelta, got 3"),
    ("class_counts", {"0": -5}, 'training.class_counts: expected an object of class label → number of '
                                'samples, got {"0": -5}'),
])
def test_bad_values_name_the_field_and_key(key, sent, message):
    assert error({key: sent}) == message
    with pytest.raises(EvidenceError) as caught:
        contract_facts(shipped_kb(), {key: sent}, source="s", field="training")
    assert caught.value.field == f"training.{key}"


@pytest.mark.parametrize("mapping", [
    {"n_samples": -3}, {"missing_fraction": 1.2}, {"duplicate_fraction": -0.1},
    {"validation_split": 2}, {"momentum": -0.5}, {"feature_std": -1}, {"class_counts": {"a": 2.5}},
])
def test_out_of_range_values_are_refused(mapping):
    error(mapping, field="dataset")


def test_out_of_order_pairs_are_refused():
    assert error({"feature_min": 5, "feature_max": 1}, "dataset") == \
        "dataset.feature_min: 5 is larger than feature_max 1"
    error({"total_params": 10, "trainable_params": 11})


def test_unknown_keys_are_ignored_and_listed():
    mapping = {"learning_rate": 0.01, "colour": "blue", "Batch Size": 8}
    assert values(mapping) == {"learning_rate": 0.01, "batch_size": 8}
    assert unknown_keys(shipped_kb(), mapping) == ["colour"]


def test_blank_values_count_as_absent():
    assert values({"learning_rate": None, "optimizer": "  ", "epochs": 3}) == {"epochs": 3}


def test_a_mapping_is_required():
    assert error(["learning_rate"]) == 'training: expected an object of fact keys, got ["learning_rate"]'
    with pytest.raises(EvidenceError):
        unknown_keys(shipped_kb(), "learning_rate=0.1", field="facts")


def test_facts_cite_their_source():
    facts = contract_facts(shipped_kb(), {"learning_rate": "0.5", "shuffle": False, "class_counts": {"0": 760, "1": 40}},
                           source="the training config you sent", field="training")
    assert facts == [
        Fact("learning_rate", 0.5, "the training config you sent",
             "learning rate 0.5 (from the training config you sent)"),
        Fact("shuffle", False, "the training config you sent", "shuffle: no (from the training config you sent)"),
        Fact("class_counts", {"0": 760, "1": 40}, "the training config you sent",
             "class counts 0: 760, 1: 40 (from the training config you sent)"),
    ]


@pytest.mark.skipif(CASES is None, reason="shared/cases is not checked out")
def test_every_public_case_reads_cleanly():
    for path in sorted(CASES.glob("*.json")):
        case = json.loads(path.read_text())
        for field in ("dataset", "training"):
            sent = case["request"].get(field) or {}
            assert values(sent, field) == sent, path.name
        assert values(case["facts"], "facts") == case["facts"], path.name


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
    | st.sampled_from(["nan", "inf", "-inf", "1e-3", "adam", "yes", "", "0", "1.5"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
KEYS = st.sampled_from(sorted(CONTRACT_KEYS)) | st.text(max_size=12)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(KEYS, JSON_VALUES, max_size=6) | JSON_VALUES)
def test_any_mapping_gives_facts_or_an_evidence_error(mapping):
    try:
        facts = contract_facts(shipped_kb(), mapping, source="s", field="training")
    except EvidenceError as caught:
        assert caught.message.startswith("training")
        return
    for fact in facts:
        assert fact.key in CONTRACT_KEYS
        assert not (isinstance(fact.value, float) and not math.isfinite(fact.value))
    unknown_keys(shipped_kb(), mapping)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(k for k, s in shipped_kb().vocabulary.items() if s.type == "number")),
       st.floats(min_value=0, max_value=1))
def test_numbers_read_the_same_as_text(key, number):
    assert coerce(shipped_kb(), key, str(number)) == coerce(shipped_kb(), key, number)


def test_the_default_initializer_is_glorot_uniform():
    # "default" is what most people can say about their initializer: Keras's Dense and Conv layers use glorot_uniform
    facts = gather(shipped_kb(), facts={"kernel_initializer": "default"}).facts
    assert [(f.key, f.value) for f in facts] == [("kernel_initializer", "glorot_uniform")]
