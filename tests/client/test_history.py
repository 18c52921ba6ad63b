"""Whatever history a notebook holds becomes the API's ``metrics``; one without epochs gets a clear message."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from assistant.client import InputError
from assistant.client.history import metrics_payload

CSV = "epoch,loss,val_loss\n0,0.69,0.70\n1,0.52,0.61\n"


class History:
    """What ``model.fit`` returns, as far as the client looks at it."""

    def __init__(self, history):
        self.history = history


def test_history_dicts_become_plain_lists():
    sent = metrics_payload(History({"loss": [np.float32(0.5), np.float64("nan")], "lr": np.array([0.1, 0.1])}))
    assert sent["loss"][0] == 0.5 and type(sent["loss"][0]) is float and math.isnan(sent["loss"][1])
    assert sent["lr"] == [0.1, 0.1]


def test_a_dataframe_keeps_its_columns():
    frame = pd.read_csv(__import__("io").StringIO(CSV))
    assert metrics_payload(frame) == {"epoch": [0, 1], "loss": [0.69, 0.52], "val_loss": [0.70, 0.61]}


def test_per_epoch_records():
    assert metrics_payload([{"epoch": np.int64(0), "loss": np.float32(0.5)}]) == [{"epoch": 0, "loss": 0.5}]


def test_a_path_is_read_and_text_is_sent_as_it_is(tmp_path):
    log = tmp_path / "training.log"
    log.write_text(CSV)
    assert metrics_payload(log) == metrics_payload(str(log)) == CSV
    assert metrics_payload(CSV) == CSV


@pytest.mark.parametrize("history", [History({}), History({"loss": []}), {"loss": [], "val_loss": []}, [],
                                     pd.DataFrame({"loss": []})], ids=["no-keys", "no-values", "dict", "list", "frame"])
def test_a_history_without_epochs(history):
    with pytest.raises(InputError, match="history: it has no epochs yet"):
        metrics_payload(history)


def test_files_that_cannot_be_read(tmp_path):
    with pytest.raises(InputError, match="there is no file .*missing.csv"):
        metrics_payload(tmp_path / "missing.csv")
    with pytest.raises(InputError, match="is a directory"):
        metrics_payload(tmp_path)
    (tmp_path / "model.h5").write_bytes(b"\x89HDF\r\n\x1a\n\xff\xfe")
    with pytest.raises(InputError, match="is not a text file"):
        metrics_payload(tmp_path / "model.h5")
    (tmp_path / "empty.csv").write_text("\n")
    with pytest.raises(InputError, match="empty.csv is empty"):
        metrics_payload(tmp_path / "empty.csv")


def test_things_that_are_not_histories():
    with pytest.raises(InputError, match="expected a Keras History, .* got int"):
        metrics_payload(3)
    with pytest.raises(InputError, match="'loss' should be a list of per-epoch values, got float"):
        metrics_payload({"loss": 0.5})
