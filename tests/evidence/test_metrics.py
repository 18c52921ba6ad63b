"""Tests for reading training histories in every format users send."""
import io
import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assistant.evidence import gather
from assistant.evidence.facts import EvidenceError
from assistant.evidence.metrics import History, parse_metrics
from tests.helpers import CASES, shipped_kb

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


def test_console_epoch_lines_say_how_many_epochs_the_run_was_set_to():
    piece = parse_metrics("Epoch 1/50\n22/22 [====] - 13s 575ms/step - loss: 2.2847 - acc: 0.2088\n")
    assert (piece.epochs, piece.planned) == ([1], 50)
    assert parse_metrics("Epoch 1/1\n22/22 [====] - 13s - loss: 2.2847\n").planned == 1
    assert parse_metrics("55000/55000 [====] - 164s 3ms/step - loss: 2.3037 - accuracy: 0.1120\n").planned is None
    assert parse_metrics({"loss": [0.5, 0.4]}).planned is None


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


# --- logs as people paste them ----------------------------------------------


def encoded(name: str, encoding: str) -> bytes:
    """A log of tests/evidence/data (kept in UTF-8) as another tool writes it: Windows PowerShell 5's ``>``
    writes UTF-16 with a BOM, an older editor Latin-1."""
    return read(name).encode(encoding)


def test_progress_bar_inside_an_unfinished_epoch_is_read_as_that_epoch():
    history = parse_metrics(read("keras2_eta_only.log"))
    assert history.format == "console"
    assert history.epochs == [1]
    assert row(history, 1) == [0.6931, 0.5012]
    assert history.skipped == ("epoch 1 was still running, so its values are those at step 123 of 500",)


def test_interrupted_run_keeps_its_finished_epochs_and_says_the_last_was_running():
    history = parse_metrics(read("tf2_interrupted.log"))
    assert history.epochs == [1, 2, 3]
    assert value(history, 2, "val_loss") == 2.3026
    assert value(history, 3, "loss") == 2.3026 and value(history, 3, "val_loss") is None
    assert history.skipped == ("epoch 3 was still running, so its values are those at step 402 of 1875",)


def test_keras3_bar_stopped_inside_an_epoch():
    log = keras3_epoch(
        1, 3, keras3_bar(25, 25, "1s", "12ms/step - accuracy: 0.5012 - loss: 0.6931 - val_accuracy: 0.4950 - val_loss: 0.6932"),
    ) + keras3_epoch(
        2, 3,
        keras3_bar(1, 25, "0s", "6ms/step - accuracy: 0.5312 - loss: 0.6925"),
        keras3_bar(7, 25, "0s", "5ms/step - accuracy: 0.5100 - loss: 0.6929"),
    )
    history = parse_metrics(log)
    assert history.epochs == [1, 2]
    assert row(history, 2) == [0.5100, 0.6929, None, None]
    assert history.skipped == ("epoch 2 was still running, so its values are those at step 7 of 25",)


def test_partial_bars_without_epoch_lines_start_an_epoch_where_the_step_count_starts_again():
    history = parse_metrics(
        " 12/100 [==>...........................] - ETA: 8s - loss: 2.3026 - acc: 0.1016\r"
        " 80/100 [========================>.....] - ETA: 1s - loss: 2.3025 - acc: 0.1010\r"
        " 10/100 [==>...........................] - ETA: 8s - loss: 2.3020 - acc: 0.1100\r"
        " 60/100 [=================>............] - ETA: 3s - loss: 2.3019 - acc: 0.1090\r"
    )
    assert history.epochs == [1, 2]
    assert history.columns["loss"] == [2.3025, 2.3019]
    assert len(history.skipped) == 2


def test_a_finished_log_leaves_nothing_out():
    assert parse_metrics(read("tf2_verbose1.log")).skipped == ()
    assert parse_metrics(CSVLOGGER).skipped == ()


def test_skorch_table_with_a_blank_checkpoint_cell():
    history = parse_metrics(read("skorch_checkpoint.log"))
    assert history.format == "table"
    assert history.epochs == [1, 2, 3, 4]
    assert list(history.columns) == ["loss", "val_accuracy", "val_loss"]
    assert row(history, 3) == [0.6932, 0.5, 0.6931]
    assert history.where(2) == "epoch 2 of the pasted table of epochs"


