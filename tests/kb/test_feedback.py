"""Feedback moves between deployments as JSON lines: facts and labels, the user's words only when asked for."""
from __future__ import annotations

import json

from click.testing import CliRunner

from assistant.cli import main
from assistant.kb import feedback

API = "/api/v1/conversations"
SYMPTOM = "my secret project: the loss becomes nan after a few epochs"
REQUEST = {"symptom": SYMPTOM, "metrics": {"loss": [2.3, 1.9, "nan", "nan"]},
           "training": {"optimizer": "adam", "learning_rate": 0.5}}


def _kb(database_url: str, *args: str):
    return CliRunner().invoke(main, ["kb", *args], env={"ASSISTANT_DATABASE_URL": database_url,
                                                                       "ASSISTANT_REPRO_SWEEP": "false"})


def _given(client) -> str:
    conversation = client.post(API, json=REQUEST).get_json()["id"]
    for cause, verdict in (("exploding_gradients", "not_helpful"), ("learning_rate_too_high", "fixed")):
        client.post(f"{API}/{conversation}/feedback", json={"cause": cause, "verdict": verdict,
                                                             "comment": "my secret comment"})
    return conversation


def test_an_export_holds_facts_and_labels_and_no_words_unless_asked(make_app, database_url):
    conversation = _given(make_app().test_client())

    result = _kb(database_url, "export-feedback")
    assert result.exit_code == 0, result.stderr
    [line] = [json.loads(text) for text in result.stdout.splitlines()]
    assert line["conversation"] == conversation
    assert [(f["cause"], f["verdict"]) for f in line["feedback"]] == [("exploding_gradients", "not_helpful"),
                                                                      ("learning_rate_too_high", "fixed")]
    facts = {f["key"]: f["value"] for f in line["facts"]}
    assert facts["learning_rate"] == 0.5 and facts["loss_is_nan"] is True
    assert "secret" not in result.stdout and "note" not in result.stdout and "title" not in line

    with_text = _kb(database_url, "export-feedback", "--with-text")
    [line] = [json.loads(text) for text in with_text.stdout.splitlines()]
    assert line["title"] == SYMPTOM and line["feedback"][0]["comment"] == "my secret comment"
    assert any("you wrote" in (f.get("note") or "") for f in line["facts"])


def test_an_import_stores_the_feedback_once(make_app, database_url, tmp_path):
    _given(make_app().test_client())
    exported = tmp_path / "feedback.jsonl"
    assert _kb(database_url, "export-feedback", str(exported)).exit_code == 0

    other = f"sqlite:///{tmp_path / 'other.sqlite'}"
    make_app(DATABASE_URL=other)  # its schema
    first = _kb(other, "import-feedback", str(exported))
    assert first.exit_code == 0, first.output
    assert "imported 1 conversation(s) with their feedback; 0 already here" in first.stdout
    assert "imported 0 conversation(s) with their feedback; 1 already here" in _kb(
        other, "import-feedback", str(exported)).stdout

    with make_app(DATABASE_URL=other).app_context():
        from assistant import db

        with db.get_engine().connect() as connection:
            reports = feedback.stored(connection)
    assert [(r.cause, r.fixed) for r in reports] == [("exploding_gradients", False), ("learning_rate_too_high", True)]
    assert {f["key"]: f["value"] for f in reports[0].facts}["learning_rate"] == 0.5

    report = _kb(other, "report")
    assert report.exit_code == 0, report.output
    assert any(line.split() == ["learning_rate_too_high", "1", "0", "0"] for line in report.stdout.splitlines())


def test_a_line_that_is_no_export_is_refused_before_anything_is_stored(make_app, database_url, tmp_path):
    make_app()
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"conversation": "conv-1", "facts": [], "feedback": [{"cause": "x", "verdict": "fixed"}]}\n'
                   '{"conversation": "conv-2", "facts": []}\n', encoding="utf-8")
    result = _kb(database_url, "import-feedback", str(bad))
    assert result.exit_code == 1
    assert "line 2: not a conversation with facts and feedback" in result.stderr
    assert _kb(database_url, "export-feedback").stdout == ""
