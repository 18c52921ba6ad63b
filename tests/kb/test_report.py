"""`assistant kb report`: per cause, feedback that confirmed and rejected it, and the rules behind a rejected leader."""
from __future__ import annotations

from click.testing import CliRunner

from assistant.cli import main

API = "/api/v1/conversations"
SURE = {"symptom": "the loss becomes nan after a few epochs", "metrics": {"loss": [2.3, 1.9, "nan", "nan"]},
        "training": {"optimizer": "adam", "learning_rate": 0.5}}


def test_the_report_counts_verdicts_and_names_the_rules_of_a_rejected_leader(make_app, database_url):
    client = make_app().test_client()
    for cause, verdict in [("learning_rate_too_high", "not_helpful"), ("learning_rate_too_high", "not_helpful"),
                           ("learning_rate_too_high", "fixed"), ("missing_values", "fixed")]:
        conversation = client.post(API, json=SURE).get_json()["id"]
        client.post(f"{API}/{conversation}/feedback", json={"cause": cause, "verdict": verdict})

    result = CliRunner().invoke(main, ["kb", "report"], env={"ASSISTANT_DATABASE_URL": database_url,
                                                             "ASSISTANT_REPRO_SWEEP": "false"})
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line.split()[1:] for line in result.output.splitlines()[1:3]}
    assert rows == {"learning_rate_too_high": ["1", "2", "2"], "missing_values": ["1", "0", "0"]}
    assert ("learning_rate_too_high ranked first and rejected in 2 conversation(s); the supporting rules that held "
            "there:") in result.output
    assert ("     2  learning_rate_too_high supports[0]: learning rate {learning_rate} is far above the usual 0.001 "
            "for {optimizer}") in result.output
    assert "contradicts" not in result.output
