"""Validation runs from Slack: start one for a thread's conversation, then post its verdict and plot when it ends.

The run itself trains in the reproduction workers (``assistant.repro``), never in a web
process or Bolt's threads. Here a watcher thread per run asks for its status until it ends.
"""
from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from flask import Flask
from slack_sdk import WebClient

from . import blocks
from .store import Thread

log = logging.getLogger(__name__)

#: Where the reproduction backend registers itself on the Flask app.
EXTENSION = "assistant.repro"
FINISHED = frozenset({"done", "failed", "cancelled"})


class Reproductions(Protocol):
    """What the bot needs from reproduction runs: the contract's two calls, in process."""

    def start(self, conversation_id: str, owner: str | None) -> Mapping[str, Any]:
        """Queue a run for the conversation; ``{"id", "status"}``."""

    def get(self, conversation_id: str, run_id: str, owner: str | None) -> Mapping[str, Any] | None:
        """The run as the contract shows it (``status``, ``progress``, ``result``), or None if unknown."""


def backend(app: Flask) -> Reproductions | None:
    """The app's reproduction runs, or None where this deployment has none (then no button is shown)."""
    return app.extensions.get(EXTENSION)


def watch(app: Flask, client: WebClient, thread: Thread, conversation_id: str, owner: str | None,
          run_id: str) -> threading.Thread:
    """Post the run's verdict and plot into the thread once it ends, from a thread of its own."""
    watcher = threading.Thread(target=_wait_and_post, args=(app, client, thread, conversation_id, owner, run_id),
                               name=f"slack-watch-{run_id}", daemon=True)
    watcher.start()
    return watcher


def _wait_and_post(app: Flask, client: WebClient, thread: Thread, conversation_id: str, owner: str | None,
                   run_id: str) -> None:
    with app.app_context():
        runs = backend(app)
        deadline = time.monotonic() + app.config["SLACK_RUN_TIMEOUT"]
        try:
            while (run := runs.get(conversation_id, run_id, owner)) is not None and run["status"] not in FINISHED:
                if time.monotonic() > deadline:
                    run = {"status": "unfinished", "error": "it took longer than I wait for a short run"}
                    break
                time.sleep(app.config["SLACK_RUN_POLL_SECONDS"])
            run = run or {"status": "lost", "error": f"the run {run_id} is no longer known"}
            message = blocks.run_message(run)
            client.chat_postMessage(channel=thread.channel, thread_ts=thread.ts, text=message.text,
                                    blocks=message.blocks)
            experiments = (run.get("result") or {}).get("experiments") or []
            if run["status"] == "done" and experiments:
                client.files_upload_v2(channel=thread.channel, thread_ts=thread.ts, file=plot(experiments),
                                       filename=f"{run_id}.png", title="Loss during the short run")
        except Exception:
            log.exception("could not report run %s to Slack thread %s", run_id, thread)


def plot(experiments: Sequence[Mapping[str, Any]]) -> bytes:
    """A PNG of every experiment's training (solid) and validation (dashed) loss by epoch."""
    from matplotlib.figure import Figure  # imported on first use: the web tier rarely needs it

    figure = Figure(figsize=(7, 4), dpi=100)
    axes = figure.subplots()
    for n, experiment in enumerate(experiments):
        history = experiment.get("history") or {}
        color = f"C{n}"
        for key, style in (("loss", "-"), ("val_loss", "--")):
            values = history.get(key) or []
            epochs = history.get("epoch") or range(1, len(values) + 1)
            points = [(e, v) for e, v in zip(epochs, values) if isinstance(v, (int, float))]
            if points:
                axes.plot(*zip(*points), style, color=color, label=f"{experiment.get('name', n)} {key}")
    axes.set_xlabel("epoch")
    axes.set_ylabel("loss")
    if axes.lines:
        axes.legend(fontsize="small")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    return buffer.getvalue()
