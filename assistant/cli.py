"""The ``assistant`` command: serve the app and administer its data."""
from __future__ import annotations

import click
from flask.cli import ScriptInfo

from . import create_app, db
from .channels import slack
from .client.command import diagnose_command
from .reasoning.knowledge import kb_command


@click.group()
@click.pass_context
def main(ctx: click.Context) -> None:
    """Diagnose why a Keras model is not learning."""
    # Commands marked with flask.cli.with_appcontext find the app through this.
    ctx.obj = ScriptInfo(create_app=create_app, set_debug_flag=False)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="The interface to listen on.")
@click.option("--port", default=5000, show_default=True, help="The port to listen on.")
@click.pass_obj
def serve(info: ScriptInfo, host: str, port: int) -> None:
    """Serve the API with Flask's development server."""
    info.load_app().run(host=host, port=port)


main.add_command(db.init_db_command)
main.add_command(kb_command)
main.add_command(slack.socket_command)
main.add_command(diagnose_command)
