"""The ``assistant`` command: serve the app and administer its data."""
from __future__ import annotations

import os
import sys

import click
from flask.cli import ScriptInfo

from . import create_app, db, security
from .channels import slack
from .client.command import diagnose_command, feedback_command, reply_command
from .knowledge import kb_command


@click.group()
@click.pass_context
def main(ctx: click.Context) -> None:
    """Diagnose why a Keras model is not learning."""
    # Commands marked with flask.cli.with_appcontext find the app through this.
    ctx.obj = ScriptInfo(create_app=create_app, set_debug_flag=False)


@main.command(context_settings={"ignore_unknown_options": True})
@click.option("--bind", "-b", help="host:port to listen on  [default: ASSISTANT_BIND, else 127.0.0.1:8000]")
@click.option("--workers", "-w", type=int, help="Worker processes  [default: ASSISTANT_WORKERS, else one per core]")
@click.option("--threads", type=int, help="Threads per worker  [default: ASSISTANT_THREADS, else 8]")
@click.option("--dev", is_flag=True, help="Use Flask's development server instead: one process, for working on the code.")
@click.argument("gunicorn_options", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
def serve(info: ScriptInfo, bind: str | None, workers: int | None, threads: int | None, dev: bool,
          gunicorn_options: tuple[str, ...]) -> None:
    """Serve the app under gunicorn with threaded workers (settings in assistant.serving).

    Further options go to gunicorn as they are, e.g. ``assistant serve --timeout 120``.
    """
    if dev:
        from . import serving  # gunicorn's settings module: its bind default is the one to use

        host, _, port = (bind or serving.bind).rpartition(":")
        info.load_app().run(host=host, port=int(port))
        return
    chosen = [f"--{name}={value}" for name, value in (("bind", bind), ("workers", workers), ("threads", threads))
              if value is not None]
    # gunicorn takes over this process: its master then answers signals from a supervisor directly.
    os.execv(sys.executable, [sys.executable, "-m", "gunicorn", "--config", "python:assistant.serving", *chosen,
                              *gunicorn_options])


main.add_command(db.init_db_command)
main.add_command(db.new_migration_command)
main.add_command(security.new_token_command)
main.add_command(kb_command)
main.add_command(slack.socket_command)
main.add_command(diagnose_command)
main.add_command(reply_command)
main.add_command(feedback_command)