def test_nolearn_table_after_its_layer_table():
    history = parse_metrics(read("nolearn_mnist.log"))
    assert history.epochs == [1, 2, 3]
    assert {"loss", "val_loss", "val_accuracy"} <= set(history.columns)
    assert value(history, 1, "loss") == 2.30253
    assert value(history, 3, "val_loss") == 2.30229
    assert history.columns["val_accuracy"] == [0.1123] * 3


def test_fastai_table_counts_epochs_from_zero_and_its_metrics_are_validation_metrics():
    history = parse_metrics(read("fastai_v1_fit_one_cycle.log"))
    assert history.epochs == [1, 2, 3]
    assert list(history.columns) == ["loss", "val_loss", "val_error_rate"]
    assert row(history, 1) == [1.163452, 0.291307, 0.087957]


def test_fastai_fine_tune_prints_two_tables_that_continue_the_epochs():
    history = parse_metrics(read("fastai_v2_fine_tune.log"))
    assert history.epochs == [1, 2, 3, 4]
    assert history.columns["loss"] == [0.412387, 0.231206, 0.165435, 0.102148]
    assert value(history, 4, "val_accuracy") == 0.942


def test_fastai_without_its_progress_bar_prints_python_lists():
    history = parse_metrics(read("fastai_v2_no_bar.log"))
    assert history.format == "table"
    assert history.epochs == [1, 2, 3]
    assert list(history.columns) == ["loss", "val_loss", "val_accuracy"]
    assert value(history, 3, "val_accuracy") == 0.9049999713897705


@pytest.mark.parametrize("name", ["csvlogger_semicolon.csv", "csvlogger_tab.tsv"])
def test_csvlogger_with_another_separator(name):
    history = parse_metrics(read(name), filename=name)
    assert history.format == "csvlogger"
    assert history.epochs == [1, 2, 3]
    assert list(history.columns) == ["accuracy", "loss", "val_accuracy", "val_loss"]


def test_semicolon_file_from_a_spreadsheet_with_decimal_commas():
    history = parse_metrics("epoch;loss;val_loss\n0;0,6931;0,6932\n1;0,6930;1,2e-3\n")
    assert history.columns == {"loss": [0.6931, 0.6930], "val_loss": [0.6932, 0.0012]}


def test_tsv_from_pandas_with_its_unnamed_index():
    history = parse_metrics("\tloss\taccuracy\n0\t0.69\t0.5\n1\t0.68\t0.52\n")
    assert history.epochs == [1, 2]
    assert history.columns == {"loss": [0.69, 0.68], "accuracy": [0.5, 0.52]}


def test_lightning_progress_bar():
    history = parse_metrics(read("lightning_progress_bar.log"))
    assert history.format == "progress_bar"
    assert history.epochs == [1, 2, 3]
    assert list(history.columns) == ["loss", "val_loss", "val_accuracy"]
    assert row(history, 1) == [0.694, 0.692, 0.508]
    assert history.skipped == ("epoch 3 was still running, so its values are those at step 25 of 63",)
    assert history.where(1) == "epoch 1 of the pasted progress bars"


def test_lightning2_terminal_redraws_merge_per_epoch():
    history = parse_metrics(read("lightning2_terminal.log"))
    assert history.epochs == [1, 2]
    assert history.columns["loss"] == [0.695, 0.689]  # train_loss_epoch
    assert history.columns["train_loss_step"] == [0.690, 0.688]
    assert history.columns["val_accuracy"] == [0.51, 0.52]
    assert history.skipped == ()


def test_tqdm_bar_of_a_custom_loop():
    history = parse_metrics(
        "Epoch 1/3: 100%|██████████| 938/938 [00:15<00:00, 61.2it/s, loss=0.3, acc=0.9]\n"
        "Epoch 2/3:  30%|███       | 281/938 [00:05<00:10, 61.2it/s, loss=0.25, acc=0.91]\n"
    )
    assert history.epochs == [1, 2]
    assert history.columns == {"loss": [0.3, 0.25], "accuracy": [0.9, 0.91]}
    assert history.skipped == ("epoch 2 was still running, so its values are those at step 281 of 938",)


