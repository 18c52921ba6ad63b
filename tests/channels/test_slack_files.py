"""Shared files: what each kind of file stands for, and which hosts the bot token is sent to."""
import json

import pytest

from assistant.channels.slack.files import Refused, _is_slack, classify
from assistant.evidence import gather
from tests.helpers import shipped_kb

CSVLOGGER = "epoch,accuracy,loss,val_accuracy,val_loss\n0,0.5,0.6931,0.5,0.6932\n1,0.5,0.6931,0.5,0.6932\n"
TENSORBOARD = "Wall time,Step,Value\n1700000000.1,0,0.69\n1700000001.1,1,0.69\n"
SAMPLE = "x1;x2;label\n0.1;0.2;0\n0.3;0.1;1\n"
CONSOLE = "".join(f"Epoch {e}/2\n32/32 - 0s - loss: 0.6931 - accuracy: 0.5000\n" for e in (1, 2))
DATASET = {"task": "binary_classification", "n_samples": 1000, "class_counts": {"0": 900, "1": 100}}


@pytest.mark.parametrize(("name", "content", "expected"), [
    ("training.log", CSVLOGGER, {"metrics": CSVLOGGER, "metrics_filename": "training.log"}),
    ("run-tag-epoch_loss.csv", TENSORBOARD, {"metrics": TENSORBOARD, "metrics_filename": "run-tag-epoch_loss.csv"}),
    ("sample.csv", SAMPLE, {"sample": SAMPLE.encode()}),
    ("paste.txt", CONSOLE, {"metrics": CONSOLE, "metrics_filename": "paste.txt"}),
    ("summary.json", json.dumps(DATASET), {"dataset": DATASET}),
    ("history.json", json.dumps({"loss": [0.69, 0.69]}), {"metrics": {"loss": [0.69, 0.69]}}),
    ("monitor.json", json.dumps({"epoch": 3, "loss": 0.69}), {"metrics": {"epoch": 3, "loss": 0.69}}),
    ("body.json", json.dumps({"symptom": "ignored", "dataset": DATASET, "training": {"optimizer": "adam"}}),
     {"dataset": DATASET, "training": {"optimizer": "adam"}}),
])
def test_each_kind_of_file_becomes_the_input_an_api_upload_gives(name, content, expected):
    inputs = classify(shipped_kb(), name, content.encode())
    assert inputs == expected
    gather(shipped_kb(), **inputs)  # and the evidence path reads it


@pytest.mark.parametrize(("content", "reason"), [
    (b"\x89PNG\r\n\x1a\n\xff", "it is not a text file; I read CSV, JSON and log files."),
    (b"  \n", "it is empty."),
    (b'{"loss": [0.6,', "it is not valid JSON: Expecting value: line 1 column 15 (char 14)."),
])
def test_unreadable_files_are_refused(content, reason):
    with pytest.raises(Refused) as refused:
        classify(shipped_kb(), "f", content)
    assert str(refused.value) == reason


@pytest.mark.parametrize(("url", "allowed"), [
    ("https://files.slack.com/files-pri/T1-F1/download/a.csv", True),
    ("https://slack.com/x", True),
    ("http://127.0.0.1:8080/files-pri/a.csv", True),  # the configured Web API host
    ("https://files.slack.com.example.org/a.csv", False),
    ("https://example.org/files.slack.com/a.csv", False),
])
def test_the_bot_token_goes_only_to_slack(url, allowed):
    assert _is_slack(url, "http://127.0.0.1:8080/api/") is allowed
