"""The Slack bot: Slack's events, slash commands and clicks at ``/slack/events``, answered in threads.

Configured by ``SLACK_BOT_TOKEN`` and ``SLACK_SIGNING_SECRET`` (in the app config, as
``ASSISTANT_SLACK_*`` or under their standard names in the environment) and ``SLACK_API_URL``
for another Web API host. Without a bot token nothing here is set up and ``slack_bolt`` is
never imported; without a signing secret no HTTP endpoint is served, since no request
could be verified (Socket Mode still works).
"""
from __future__ import annotations

import os
import re

import click
from flask import Blueprint, Flask, Response, current_app, request
from flask.cli import with_appcontext

from ...errors import ApiError

#: Where the bot (``bot.Bot``) is kept on the Flask app.
EXTENSION = "assistant.slack"
#: Settings Slack's own tools and docs name this way, read from the environment when the config lacks them.
STANDARD_SETTINGS = ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN")
DEFAULTS = {
    "SLACK_API_URL": "https://slack.com/api/",
    # Threads answering turns at once, and the threads of turns with shared files, whose downloads may be
    # slow: apart, so that downloads never hold up other people's replies (benchmarks/slack_workers.py).
    "SLACK_WORKERS": 8,
    "SLACK_DOWNLOAD_WORKERS": 8,
    # How often, and how long, a validation run is waited for.
    "SLACK_RUN_POLL_SECONDS": 5.0,
    "SLACK_RUN_TIMEOUT": 3600.0,
    # How long a stopped process's unposted verdicts wait before another process takes them over.
    "SLACK_RUN_LEASE_SECONDS": 60.0,
}

#: Slack's request timestamp: seconds since 1970, in ASCII digits.
TIMESTAMP = re.compile(r"[0-9]{1,12}")

bp = Blueprint("slack", __name__)


@bp.post("/slack/events")
def events() -> Response:
    """Events, slash commands and interactivity all arrive here; Bolt verifies and routes them.

    A timestamp that is no number is refused here: Bolt's signature check would fail on it with
    an exception instead of an answer.
    """
    if not TIMESTAMP.fullmatch(request.headers.get("X-Slack-Request-Timestamp", "")):
        raise ApiError(401, "unauthorized", "send X-Slack-Request-Timestamp, in seconds, with X-Slack-Signature")
    return current_app.extensions[EXTENSION].handler.handle(request)


def init_app(app: Flask) -> None:
    """Set up the bot when a bot token is configured; otherwise leave the app as it is."""
    for name in STANDARD_SETTINGS:
        value = app.config.get(name) or os.environ.get(name)
        app.config[name] = None if value is None else str(value)  # an all-digit secret is not a number
    for name, value in DEFAULTS.items():
        app.config.setdefault(name, value)
    if not app.config["SLACK_BOT_TOKEN"]:
        return
    from .bot import build  # slack_bolt is an optional dependency: the "slack" extra

    app.extensions[EXTENSION] = build(app)
    if app.config["SLACK_SIGNING_SECRET"]:
        app.register_blueprint(bp)


@click.command("slack-socket")
@with_appcontext
def socket_command() -> None:
    """Answer Slack over Socket Mode, for workspaces without a public URL: one process, needs SLACK_APP_TOKEN."""
    bot = current_app.extensions.get(EXTENSION)
    if bot is None:
        raise click.ClickException("set SLACK_BOT_TOKEN (the app's xoxb- bot token) to connect to Slack")
    app_token = current_app.config["SLACK_APP_TOKEN"]
    if not app_token:
        raise click.ClickException("set SLACK_APP_TOKEN (an xapp- app-level token with connections:write)")
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    click.echo("Connecting to Slack over Socket Mode; Ctrl+C stops.")
    try:
        SocketModeHandler(bot.app, app_token).start()
    finally:
        bot.close()