def test_print_of_history_history_among_the_code_that_printed_it():
    history = parse_metrics(read("history_print.txt"))
    assert history.format == "history"
    assert history.epochs == [1, 2, 3, 4]
    assert list(history.columns) == ["loss", "accuracy", "val_loss", "val_accuracy"]
    assert math.isnan(value(history, 4, "loss")) and math.isnan(value(history, 4, "val_loss"))
    assert value(history, 2, "accuracy") == 0.5012499690055847


@pytest.mark.parametrize("text, loss", [
    ("{'loss': [np.float32(0.6931), np.float32(0.693)], 'acc': [np.float64(0.5), np.float64(nan)]}", [0.6931, 0.693]),
    ("{'loss': array([0.6931, 0.693], dtype=float32), 'acc': array([0.5, nan])}", [0.6931, 0.693]),
    ("{'loss': [<tf.Tensor: shape=(), dtype=float32, numpy=0.6931>, tf.Tensor(0.693, shape=(), dtype=float32)],"
     " 'acc': [0.5, float('nan')]}", [0.6931, 0.693]),
    ("{'loss': [0.6931, 0.693], 'acc': [0.5, np.nan]}", [0.6931, 0.693]),
    ("[{'loss': 0.6931, 'acc': 0.5}, {'loss': 0.693, 'acc': NaN}]", [0.6931, 0.693]),
])
def test_python_reprs_of_numpy_and_tensorflow_values(text, loss):
    history = parse_metrics(text)
    assert history.columns["loss"] == loss
    assert value(history, 1, "accuracy") == 0.5 and math.isnan(value(history, 2, "accuracy"))


@pytest.mark.parametrize("text", [
    "{'loss': [0.5, __import__('os').system('touch /tmp/pwned')]}",
    "{'loss': [0.5, (lambda: 0.4)()]}",
    "{'loss': [0.5, open('/etc/passwd').read()]}",
])
def test_python_reprs_are_read_never_executed(text):
    assert_error(text, "JSON")


def test_custom_loop_with_several_losses_keeps_the_first_as_the_loss():
    history = parse_metrics(read("gan_custom_print.log"))
    assert history.format == "printed"
    assert history.epochs == [425, 426, 427]
    assert list(history.columns) == ["loss", "latloss"]
    assert row(history, 427) == [74090.617188, 126.223068]
    assert history.where(427) == "epoch 427 of the lines your training loop printed"


def test_a_loss_named_total_loss_wins():
    history = parse_metrics("epoch 1: d_loss 0.52 g_loss 0.71 total_loss 1.23\nepoch 2: d_loss 0.50 g_loss 0.69 total_loss 1.19\n")
    assert list(history.columns) == ["d_loss", "g_loss", "loss"]
    assert history.columns["loss"] == [1.23, 1.19]


def test_tf1_cost_lines():
    history = parse_metrics(read("tf1_custom_loop.log"))
    assert history.epochs == [1, 2, 3]
    assert list(history.columns) == ["loss"]
    assert history.columns["loss"][:2] == [2.306112134, 2.302585093]
    assert math.isnan(value(history, 3, "loss"))


def test_iteration_lines_give_each_epochs_last_value():
    history = parse_metrics(read("pytorch_iterations.log"))
    assert history.epochs == [1, 2]  # printed from 0
    assert all(math.isnan(loss) for loss in history.columns["loss"])


def test_tf2_custom_loop_in_percent_with_test_metrics():
    history = parse_metrics(read("tf2_custom_loop.log"))
    assert history.epochs == [1, 2, 3]
    assert list(history.columns) == ["loss", "accuracy", "val_loss", "val_accuracy"]
    assert row(history, 1) == [0.1340, 0.9598, 0.0631, 0.9795]


