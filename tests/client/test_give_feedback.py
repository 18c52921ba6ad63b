"""Feedback from a notebook (``fixed_by``, ``not_helpful``) and from the command line, on any cause the service knows."""
from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from assistant import db
from assistant.cli import main
from assistant.client import Client, InputError, ServiceError
from tests.helpers import serving

HISTORY = {"loss": [2.3, 1.9, float("nan"), float("nan")]}


def _stored(app) -> list[tuple[str, str, str, str | None]]:
    f = db.feedback.c
    with app.app_context(), db.get_engine().connect() as connection:
        return [tuple(row) for row in connection.execute(
            select(f.conversation_id, f.cause_id, f.verdict, f.comment).order_by(f.id))]


def test_a_notebook_says_which_cause_fixed_it_listed_or_not(app):
    with serving(app) as url:
        diagnosis = Client(url).diagnose("the loss turns nan", history=HISTORY)
        listed = [cause["id"] for cause in diagnosis.causes]
        assert "frozen_layers" not in listed
        stored = diagnosis.fixed_by("frozen_layers", comment="unfreezing the base did it")
        assert stored["cause"] == "frozen_layers" and stored["verdict"] == "fixed"
        diagnosis.not_helpful(listed[0])
        with pytest.raises(ServiceError) as refused:
            diagnosis.fixed_by("no_such_cause")
        assert refused.value.status == 400 and "no cause 'no_such_cause'" in str(refused.value)
        with pytest.raises(InputError, match="verdict: 'maybe'"):
            Client(url).feedback(diagnosis, "frozen_layers", "maybe")
    assert _stored(app) == [(diagnosis.id, "frozen_layers", "fixed", "unfreezing the base did it"),
                            (diagnosis.id, listed[0], "not_helpful", None)]


def test_the_command_line_gives_feedback(tmp_path):
    env = {"ASSISTANT_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite'}", "ASSISTANT_REPRO_SWEEP": "false"}
    diagnosis = Client.in_process(_app(env)).diagnose("the loss turns nan", history=HISTORY)

    result = CliRunner().invoke(main, ["feedback", diagnosis.id, "missing_values", "fixed", "--comment", "dropna"],
                                env=env)
    assert result.exit_code == 0, result.output
    assert result.output == "recorded: missing_values fixed\n"
    unknown = CliRunner().invoke(main, ["feedback", diagnosis.id, "no_such_cause", "not_helpful"], env=env)
    assert unknown.exit_code == 1 and "no cause 'no_such_cause'" in unknown.output
    assert _stored(_app(env)) == [(diagnosis.id, "missing_values", "fixed", "dropna")]


def _app(env: dict[str, str]):
    from assistant import create_app

    return create_app({"DATABASE_URL": env["ASSISTANT_DATABASE_URL"], "REPRO_SWEEP": False})
