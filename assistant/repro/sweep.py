"""The sweep: runs whose holder stopped are queued again or failed, whether or not anyone reads them.

Every process that offers runs (web processes, Celery workers) sweeps its backend's runs every
third of a lease (``REPRO_LEASE_SECONDS``) in a thread of its own. A run whose worker died goes
back to the queue, up to ``REPRO_ATTEMPTS`` starts; a Celery run whose process stopped before
sending its task fails (the client never heard it was accepted, and may have asked again). Each
change is a conditional UPDATE, so processes sweeping at once never take the same run twice.
"""
from __future__ import annotations

import logging
import threading
from flask import Flask, current_app
from prometheus_client import Counter

from . import store
from .backends import CeleryBackend, LocalBackend, RunsUnavailable

log = logging.getLogger(__name__)

SWEPT = Counter("assistant_repro_swept", "Runs whose holder stopped, by what the sweep did: requeued or failed.",
                ["action"])


def sweep(backend: LocalBackend | CeleryBackend) -> dict[str, list[str]]:
    """Queue again or fail the backend's runs whose lease lapsed; the ids of each."""
    swept: dict[str, list[str]] = {"requeued": [], "failed": []}
    if backend.name == "local":
        store.keep_queued()  # this process's pool still holds them
    for run in store.lapsed(backend.name):
        error = _why_not_again(run, backend.name)
        if error is not None:
            if store.fail_lapsed(run, error):
                swept["failed"].append(run.id)
        elif store.requeue(run):
            try:
                backend.submit(run.id)
            except RunsUnavailable:  # it stays held here; once the lease lapses, a later sweep fails it
                log.warning("could not queue run %s again: the broker is unreachable", run.id)
                continue
            swept["requeued"].append(run.id)
    for action, ids in swept.items():
        SWEPT.labels(action).inc(len(ids))
        for run_id in ids:
            log.warning("run %s lost its holder and was %s", run_id, action)
    return swept


def _why_not_again(run: store.Lapsed, backend: str) -> str | None:
    """Why a lapsed run fails rather than queue again; None to queue it again."""
    if run.status == "queued" and backend != "local":
        return "the run was never handed to a worker (the process that accepted it stopped); please start it again"
    attempts = current_app.config["REPRO_ATTEMPTS"]
    if run.status == "running" and run.attempts >= attempts:
        return f"the worker running it stopped, {run.attempts} times out of {attempts} attempts"
    return None


def keep_sweeping(app: Flask, backend: LocalBackend | CeleryBackend) -> threading.Event:
    """Sweep every third of a lease in a daemon thread, until the returned event is set."""
    stopping = threading.Event()

    def loop() -> None:
        while not stopping.wait(app.config["REPRO_LEASE_SECONDS"] / 3):
            try:
                with app.app_context():
                    sweep(backend)
            except Exception:  # the database may be away for a while; the next sweep tries again
                log.exception("could not sweep the reproduction runs")

    threading.Thread(target=loop, name="repro-sweep", daemon=True).start()
    return stopping
