"""Tests for summarising a raw CSV data sample into the contract's dataset facts."""
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import make_classification, make_regression
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from assistant.evidence.facts import EvidenceError
from assistant.evidence.inputs import contract_facts
from assistant.evidence.sample import summarize_sample
from tests.helpers import shipped_kb


def csv(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False)


def classification(n=800, weights=(0.95,), scaler=None, label="target"):
    x, y = make_classification(n_samples=n, n_features=4, n_informative=2, weights=list(weights), random_state=0)
    if scaler is not None:
        x = scaler.fit_transform(x)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(4)])
    frame[label] = y
    return frame


def error(text, **kwargs) -> str:
    with pytest.raises(EvidenceError) as caught:
        summarize_sample(text, **kwargs)
    assert caught.value.field == "sample"
    return caught.value.message


def test_an_imbalanced_binary_sample():
    summary = summarize_sample(csv(classification(scaler=StandardScaler())))
    counts = summary.pop("class_counts")
    assert sum(counts.values()) == 800 and counts["1"] < 60
    assert summary == {
        "n_samples": 800, "task": "binary_classification", "n_classes": 2, "label_format": "integer",
        "sorted_by_label": False, "n_features": 4, "missing_fraction": 0.0,
        "feature_min": pytest.approx(summary["feature_min"]), "feature_max": pytest.approx(summary["feature_max"]),
        "feature_mean": pytest.approx(0, abs=1e-9), "feature_std": pytest.approx(1),
        "input_scaling": "standardize", "duplicate_fraction": 0.0,
    }


def test_rows_sorted_by_label_are_noticed():
    frame = classification(weights=(0.5,)).sort_values("target")
    assert summarize_sample(csv(frame))["sorted_by_label"] is True


@pytest.mark.parametrize("scaler, expected", [(MinMaxScaler(), "minmax"), (None, "none")])
def test_input_scaling_is_guessed(scaler, expected):
    assert summarize_sample(csv(classification(scaler=scaler)))["input_scaling"] == expected


def test_indicator_columns_do_not_hide_standardized_features():
    frame = classification(scaler=StandardScaler())
    frame.insert(0, "is_new", np.arange(800) % 2)
    assert summarize_sample(csv(frame))["input_scaling"] == "standardize"


def test_a_regression_sample():
    x, y = make_regression(n_samples=300, n_features=3, random_state=0)
    frame = pd.DataFrame(x, columns=["a", "b", "c"]).assign(price=y * 1000)
    summary = summarize_sample(csv(frame))
    assert summary["task"] == "regression"
    assert not {"n_classes", "class_counts", "label_format"} & set(summary)
    assert summary["sorted_by_label"] is False
    assert summarize_sample(csv(frame.sort_values("price")))["sorted_by_label"] is True


def test_many_distinct_integer_targets_are_a_regression():
    frame = pd.DataFrame({"x": range(200), "age": np.random.default_rng(0).integers(0, 90, 200) * 3 + 1})
    assert summarize_sample(csv(frame))["task"] == "regression"


def test_the_label_column_is_found_by_argument_name_or_position():
    frame = pd.DataFrame({"y": [0, 1, 0, 1], "a": [1.0, 2.0, 3.0, 4.0], "z": [5, 5, 6, 6]})
    assert summarize_sample(csv(frame))["class_counts"] == {"0": 2, "1": 2}
    assert summarize_sample(csv(frame), label="z")["class_counts"] == {"5": 2, "6": 2}
    assert summarize_sample(csv(frame.drop(columns="y")))["class_counts"] == {"5": 2, "6": 2}
    assert error(csv(frame), label="species") == 'the data sample has no column "species" (columns: y, a, z)'


def test_one_hot_label_columns():
    frame = pd.DataFrame({"a": [0.1, 0.5, 0.9, 0.2], "label_0": [1, 0, 0, 1], "label_1": [0, 1, 0, 0],
                          "label_2": [0, 0, 1, 0]})
    summary = summarize_sample(csv(frame))
    assert (summary["task"], summary["label_format"], summary["n_features"]) == \
        ("multiclass_classification", "one_hot", 1)
    assert summary["class_counts"] == {"0": 2, "1": 1, "2": 1}


@pytest.mark.parametrize("labels, expected", [(["cat", "dog", "dog", "cat"], "other"), ([1, 2, 2, 1], "other"),
                                               ([0, 1, 1, 0], "integer"), ([True, False, False, True], "integer")])
def test_label_format(labels, expected):
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "label": labels})
    assert summarize_sample(csv(frame))["label_format"] == expected


def test_a_headerless_semicolon_sample_with_gaps_and_duplicates():
    text = "1;2;0\n3;4;1\n3;4;1\n;inf;0\n"
    summary = summarize_sample(text.encode("utf-8-sig"))
    assert summary["n_samples"] == 4
    assert summary["n_features"] == 2
    assert summary["missing_fraction"] == 0.25
    assert summary["duplicate_fraction"] == 0.25
    assert (summary["feature_min"], summary["feature_max"]) == (1.0, 4.0)
    assert "sorted_by_label" not in summary  # four rows cannot show an order


@pytest.mark.parametrize("text, message", [
    ("a,b,c\n1,2,3\n4,5,6,7\n", "line 3 of the data sample has 4 fields, but the header has 3"),
    ('a,b\n1,2\n3,"4\n5,6\n', "the quote opened on line 3 of the data sample is never closed"),
    ("", "the data sample is empty"),
    ("a,b,label\n", "the data sample has a header but no rows"),
    ("label\n0\n1\n", "the data sample has a label column but no feature columns"),
    ("a,label\n1,\n2,\n", "the label column of the data sample is empty"),
])
def test_bad_samples_are_explained(text, message):
    assert error(text) == message


def test_oversized_samples_are_refused():
    text = "a,label\n" + "1,0\n" * 11
    assert error(text, max_rows=10) == \
        "the data sample has more than 10 rows; send a random subset of at most 10"
    assert summarize_sample(text, max_rows=11)["n_samples"] == 11


def test_summaries_are_valid_contract_facts():
    for frame in (classification(), classification(scaler=MinMaxScaler(), label="label")):
        facts = contract_facts(shipped_kb(), summarize_sample(csv(frame)), source="your data sample", field="sample")
        assert {f.key for f in facts} >= {"task", "n_samples", "class_counts", "input_scaling"}


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("abc01,.;-\n\"x e5")), max_size=80)
       | st.binary(max_size=60))
def test_any_text_gives_a_summary_or_an_evidence_error(text):
    try:
        summary = summarize_sample(text)
    except EvidenceError:
        return
    contract_facts(shipped_kb(), summary, source="your data sample", field="sample")


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.floats(-1e6, 1e6) | st.none(), st.integers(-3, 3), st.integers(0, 2)),
                min_size=1, max_size=30))
def test_any_numeric_table_gives_valid_contract_facts(rows):
    frame = pd.DataFrame(rows, columns=["x", "k", "label"])
    contract_facts(shipped_kb(), summarize_sample(csv(frame)), source="your data sample", field="sample")


def test_a_row_longer_than_the_header_is_refused_not_truncated():
    with pytest.raises(EvidenceError, match="more fields than the header"):
        summarize_sample(";\n;;;0")
