"""Validation runs from Slack: once a run ends, its verdict and plot are posted into the thread it was started from.

The run itself trains in the reproduction workers (:mod:`assistant.repro`), never in a web
process or Bolt's threads. Here a watcher thread per run asks for its status until it ends.
"""
from __future__ import annotations

import logging
import threading
import time

from flask import Flask
from slack_sdk import WebClient

from ... import repro
from . import blocks
from .store import Thread

log = logging.getLogger(__name__)

FINISHED = frozenset({"done", "failed", "cancelled"})


def watch(app: Flask, client: WebClient, thread: Thread, conversation_id: str, owner: str, run_id: str) -> None:
    """Post the run's verdict and plot into the thread once it ends, from a thread of its own."""
    threading.Thread(target=_wait_and_post, args=(app, client, thread, conversation_id, owner, run_id),
                     name=f"slack-watch-{run_id}", daemon=True).start()


def _wait_and_post(app: Flask, client: WebClient, thread: Thread, conversation_id: str, owner: str,
                   run_id: str) -> None:
    with app.app_context():
        runs = repro.reproductions()
        deadline = time.monotonic() + app.config["SLACK_RUN_TIMEOUT"]
        try:
            while (run := runs.get(conversation_id, run_id, owner)) is not None and run["status"] not in FINISHED:
                if time.monotonic() > deadline:
                    run = {"status": "unfinished", "error": "it took longer than I wait for a short run"}
                    break
                time.sleep(app.config["SLACK_RUN_POLL_SECONDS"])
            message = blocks.run_message(run or {"status": "lost", "error": f"the run {run_id} is no longer known"})
            client.chat_postMessage(channel=thread.channel, thread_ts=thread.ts, text=message.text,
                                    blocks=message.blocks)
            picture = runs.plot(conversation_id, run_id, owner) if run and run["status"] == "done" else None
            if picture:
                client.files_upload_v2(channel=thread.channel, thread_ts=thread.ts, file=picture,
                                       filename=f"{run_id}.png", title="Loss during the short run")
        except Exception:
            log.exception("could not report run %s to Slack thread %s", run_id, thread)