@pytest.mark.parametrize("log, losses", [
    ("Epoch 1 | loss 0.693 | acc 0.50\nEpoch 2 | loss 0.690 | acc 0.52\n", [0.693, 0.690]),
    ("Epoch [1/5], Step [100/600], Loss: 0.6931\nEpoch [1/5], Step [200/600], Loss: 0.5012\n"
     "Epoch [2/5], Step [100/600], Loss: 0.3000\n", [0.5012, 0.3]),
    ("Step 0: loss = 2.30 (0.112 sec)\nStep 100: loss = 2.15 (0.003 sec)\n", [2.30, 2.15]),
    ("Train Epoch: 1 [0/60000 (0%)]\tLoss: 2.305400\nTrain Epoch: 1 [59520/60000 (99%)]\tLoss: 0.252000\n\n"
     "Test set: Average loss: 0.0544, Accuracy: 9829/10000 (98%)\n\nTrain Epoch: 2 [0/60000 (0%)]\tLoss: 0.100000\n",
     [0.252, 0.1]),
    ("INFO:root:epoch=1 train_cost=0.91 val_cost=0.95\nINFO:root:epoch=2 train_cost=0.80 val_cost=0.90\n", [0.91, 0.80]),
])
def test_printed_lines_of_custom_loops(log, losses):
    history = parse_metrics(log)
    assert history.format == "printed"
    assert history.columns["loss"] == losses


def test_powershell_utf16_file():
    data = encoded("powershell_console.log", "utf-16")
    assert data.startswith(b"\xff\xfe")
    history = parse_metrics(data, filename="train.log")
    assert history.epochs == [1, 2, 3]
    assert value(history, 3, "val_loss") == 0.4187


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf16_without_a_bom(encoding):
    assert parse_metrics(encoded("powershell_console.log", encoding)).epochs == [1, 2, 3]


def test_utf16_that_a_browser_read_as_utf8():
    text = encoded("powershell_console.log", "utf-16").decode("utf-8", errors="replace")
    assert "\x00" in text
    assert parse_metrics(text).epochs == [1, 2, 3]


def test_latin1_bytes_with_french_words_around_the_log():
    history = parse_metrics(encoded("french_console.log", "latin-1"))
    assert history.epochs == [1, 2]
    assert history.columns["accuracy"] == [0.4987, 0.5003]


def test_log_pasted_with_the_symptom_around_it():
    history = parse_metrics(read("symptom_around_log.txt"))
    assert history.epochs == [1, 2, 3]
    assert history.columns["accuracy"] == [0.5] * 3 and history.columns["loss"] == [7.9712] * 3


def test_csv_pasted_with_words_around_it():
    history = parse_metrics("Here is my CSVLogger file:\nepoch,loss,val_loss\n0,0.7,0.7\n1,0.6,0.65\nAny idea?\n")
    assert history.epochs == [1, 2]
    assert history.columns == {"loss": [0.7, 0.6], "val_loss": [0.7, 0.65]}


def test_rows_left_out_of_a_pasted_table_or_csv_are_named_by_the_line_the_user_sees():
    table = read("skorch_checkpoint.log").replace("      3        0.6932", "      3        0.69x2")
    history = parse_metrics(table)
    assert history.epochs == [1, 2, 4]
    assert history.skipped == ("line 8 was left out (expected a number in column train_loss, got '0.69x2')",)
    history = parse_metrics("Here it is:\n\nepoch,loss\n0,0.7\n1,x\n2,0.5\nthanks")
    assert history.epochs == [1, 3]
    assert history.skipped == ("line 5 was left out (expected a number in column loss, got 'x')",)


@pytest.mark.parametrize("prose", [
    "my loss is 0.69 after 10 epochs and accuracy 50%",
    "I get loss 0.69 every single time I run it, whatever the learning rate",
    "Epoch 3 looks weird",
])
def test_prose_is_not_read_as_a_log(prose):
    assert_error(prose, "no epochs found")


def test_lenient_reading_leaves_out_unreadable_rows_and_says_which():
    text = "epoch,loss,val_loss\n0,0.7,0.7\n1,0.6,abc\n2,0.5\n3,0.4,0.45\n"
    assert_error(text, "line 4", "expected 3 cells")
    history = parse_metrics(text, lenient=True)
    assert history.epochs == [1, 4]
    assert history.skipped == ("line 3 was left out (expected a number in column val_loss, got 'abc')",
                               "line 4 was left out (expected 3 cells as in the header, found 2)")


