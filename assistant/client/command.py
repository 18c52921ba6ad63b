"""``assistant diagnose`` and ``assistant reply``: a training history diagnosed from a terminal, and the
conversation's questions answered there, against a service or in-process."""
from __future__ import annotations

import json
from pathlib import Path
from collections.abc import Callable
from typing import Any

import click
from flask.cli import ScriptInfo

from .client import VERDICTS, Client
from .display import Diagnosis
from .errors import ClientError

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


def _facts_file(path: Path | None, option: str) -> dict[str, Any] | None:
    """A JSON object of facts from a file, or a usage error naming the option."""
    if path is None:
        return None
    try:
        facts = json.loads(path.read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise click.BadParameter(f"{path} is not JSON text: {exc}", param_hint=option) from None
    if not isinstance(facts, dict):
        raise click.BadParameter(f"{path} should hold a JSON object of facts, like {{\"n_classes\": 2}}",
                                 param_hint=option)
    return facts


def _service_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Where the diagnosis runs and how it is printed: the options every command here shares."""
    for option in reversed((
        click.option("--url", envvar="ASSISTANT_URL", metavar="URL",
                     help="A running service. Without it the diagnosis runs in this process, on this app's database."),
        click.option("--token", envvar="ASSISTANT_TOKEN", help="An API token, when the service has them."),
        click.option("--timeout", type=float, default=30.0, show_default=True, help="Seconds to wait for the service."),
        click.option("--json", "as_json", is_flag=True, help="Print the API's reply as JSON instead."),
    )):
        command = option(command)
    return command


def _client(info: ScriptInfo, url: str | None, token: str | None, timeout: float) -> Client:
    """The service at ``url``, or this process's app (its database) without one."""
    return Client(url, token=token, timeout=timeout) if url else Client.in_process(info.load_app(), token=token)


def _answer(info: ScriptInfo, url: str | None, token: str | None, timeout: float, as_json: bool,
            ask: Callable[[Client], Diagnosis]) -> None:
    """Ask the service (or this process's app) and print its reply; a refusal is one line, never a traceback."""
    client = _client(info, url, token, timeout)
    try:
        diagnosis = ask(client)
    except ClientError as error:
        raise click.ClickException(str(error)) from None
    click.echo(json.dumps(diagnosis.response, indent=2) if as_json else str(diagnosis))


@click.command("diagnose")
@click.argument("history_file", type=_FILE)
@click.option("--symptom", "-s", required=True, help="What goes wrong, in your own words.")
@click.option("--dataset", "dataset_file", type=_FILE, help="A JSON file with the dataset summary (fact keys).")
@click.option("--training", "training_file", type=_FILE, help="A JSON file with the training configuration.")
@_service_options
@click.pass_obj
def diagnose_command(info: ScriptInfo, history_file: Path, symptom: str, dataset_file: Path | None,
                     training_file: Path | None, url: str | None, token: str | None, timeout: float,
                     as_json: bool) -> None:
    """Diagnose HISTORY_FILE: a CSVLogger file, a saved console log, or history.history as JSON."""
    dataset = _facts_file(dataset_file, "--dataset")
    training = _facts_file(training_file, "--training")
    _answer(info, url, token, timeout, as_json,
            lambda client: client.diagnose(symptom, history=history_file, dataset=dataset, training=training))


def _fact(context: click.Context, parameter: click.Parameter, pairs: tuple[str, ...]) -> dict[str, str]:
    """``--fact learning_rate=0.5`` pairs as a mapping; the service reads each value as its fact's type."""
    facts = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        if not equals or not key.strip():
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE, e.g. learning_rate=0.5", param=parameter)
        facts[key.strip()] = value.strip()
    return facts


@click.command("reply")
@click.argument("conversation_id")
@click.argument("text", required=False)
@click.option("--fact", "facts", multiple=True, callback=_fact, metavar="KEY=VALUE",
              help="Answer a question: the fact it asks for, e.g. --fact n_classes=10 (repeat for more).")
@_service_options
@click.pass_obj
def reply_command(info: ScriptInfo, conversation_id: str, text: str | None, facts: dict[str, str], url: str | None,
                  token: str | None, timeout: float, as_json: bool) -> None:
    """Answer CONVERSATION_ID's questions: in words (TEXT), as facts (--fact KEY=VALUE), or both."""
    if not text and not facts:
        raise click.UsageError("give an answer in words, or --fact KEY=VALUE for a question's fact")
    _answer(info, url, token, timeout, as_json, lambda client: client.reply(conversation_id, text, facts=facts))


@click.command("feedback")
@click.argument("conversation_id")
@click.argument("cause")
@click.argument("verdict", type=click.Choice(VERDICTS))
@click.option("--comment", help="What happened, in a few words.")
@_service_options
@click.pass_obj
def feedback_command(info: ScriptInfo, conversation_id: str, cause: str, verdict: str, comment: str | None,
                     url: str | None, token: str | None, timeout: float, as_json: bool) -> None:
    """Say whether fixing CAUSE (any cause id, listed or not) fixed CONVERSATION_ID's model: fixed or not_helpful."""
    try:
        stored = _client(info, url, token, timeout).feedback(conversation_id, cause, verdict, comment)
    except ClientError as error:
        raise click.ClickException(str(error)) from None
    click.echo(json.dumps(stored, indent=2) if as_json else f"recorded: {cause} {verdict.replace('_', ' ')}")
