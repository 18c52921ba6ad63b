"""Tests for reading training histories in every format users send."""
import json
import math
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assistant.evidence.facts import EvidenceError
from assistant.evidence.metrics import History, parse_metrics
from tests.helpers import CASES

DATA = Path(__file__).parent / "data"


def read(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


def keras3_bar(step: int, steps: int, timing: str, entries: str) -> str:
    """One progress line as Keras 3's Progbar prints it to a terminal (bold counter, coloured bar)."""
    done = 20 * step // steps
    return (
        f"\x1b[1m{step:{len(str(steps))}d}/{steps}\x1b[0m "
        f"\x1b[32m{'━' * done}\x1b[0m\x1b[37m{'━' * (20 - done)}\x1b[0m"
        f" \x1b[1m{timing}\x1b[0m - {entries}"
    )


def keras3_epoch(epoch: int, epochs: int, *lines: str) -> str:
    """An epoch as captured from a terminal: each redraw erases the last with backspaces and a carriage return."""
    return f"Epoch {epoch}/{epochs}\n" + "".join("\b" * 96 + "\r" + line for line in lines) + "\n"


def value(history: History, epoch: int, name: str) -> float | None:
    """A metric's value at one epoch; None when it was not reported."""
    return history.columns[name][history.epochs.index(epoch)]


def row(history: History, epoch: int) -> list[float | None]:
    """One epoch's values, in column order."""
    return [value(history, epoch, name) for name in history.columns]


def assert_error(raw, *fragments: str) -> None:
    with pytest.raises(EvidenceError) as caught:
        parse_metrics(raw)
    assert caught.value.field == "metrics"
    for fragment in fragments:
        assert fragment in caught.value.message


# --- CSVLogger --------------------------------------------------------------

CSVLOGGER = (
    "epoch,accuracy,learning_rate,loss,val_accuracy,val_loss\n"
    "0,0.5012,0.001,0.6931,NA,NA\n"
    "1,0.5100,0.001,nan,0.4950,0.6932\n"
    "2,0.5200,1e-04,inf,0.5000,-inf\n"
)


def test_csvlogger_text():
    history = parse_metrics(CSVLOGGER)
    assert history.format == "csvlogger"
    assert history.epochs == [1, 2, 3]
    assert list(history.columns) == ["accuracy", "learning_rate", "loss", "val_accuracy", "val_loss"]
    assert all(isinstance(value, float) for values in history.columns.values() for value in values if value)
    assert value(history, 1, "loss") == 0.6931
    assert value(history, 2, "val_loss") == 0.6932
    assert value(history, 3, "learning_rate") == 0.0001
    assert history.where(3) == "epoch 3 of the uploaded CSVLogger file"


def test_csvlogger_na_cells_are_not_present_but_reported_nan_is():
    history = parse_metrics(CSVLOGGER)
    assert value(history, 1, "val_loss") is None
    assert math.isnan(value(history, 2, "loss"))
    assert value(history, 3, "loss") == math.inf
    assert value(history, 3, "val_loss") == -math.inf
    assert None not in row(history, 3)


def test_csvlogger_bytes_with_bom_and_crlf():
    history = parse_metrics(CSVLOGGER.replace("\n", "\r\n").encode("utf-8-sig"), filename="training.log")
    assert history.format == "csvlogger"
    assert list(history.columns)[0] == "accuracy"
    assert value(history, 2, "val_loss") == 0.6932


def test_csv_old_names_and_pandas_index_column():
    # pd.DataFrame(history.history).to_csv() writes an unnamed index column.
    history = parse_metrics(",loss,acc,val_loss,val_acc,lr\n0,0.7,0.5,0.71,0.48,0.01\n1,0.6,0.6,0.65,0.55,0.01\n")
    assert list(history.columns) == ["loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"]
    assert value(history, 2, "val_accuracy") == 0.55


def test_repeated_epochs_keep_the_last_reported_value():
    # CSVLogger(append=True) after a resumed fit() repeats an epoch.
    history = parse_metrics("epoch,loss\n0,0.9\n1,0.8\n1,0.7\n2,0.6\n")
    assert history.columns["loss"] == [0.9, 0.7, 0.6]


# --- console output ---------------------------------------------------------


def test_keras3_terminal_capture_with_ansi_codes_and_redraws():
    log = keras3_epoch(
        1, 2,
        keras3_bar(1, 25, "7s", "310ms/step - accuracy: 0.4688 - loss: 0.6950"),
        keras3_bar(12, 25, "0s", "5ms/step - accuracy: 0.4901 - loss: 0.6940"),
        keras3_bar(25, 25, "0s", "5ms/step - accuracy: 0.5009 - loss: 0.6933"),
        keras3_bar(25, 25, "1s", "12ms/step - accuracy: 0.5012 - loss: 0.6931 - val_accuracy: 0.4950 - val_loss: 0.6932"),
    ) + keras3_epoch(
        2, 2,
        keras3_bar(1, 25, "0s", "6ms/step - accuracy: 0.5312 - loss: nan"),
        keras3_bar(25, 25, "0s", "4ms/step - accuracy: 0.5100 - loss: nan - val_accuracy: 0.5000 - val_loss: nan"),
    )
    history = parse_metrics(log)
    assert history.format == "console"
    assert list(history.columns) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert row(history, 1) == [0.5012, 0.6931, 0.4950, 0.6932]
    assert math.isnan(value(history, 2, "loss"))
    assert history.where(2) == "epoch 2 of the pasted console log"


def test_keras3_jupyter_paste_without_validation():
    log = (
        "Epoch 1/2\n"
        "\x1b[1m32/32\x1b[0m \x1b[32m━━━━━━━━━━━━━━━━━━━━\x1b[0m\x1b[37m\x1b[0m \x1b[1m1s\x1b[0m 2ms/step"
        " - loss: 2.3026 - sparse_categorical_accuracy: 0.1012 - learning_rate: 0.0100\n"
        "Epoch 2/2\n"
        "32/32 ━━━━━━━━━━━━━━━━━━━━ 0s 2ms/step - loss: 2.3026 - sparse_categorical_accuracy: 0.0998"
        " - learning_rate: 0.0100\n"
    )
    history = parse_metrics(log)
    assert list(history.columns) == ["loss", "accuracy", "learning_rate"]
    assert history.columns["loss"] == [2.3026, 2.3026]
    assert value(history, 2, "accuracy") == 0.0998


def test_keras3_verbose2_with_tensorflow_noise():
    history = parse_metrics(read("keras3_verbose2_colab.log"))
    assert history.epochs == [1, 2, 3, 4]
    assert list(history.columns) == ["accuracy", "loss", "recall", "val_accuracy", "val_loss", "val_recall"]
    assert value(history, 1, "val_accuracy") == 0.0
    assert value(history, 4, "val_loss") == 2.3351


def test_tf2_progress_bars_keep_only_each_epochs_final_line():
    history = parse_metrics(read("tf2_verbose1.log"))
    assert history.epochs == [1, 2, 3]
    assert row(history, 1) == [0.6951, 0.4950, 0.6932, 0.5]
    assert value(history, 2, "loss") == 0.6930
    # model.evaluate() output pasted after the last epoch does not replace it.
    assert value(history, 3, "accuracy") == 0.4987
    assert math.isnan(value(history, 3, "val_loss"))


def test_tf2_verbose2_with_trailing_timings():
    history = parse_metrics(
        "Epoch 1/2\n25/25 - 0s - loss: 0.6931 - accuracy: 0.5012 - val_loss: 0.6932 - val_accuracy: 0.4950"
        " - 75ms/epoch - 3ms/step\n"
        "Epoch 2/2\n25/25 - 0s - loss: 1.2345e-05 - accuracy: 0.5100 - val_loss: -3.2e+02 - val_accuracy: 0.5"
        " - 71ms/epoch - 3ms/step\n"
    )
    assert value(history, 1, "val_loss") == 0.6932
    assert value(history, 2, "loss") == 1.2345e-05
    assert value(history, 2, "val_loss") == -320.0


def test_old_keras_acc_names_and_callback_messages():
    history = parse_metrics(read("keras1_cifar10.log"))
    assert list(history.columns) == ["loss", "accuracy", "val_loss", "val_accuracy"]
    assert history.epochs == [1, 2, 3, 4]
    assert row(history, 1) == [1.43, 0.49, 1.2, 0.57]
    assert value(history, 4, "val_accuracy") == 0.66


def test_several_epochs_on_one_line():
    history = parse_metrics(
        "Epoch 1/3 25/25 - 0s - loss: 0.7000 - accuracy: 0.5000 Epoch 2/3 25/25 - 0s - loss: 0.6000"
        " - accuracy: 0.6000Epoch 3/3 25/25 - 0s - loss: 0.5000 - accuracy: 0.7000"
    )
    assert history.columns["loss"] == [0.7, 0.6, 0.5]
    assert history.columns["accuracy"] == [0.5, 0.6, 0.7]


def test_console_without_epoch_lines_counts_metric_lines():
    history = parse_metrics(
        "loss: 0.6931 - accuracy: 0.5000\n"
        "782/782 [==============================] - 3s 4ms/step - loss: 0.6500 - accuracy: 0.6100\n"
        " - 2s - loss: 0.6100 - acc: 0.6600\n"
    )
    assert history.epochs == [1, 2, 3]
    assert history.columns["loss"] == [0.6931, 0.65, 0.61]
    assert value(history, 3, "accuracy") == 0.66


@pytest.mark.parametrize("spelling, expected", [
    ("nan", math.nan), ("NaN", math.nan), ("inf", math.inf), ("-inf", -math.inf), ("Infinity", math.inf),
])
def test_console_non_finite_spellings(spelling, expected):
    history = parse_metrics(f"Epoch 1/1\n1/1 - 0s - loss: {spelling} - accuracy: 0.5\n")
    loss = value(history, 1, "loss")
    assert loss is not None
    assert math.isnan(loss) if math.isnan(expected) else loss == expected


# --- history.history, records, RemoteMonitor --------------------------------


def test_history_dict_with_none_and_non_finite_values():
    history = parse_metrics({
        "loss": [0.7, float("nan"), "inf", "-inf", "NaN"],
        "val_loss": [0.71, None, "nan", "Infinity", 0.5],
        "binary_accuracy": [0.5, 0.55, 0.6, 0.6, 0.61],
    })
    assert history.format == "history"
    assert list(history.columns) == ["loss", "val_loss", "accuracy"]
    assert None not in history.columns["loss"]
    assert [value is not None for value in history.columns["val_loss"]] == [True, False, True, True, True]
    assert value(history, 3, "loss") == math.inf and value(history, 4, "loss") == -math.inf
    assert value(history, 4, "val_loss") == math.inf
    assert history.where(1) == "epoch 1 of the history.history dict"


def test_history_as_json_text_with_nan_literals():
    text = json.dumps({"loss": [0.69, float("nan")], "val_acc": [0.5, 0.5], "auc_3": [0.5, 0.51]})
    assert "NaN" in text
    history = parse_metrics(text)
    assert history.format == "history"
    assert list(history.columns) == ["loss", "val_accuracy", "auc"]
    assert math.isnan(value(history, 2, "loss"))


def test_accuracy_variant_kept_when_accuracy_exists():
    history = parse_metrics({"loss": [0.7], "accuracy": [0.5], "binary_accuracy": [0.52], "val_binary_accuracy": [0.4]})
    assert list(history.columns) == ["loss", "accuracy", "binary_accuracy", "val_accuracy"]


def test_regression_metric_long_names():
    history = parse_metrics({"loss": [3.1, 2.9], "mean_absolute_error": [1.2, 1.1], "val_mean_squared_error": [3.3, 3.0]})
    assert list(history.columns) == ["loss", "mae", "val_mse"]


def test_list_of_records():
    history = parse_metrics([
        {"epoch": 0, "loss": 0.7, "accuracy": 0.5},
        {"epoch": 1, "loss": 0.6, "accuracy": 0.6, "val_loss": 0.65},
    ])
    assert history.format == "records"
    assert history.epochs == [1, 2]
    assert history.columns["val_loss"] == [None, 0.65]
    assert value(history, 2, "val_loss") == 0.65
    assert history.where(2) == "epoch 2 of the per-epoch records"


def test_records_as_json_text_without_epoch_keys():
    history = parse_metrics('[{"loss": 0.7}, {"loss": 0.6}, {"loss": NaN}]')
    assert history.epochs == [1, 2, 3]
    assert math.isnan(value(history, 3, "loss"))


def test_remote_monitor_single_payload_with_string_numbers():
    history = parse_metrics({"epoch": "3", "loss": "0.5", "accuracy": "0.7", "val_loss": "nan"})
    assert history.format == "remote_monitor"
    assert history.epochs == [4]
    assert value(history, 4, "accuracy") == 0.7
    assert math.isnan(value(history, 4, "val_loss"))
    assert history.where(4) == "epoch 4 of the RemoteMonitor payloads"


def test_collected_remote_monitor_payloads_arrive_in_any_order():
    history = parse_metrics([
        {"epoch": 1, "loss": "0.6", "acc": "0.6"},
        {"epoch": 0, "loss": "0.7", "acc": "0.5"},
    ])
    assert history.columns["loss"] == [0.7, 0.6]
    assert value(history, 1, "accuracy") == 0.5


# --- TensorBoard and Lightning exports --------------------------------------


def test_tensorboard_export_named_by_its_file():
    history = parse_metrics(read("run-validation-tag-epoch_accuracy.csv"), filename="run-validation-tag-epoch_accuracy.csv")
    assert history.format == "tensorboard"
    assert list(history.columns) == ["val_accuracy"]
    assert history.epochs == [1, 2, 3, 4]
    assert value(history, 4, "val_accuracy") == 0.6000000238418579
    assert history.where(2) == "epoch 2 of the TensorBoard scalar export"


@pytest.mark.parametrize("filename, metric", [
    ("run-train-tag-epoch_loss.csv", "loss"),
    ("C:\\Users\\me\\Downloads\\run-validation-tag-epoch_loss.csv", "val_loss"),
    ("epoch_loss", "loss"),
    ("run-version_0-tag-val_loss.csv", "val_loss"),
    (None, "loss"),
])
def test_tensorboard_metric_names(filename, metric):
    history = parse_metrics("Wall time,Step,Value\n1718031925.36,0,0.69\n1718031926.01,1,0.65\n", filename=filename)
    assert list(history.columns) == [metric]


def test_lightning_sparse_rows_merge_per_epoch():
    history = parse_metrics(read("lightning_metrics.csv"))
    assert history.format == "lightning"
    assert history.epochs == [1, 2, 3]
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(history.columns)
    assert value(history, 1, "loss") == 0.6923
    assert value(history, 2, "accuracy") == 0.6012
    assert value(history, 3, "val_loss") == 0.6602
    assert value(history, 3, "train_loss_step") == 0.6611
    assert value(history, 3, "loss") is None
    assert history.where(3) == "epoch 3 of the Lightning metrics.csv"


# --- bad input --------------------------------------------------------------


@pytest.mark.parametrize("raw, fragments", [
    ("", ["empty"]),
    ("   \n\t", ["empty"]),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff", ["not UTF-8"]),
    ("epoch,loss\x00\n", ["binary"]),
    ("hello, I pasted the wrong thing", ["no epochs found"]),
    ("my model is not learning", ["no epochs found", "loss: <number>"]),
    ("0,0.69,0.5\n1,0.68,0.51\n", ["no header", "line 1"]),
    ("epoch,loss\n", ["empty"]),
    ("epoch,loss,val_loss\n0,0.7,0.7\n1,0.6,abc\n", ["line 3", "column val_loss", "'abc'"]),
    ("epoch,loss\n0,0.7\n1,0.6,0.1\n", ["line 3", "expected 2 cells", "found 3"]),
    ("epoch,loss,val_loss\n0,0.7,0.7\n\n1,0.6\n", ["line 4", "found 2"]),
    ("epoch,loss\n0,0.7\nx,0.6\n", ["line 3", "column epoch", "'x'"]),
    ("epoch,loss\n0,0.7\n-1,0.6\n", ["line 3", "whole epoch number"]),
    ("epoch,loss\n0,NA\n1,\n", ["every cell is empty"]),
    ("epoch,step\n0,1\n", ["no metrics found"]),
    ("epoch,,loss\n0,1,0.5\n", ["line 1", "column 2 has no name"]),
    ('{"loss": [0.7, 0.6', ["JSON", "line 1"]),
    ("[1, 2, 3]", ["record 1", "int"]),
    ('{"loss": "0.7"}', ["'loss'", "list", "str"]),
    ('{"loss": [0.7, "abc"]}', ["epoch 2", "'abc'"]),
    ({}, ["empty"]),
    ({"loss": []}, ["empty"]),
    ({"loss": 0.7, "val_loss": 0.8}, ["'loss'", "list"]),
    ({"loss": [0.7] * 10, "val_loss": [0.7] * 9}, ["metric 'val_loss' has 9 values but 'loss' has 10"]),
    ({"loss": [0.7, "abc"]}, ["epoch 2", "column loss", "'abc'"]),
    ({"loss": [0.7, True]}, ["epoch 2", "True"]),
    ({"loss": [0.7, [0.6]]}, ["epoch 2", "[0.6]"]),
    ({"loss": [0.7, {"value": 0.6}]}, ["epoch 2"]),
    ({"loss": [10**400]}, ["epoch 1", "column loss"]),
    ([], ["empty"]),
    ([{"loss": 0.7}, 0.6], ["record 2", "float"]),
    ([{"epoch": 0}, {"epoch": 1}], ["no metrics found"]),
    ([{"loss": 0.7}, {"loss": "0,6"}], ["record 2", "'0,6'"]),
    ({"epoch": 2, "loss": "n/a"}, ["payload 1", "'n/a'"]),
    ("[[[[" * 20000 + "]]]]" * 20000, ["nested too deeply"]),
    (42, ["int"]),
    (None, ["NoneType"]),
])
def test_bad_input_is_an_evidence_error_naming_the_place(raw, fragments):
    assert_error(raw, *fragments)


def test_too_many_epochs_are_refused():
    assert_error({"loss": [0.5] * 100_001}, "100,000 epochs")
    assert_error("epoch,loss\n250000,0.5\n", "100,000 epochs")
    assert_error(f"epoch,loss\n{'9' * 400},0.5\n", "100,000 epochs")


# --- robustness and the public cases ----------------------------------------

_FRAGMENTS = st.sampled_from([
    "Epoch 1/3", "Epoch 2/3", "\n", "\r", "\b\b", "\r\n", " - ", "loss", "val_", "acc", ": ", "0.5", "-1e-3",
    "nan", "inf", ",", "epoch", "step", "NA", "", "25/25", "12/25", " [====] ", "ETA: 0s", "\x1b[1m",
    "Wall time,Step,Value", "{", "}", "[", "]", '"', "null", "9" * 30,
])
_JSON = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=6)
    | st.sampled_from(["nan", "-inf", "NA", "", "0.5"]),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(["loss", "val_loss", "epoch", "acc", "lr", ""]) | st.text(max_size=4), children, max_size=4),
    max_leaves=12,
)