def test_lenient_reading_lists_a_few_of_many_rows_left_out():
    text = "epoch,loss\n0,0.7\n" + "".join(f"{epoch},x\n" for epoch in range(1, 10))
    history = parse_metrics(text, lenient=True)
    assert history.epochs == [1]
    assert len(history.skipped) == 4 and history.skipped[-1] == "6 more were left out"


def test_lenient_reading_still_refuses_what_has_no_readable_row():
    with pytest.raises(EvidenceError, match="line 2: expected a number in column loss"):
        parse_metrics("epoch,loss\n0,x\n1,y\n", lenient=True)


# --- what a turn makes of a log that is read in part or not at all -------------

API = "/api/v1/conversations"


def history_facts(evidence) -> dict:
    return {fact.key: fact for fact in evidence.facts if fact.key.startswith("history_")}


def test_gather_answers_an_unreadable_log_with_facts_that_say_why():
    evidence = gather(shipped_kb(), symptom="accuracy is stuck at 50%", metrics="sorry, the log is too long to paste")
    facts = history_facts(evidence)
    assert facts["history_unreadable"].value is True and facts["history_partial"].value is False
    assert facts["history_unread"].value.startswith("no epochs found")
    assert evidence.history is None
    assert "epochs_run" not in {fact.key for fact in evidence.facts}


def test_gather_says_what_it_left_out_of_a_log():
    evidence = gather(shipped_kb(), metrics=read("tf2_interrupted.log"))
    facts = history_facts(evidence)
    assert facts["history_partial"].value is True and facts["history_unreadable"].value is False
    assert facts["history_unread"].value == "epoch 3 was still running, so its values are those at step 402 of 1875"
    assert evidence.history["epoch"] == [1, 2, 3]


def test_gather_reads_a_whole_log_as_whole():
    facts = history_facts(gather(shipped_kb(), metrics=CSVLOGGER))
    assert facts["history_partial"].value is False and facts["history_unreadable"].value is False
    assert "history_unread" not in facts


PASTED = """My model does not learn. Here is what fit prints:
```
Epoch 1/3
100/100 [==============================] - 2s 20ms/step - loss: 0.6932 - accuracy: 0.5010
Epoch 2/3
100/100 [==============================] - 2s 20ms/step - loss: 0.6931 - accuracy: 0.4990
Epoch 3/3
100/100 [==============================] - 2s 20ms/step - loss: 0.6931 - accuracy: 0.5003
```
What is wrong?"""


@pytest.mark.parametrize("words", ["symptom", "text"])
def test_gather_reads_a_log_pasted_among_the_words_as_the_history(words):
    evidence = gather(shipped_kb(), **{words: PASTED})
    assert evidence.history["epoch"] == [1, 2, 3] and evidence.history["loss"][-1] == 0.6931
    facts = {fact.key: fact.value for fact in evidence.facts}
    assert facts["epochs_run"] == 3 and facts["loss_at_uniform"] is True


def test_a_log_sent_as_metrics_wins_over_one_among_the_words():
    evidence = gather(shipped_kb(), symptom=PASTED, metrics={"loss": [2.0, 1.0]})
    assert evidence.history["loss"] == [2.0, 1.0]


def test_words_without_a_console_log_give_no_history():
    assert gather(shipped_kb(), symptom="loss: 0.69 and accuracy: 0.5 after 3 epochs").history is None


def test_words_that_only_name_an_epoch_are_no_unreadable_log():
    evidence = gather(shipped_kb(), symptom="At Epoch 3/10 the loss turns NaN")
    assert evidence.history is None and not history_facts(evidence)


def test_gather_still_refuses_a_json_history_with_a_wrong_value():
    with pytest.raises(EvidenceError, match="column loss"):
        gather(shipped_kb(), metrics={"loss": [0.7, "abc"]})


