"""``assistant diagnose``: a training history file diagnosed from a terminal, against a service or in-process."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from flask.cli import ScriptInfo

from .client import Client
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


@click.command("diagnose")
@click.argument("history_file", type=_FILE)
@click.option("--symptom", "-s", required=True, help="What goes wrong, in your own words.")
@click.option("--dataset", "dataset_file", type=_FILE, help="A JSON file with the dataset summary (fact keys).")
@click.option("--training", "training_file", type=_FILE, help="A JSON file with the training configuration.")
@click.option("--url", envvar="ASSISTANT_URL", metavar="URL",
              help="A running service. Without it the diagnosis runs in this process, on this app's database.")
@click.option("--token", envvar="ASSISTANT_TOKEN", help="An API token, when the service has them.")
@click.option("--timeout", type=float, default=30.0, show_default=True, help="Seconds to wait for the service.")
@click.option("--json", "as_json", is_flag=True, help="Print the API's reply as JSON instead.")
@click.pass_obj
def diagnose_command(info: ScriptInfo, history_file: Path, symptom: str, dataset_file: Path | None,
                     training_file: Path | None, url: str | None, token: str | None, timeout: float,
                     as_json: bool) -> None:
    """Diagnose HISTORY_FILE: a CSVLogger file, a saved console log, or history.history as JSON."""
    dataset = _facts_file(dataset_file, "--dataset")
    training = _facts_file(training_file, "--training")
    client = Client(url, token=token, timeout=timeout) if url else Client.in_process(info.load_app(), token=token)
    try:
        diagnosis = client.diagnose(symptom, history=history_file, dataset=dataset, training=training)
    except ClientError as error:
        raise click.ClickException(str(error)) from None
    click.echo(json.dumps(diagnosis.response, indent=2) if as_json else str(diagnosis))
