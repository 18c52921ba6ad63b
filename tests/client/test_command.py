"""``assistant diagnose``: in-process or against a service on loopback; clear errors, never a traceback."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner, Result

from assistant.cli import main
from tests.helpers import refused_url, serving

LOG = "epoch,loss,val_loss\n0,0.69,0.70\n1,2.5,3.1\n2,nan,nan\n"


@pytest.fixture
def files(tmp_path):
    (tmp_path / "training.log").write_text(LOG)
    (tmp_path / "dataset.json").write_text(json.dumps({"task": "binary_classification", "n_classes": 2}))
    (tmp_path / "training.json").write_text(json.dumps({"optimizer": "adam", "learning_rate": 0.5}))
    return tmp_path


def run(*args: str, tmp_path) -> Result:
    # In-process, the command uses the app `assistant serve` would serve: here on a scratch database.
    env = {"ASSISTANT_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite'}"}
    return CliRunner().invoke(main, ["diagnose", *args], env=env)


def test_in_process_prints_the_causes_readably(files):
    result = run(str(files / "training.log"), "--symptom", "loss turns nan", "--dataset", str(files / "dataset.json"),
                 "--training", str(files / "training.json"), tmp_path=files)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("What I see: ")
    assert "\n\n1. Learning rate too high (" in result.output
    assert "   - loss became nan at epoch 3\n" in result.output
    assert "```python\nimport keras\n" in result.output and "learning_rate=0.001" in result.output
    assert "conversation conv-" in result.output


def test_json_prints_the_api_reply(files):
    result = run(str(files / "training.log"), "-s", "loss turns nan", "--json", tmp_path=files)
    assert result.exit_code == 0, result.output
    reply = json.loads(result.output)
    assert set(reply) == {"id", "reply"} and reply["reply"]["causes"]


def test_against_a_running_service(files, app):
    with serving(app) as url:
        result = run(str(files / "training.log"), "-s", "loss turns nan", "--url", url, "--json", tmp_path=files)
    assert result.exit_code == 0, result.output
    conversation = json.loads(result.output)["id"]
    assert app.test_client().get(f"/api/v1/conversations/{conversation}").status_code == 200


def test_errors_are_one_line_each(files):
    with refused_url() as url:
        unreachable = run(str(files / "training.log"), "-s", "x", "--url", url, tmp_path=files)
    assert unreachable.exit_code == 1
    assert unreachable.output.startswith(f"Error: could not reach the service at {url}")

    (files / "fast.json").write_text(json.dumps({"learning_rate": "fast"}))
    refused = run(str(files / "training.log"), "-s", "x", "--training", str(files / "fast.json"), tmp_path=files)
    assert refused.exit_code == 1
    assert refused.output == 'Error: training.learning_rate: expected a number of at least 0, got "fast" (400 bad_input)\n'

    not_json = run(str(files / "training.log"), "-s", "x", "--dataset", str(files / "training.log"), tmp_path=files)
    assert not_json.exit_code == 2 and "Invalid value for --dataset: " in not_json.output

    missing = run(str(files / "nowhere.csv"), "-s", "x", tmp_path=files)
    assert missing.exit_code == 2 and "does not exist" in missing.output

    for result in (unreachable, refused, not_json, missing):
        assert "Traceback" not in result.output
        assert isinstance(result.exception, SystemExit)  # click's own exit, not an error escaping


def reply(*args: str, tmp_path) -> Result:
    env = {"ASSISTANT_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite'}"}
    return CliRunner().invoke(main, ["reply", *args], env=env)


def test_reply_answers_the_questions_with_facts_and_words(files):
    started = json.loads(run(str(files / "training.log"), "-s", "loss turns nan", "--json", tmp_path=files).output)
    asked = [question["fact"] for question in started["reply"]["questions"]]
    assert "learning_rate" in asked or "optimizer" in asked, asked
    answered = reply(started["id"], "I use adam", "--fact", "learning_rate=0.5", "--fact", "batch_size = 32",
                     "--json", tmp_path=files)
    assert answered.exit_code == 0, answered.output
    assert json.loads(answered.output)["reply"]["causes"][0]["id"] == "learning_rate_too_high"
    printed = reply(started["id"], "--fact", "optimizer=adam", tmp_path=files)
    assert printed.exit_code == 0 and printed.output.startswith("What I see: ")
    assert f"conversation {started['id']}" in printed.output


def test_reply_refusals_are_one_line(files):
    started = json.loads(run(str(files / "training.log"), "-s", "loss turns nan", "--json", tmp_path=files).output)
    nothing = reply(started["id"], tmp_path=files)
    assert nothing.exit_code == 2 and "give an answer in words, or --fact KEY=VALUE" in nothing.output
    malformed = reply(started["id"], "--fact", "learning_rate", tmp_path=files)
    assert malformed.exit_code == 2 and "'learning_rate' is not KEY=VALUE" in malformed.output
    refused = reply(started["id"], "--fact", "learning_rate=fast", tmp_path=files)
    assert refused.exit_code == 1 and refused.output.startswith("Error: facts.learning_rate: expected a number")
    missing = reply("conv-" + "0" * 32, "--fact", "learning_rate=0.1", tmp_path=files)
    assert missing.exit_code == 1 and "no conversation conv-" in missing.output
