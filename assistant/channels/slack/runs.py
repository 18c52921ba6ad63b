"""Validation runs from Slack: the form's fields, and the run followed in one message that ends as its verdict.

The run itself trains in the reproduction workers (:mod:`assistant.repro`), never in a web
process or Bolt's threads. Here a watcher thread per run asks for its status until it ends,
shows its progress in the message the run was started with, and replaces it with the verdict;
the plot and the re-ranked causes follow.
The verdict owed is a database row (``store.owe_report``) that the watcher holds on a lease it
keeps renewing; every process with the bot also sweeps for lapsed leases, so when a web process
stops mid-run (a deploy, a crash) another one takes the report over and the thread still gets
its verdict, once, in the message that showed the run's progress (kept with the report).
"""
from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from flask import Flask
from slack_sdk import WebClient

from ... import db, kb, repro
from ...kb import KnowledgeBase
from ...repro.spec import IncompleteFacts, SpecError, build, run_names
from . import blocks, store
from .store import Report, Thread

log = logging.getLogger(__name__)

#: The facts a run of the user's setup is built from (assistant/repro/spec.py), in the order the form asks them.
RUN_FACTS = ("task", "n_features", "n_classes", "n_samples", "n_hidden_layers", "hidden_activation",
             "output_activation", "optimizer", "learning_rate", "loss", "batch_size", "epochs")


def form_fields(knowledge: KnowledgeBase, values: Mapping[str, Any]) -> tuple[list[tuple[str, Any, bool]], list[str]]:
    """The run form's fields, ``(fact, known value, required)``, the facts a run cannot do without first;
    and, when none is missing, what the run would assume for the facts still unknown."""
    try:
        spec = build(run_names(knowledge.keras), values)
    except IncompleteFacts as incomplete:
        missing, assumed = incomplete.missing, []
    except SpecError:  # a value a run cannot use: the form shows it, to be changed
        missing, assumed = [], []
    else:
        missing, assumed = [], list(spec.notes)
    keys = dict.fromkeys([*missing, *RUN_FACTS])
    return [(key, values.get(key), key in missing) for key in keys if key in knowledge.vocabulary], assumed


def watch(app: Flask, client: WebClient, stopping: threading.Event, thread: Thread, conversation_id: str,
          owner: str, run_id: str, *, message_ts: str | None) -> None:
    """Owe the run's verdict to ``thread`` and follow the run from a thread of its own: its progress in the
    message ``message_ts``, which becomes the verdict."""
    holder = _holder()
    report = store.owe_report(thread, conversation_id, owner, run_id, holder=holder, lease=_lease(app),
                              message_ts=message_ts)
    _start(app, client, stopping, report, holder)


def sweep(app: Flask, client: WebClient, stopping: threading.Event) -> None:
    """Until ``stopping`` is set, take over the reports whose watchers' processes have stopped
    (and forget the Slack deliveries too old to be retried)."""
    lease = _lease(app)
    while not stopping.wait(lease.total_seconds() / 2):
        holder = _holder()
        try:
            with app.app_context():
                store.forget_old_deliveries()
                reports = store.take_over_lapsed(holder=holder, lease=lease)
        except Exception:  # the database may be away for a while; the next sweep tries again
            log.exception("could not look for Slack run reports to take over")
            continue
        for report in reports:
            log.info("taking over the Slack report of run %s", report.run_id)
            _start(app, client, stopping, report, holder)


def _holder() -> str:
    return uuid.uuid4().hex


def _lease(app: Flask) -> timedelta:
    """The configured lease, and never under three polls: a watcher renews it once a poll."""
    config = app.config
    return timedelta(seconds=max(config["SLACK_RUN_LEASE_SECONDS"], 3 * config["SLACK_RUN_POLL_SECONDS"]))


def _start(app: Flask, client: WebClient, stopping: threading.Event, report: Report, holder: str) -> None:
    threading.Thread(target=_wait_and_post, args=(app, client, stopping, report, holder),
                     name=f"slack-watch-{report.run_id}", daemon=True).start()


def _wait_and_post(app: Flask, client: WebClient, stopping: threading.Event, report: Report, holder: str) -> None:
    """Wait for the run to end, post its verdict and plot, and settle the report.

    When the process is stopping, another process holds the report now, or the database cannot
    be read, the report stays owed: a sweep takes it over once the lease lapses.
    """
    with app.app_context():
        try:
            run = _outcome(app, client, stopping, report, holder)
        except Exception:
            log.exception("could not follow run %s for Slack thread %s", report.run_id, report.thread)
            return
        if run is None:
            return
        try:
            _post(client, report, run)
        except Exception:  # Slack refused it: trying again later would most likely fail the same way
            log.exception("could not report run %s to Slack thread %s", report.run_id, report.thread)
        store.settle(report.run_id, holder=holder)


def _outcome(app: Flask, client: WebClient, stopping: threading.Event, report: Report,
             holder: str) -> dict[str, Any] | None:
    """The run once it has ended (or given up on); None when this watcher is to leave it.

    While it trains, the report's message shows how far it is, changed only when that changes.
    """
    runs, lease = repro.reproductions(), _lease(app)
    deadline = report.created_at + timedelta(seconds=app.config["SLACK_RUN_TIMEOUT"])
    shown = None
    while (run := runs.get(report.conversation_id, report.run_id, report.owner)) is not None \
            and run["status"] not in repro.FINISHED:
        progress = blocks.progress_message(run)
        if report.message_ts is not None and progress.text != shown:
            shown = progress.text
            client.chat_update(channel=report.thread.channel, ts=report.message_ts, text=progress.text,
                               blocks=progress.blocks)
        if db.now() > deadline:
            return {"status": "unfinished", "error": "it took longer than I wait for a short run"}
        if stopping.wait(app.config["SLACK_RUN_POLL_SECONDS"]) or \
                not store.renew(report.run_id, holder=holder, lease=lease):
            return None
    return run or {"status": "lost", "error": f"the run {report.run_id} is no longer known"}


def _post(client: WebClient, report: Report, run: dict[str, Any]) -> None:
    """The verdict in place of the progress (or as a new message, for a report from before messages were
    kept), then the plot of the losses and the causes re-ranked on what the run measured, when the run is done."""
    thread = report.thread
    message = blocks.run_message(kb.current(), run)
    if report.message_ts is None:
        client.chat_postMessage(channel=thread.channel, thread_ts=thread.ts, text=message.text, blocks=message.blocks)
    else:
        client.chat_update(channel=thread.channel, ts=report.message_ts, text=message.text, blocks=message.blocks)
    if run["status"] != "done":
        return
    picture = repro.reproductions().plot(report.conversation_id, report.run_id, report.owner)
    if picture:
        client.files_upload_v2(channel=thread.channel, thread_ts=thread.ts, file=picture,
                               filename="short-run-loss.png", title="Loss during the short run")
    ranking = blocks.ranking_message((run.get("result") or {}).get("causes") or [])
    client.chat_postMessage(channel=thread.channel, thread_ts=thread.ts, text=ranking.text, blocks=ranking.blocks)