def test_a_symptom_with_an_unreadable_log_gets_a_reply_that_says_so(client):
    response = client.post(API, json={"symptom": "my accuracy is stuck at 50%", "metrics": "the log is too long, sorry"})
    assert response.status_code == 201, response.get_data(as_text=True)
    reply = response.get_json()["reply"]
    assert reply["causes"]
    assert ('I could not read the training log you sent (no epochs found: the pasted log has no "loss: <number>" '
            "entries), so this answer rests on your words") in reply["readings"]
    assert reply["text"].startswith("What I see: I could not read the training log you sent")
    conversation = response.get_json()["id"]
    assert client.get(f"{API}/{conversation}").get_json()["facts"]["history_unreadable"] is True

    turn = client.post(f"{API}/{conversation}/turns", json={"metrics": CSVLOGGER})
    assert turn.status_code == 200, turn.get_data(as_text=True)
    assert not any("training log" in reading for reading in turn.get_json()["reply"]["readings"])


def test_a_log_read_in_part_gets_a_reply_that_says_what_was_left_out(client):
    response = client.post(API, json={"symptom": "loss stuck at 2.30", "metrics": read("tf2_interrupted.log")})
    assert response.status_code == 201, response.get_data(as_text=True)
    assert ("I read the training log, but epoch 3 was still running, so its values are those at step 402 of 1875"
            in response.get_json()["reply"]["readings"])


@pytest.mark.parametrize("name, content, reading", [
    ("train.log", ("powershell_console.log", "utf-16"), None),
    ("log.txt", ("french_console.log", "latin-1"), None),
    ("curves.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x02\x80", "I could not read the training log you sent"),
])
def test_uploaded_logs_in_any_encoding_get_a_reply(client, name, content, reading):
    data = content if isinstance(content, bytes) else encoded(*content)
    response = client.post(API, content_type="multipart/form-data",
                           data={"symptom": "it does not learn", "metrics": (io.BytesIO(data), name)})
    assert response.status_code == 201, response.get_data(as_text=True)
    user = client.get(f"{API}/{response.get_json()['id']}").get_json()["turns"][0]["body"]
    readings = response.get_json()["reply"]["readings"]
    if reading is None:
        assert len(user["history"]["epoch"]) >= 2
        assert not any("training log" in shown for shown in readings)
    else:
        assert "history" not in user
        assert any(shown.startswith(reading) and "binary data" in shown for shown in readings)


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


def test_a_thousand_epochs_parse_whole():
    """Every epoch of a long run is kept (how fast is benchmarks/serve_throughput.py's business)."""
    losses = [1 / (epoch + 1) for epoch in range(1000)]
    csv_text = "epoch,loss,val_loss,accuracy,val_accuracy\n" + "".join(
        f"{epoch},{loss},{loss},{1 - loss},{1 - loss}\n" for epoch, loss in enumerate(losses)
    )
    history_dict = {"loss": losses, "val_loss": losses, "accuracy": losses, "val_accuracy": losses}
    for raw in (csv_text, history_dict):
        history = parse_metrics(raw)
        assert history.columns["loss"] == losses
        assert len(history.epochs) == 1000


@pytest.mark.skipif(CASES is None, reason="shared/cases is not checked out next to the repository")
@pytest.mark.parametrize("case", sorted(CASES.glob("*.json")) if CASES else [], ids=lambda path: path.stem)
def test_public_case_metrics_parse(case):
    history = parse_metrics(json.loads(case.read_text(encoding="utf-8"))["request"]["metrics"])
    assert len(history.epochs) >= 2
    assert "loss" in history.columns


def test_a_log_of_one_epoch_tells_what_one_epoch_can_and_leaves_the_curve_shape_unknown():
    log = ("Epoch 1/1\n22/22 [==============================] - 13s 575ms/step - loss: 2.2847 - acc: 0.2088"
           " - val_loss: 2.1990 - val_acc: 0.2683")
    facts = {fact.key: fact.value for fact in gather(shipped_kb(), metrics=log).facts}
    assert facts["epochs_run"] == 1 and facts["loss_is_nan"] is False and facts["loss_negative"] is False
    assert not {"loss_still_falling", "loss_flat", "loss_steady_decline", "val_gap_growing"} & set(facts)
    two = {fact.key: fact.value for fact in gather(shipped_kb(), metrics={"loss": [2.28, 2.27]}).facts}
    assert two["loss_flat"] is True and two["val_gap_growing"] is False