def assert_history_or_evidence_error(raw) -> None:
    try:
        history = parse_metrics(raw)
    except EvidenceError as error:
        assert error.field == "metrics" and error.message
        return
    assert isinstance(history, History)
    assert history.epochs and history.columns
    assert history.epochs == sorted(set(history.epochs)) and history.epochs[0] >= 1
    for values in history.columns.values():
        assert len(values) == len(history.epochs)
        assert all(type(value) is float for value in values if value is not None)
        assert any(value is not None for value in values)


@settings(max_examples=100, deadline=None)
@given(st.lists(_FRAGMENTS, max_size=30).map("".join) | st.text(max_size=200) | st.binary(max_size=100))
def test_any_text_parses_or_raises_evidence_error(raw):
    assert_history_or_evidence_error(raw)


@settings(max_examples=150, deadline=None)
@given(_JSON)
def test_any_json_value_parses_or_raises_evidence_error(value):
    assert_history_or_evidence_error(value)
    assert_history_or_evidence_error(json.dumps(value))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.lists(st.sampled_from(["0", "1", "0.5", "nan", "NA", "", "x", "-2"]), min_size=1, max_size=4), max_size=6))
def test_any_csv_body_parses_or_raises_evidence_error(rows):
    body = "".join(",".join(row) + "\n" for row in rows)
    assert_history_or_evidence_error("epoch,loss,val_loss\n" + body)


def test_a_thousand_epochs_parse_quickly():
    losses = [1 / (epoch + 1) for epoch in range(1000)]
    csv_text = "epoch,loss,val_loss,accuracy,val_accuracy\n" + "".join(
        f"{epoch},{loss},{loss},{1 - loss},{1 - loss}\n" for epoch, loss in enumerate(losses)
    )
    history_dict = {"loss": losses, "val_loss": losses, "accuracy": losses, "val_accuracy": losses}
    for raw in (csv_text, history_dict):
        parse_metrics(raw)
        start = time.perf_counter()
        history = parse_metrics(raw)
        assert time.perf_counter() - start < 0.1  # typically a few milliseconds; generous for busy CI
        assert history.columns["loss"] == losses


@pytest.mark.skipif(CASES is None, reason="shared/cases is not checked out next to the repository")
@pytest.mark.parametrize("case", sorted(CASES.glob("*.json")) if CASES else [], ids=lambda path: path.stem)
def test_public_case_metrics_parse(case):
    history = parse_metrics(json.loads(case.read_text(encoding="utf-8"))["request"]["metrics"])
    assert len(history.epochs) >= 2
    assert "loss" in history.columns
