"""Reproduction runs: short, real Keras training experiments that confirm or refute a diagnosis.

The web process plans a run from the conversation's facts and stores it; a backend trains it
in a separate process (:mod:`.backends`, :mod:`.worker`); the verdict comes back through the
evidence path as the conversation's next turn (:mod:`.verdict`). Nothing here imports
TensorFlow: only the worker process does.
"""
from __future__ import annotations

import os
from typing import Any

from flask import Flask, current_app

from .. import conversations
from ..evidence import gather
from ..kb import current
from . import experiments, store, sweep, verdict
from .store import FINISHED
from .backends import CeleryBackend, LocalBackend, RunsUnavailable
from .spec import Caps, IncompleteFacts, SpecError, build, run_names, sample_data

__all__ = ["FINISHED", "IncompleteFacts", "Reproductions", "RunsUnavailable", "SpecError", "init_app", "reproductions"]

EXTENSION = "assistant.repro"
DEFAULTS: dict[str, Any] = {
    "REPRO_BACKEND": "local",  # local | celery | off
    "REPRO_WORKERS": 1,  # local: jobs run at once
    "REPRO_TIMEOUT": 90,  # wall-clock seconds a job may take, TensorFlow's start-up included
    "REPRO_CPU_SECONDS": 120,
    "REPRO_MEMORY_MB": 2048,
    "REPRO_THREADS": 1,  # TensorFlow threads per experiment
    "REPRO_PROCESSES": min(4, os.cpu_count() or 1),  # experiments of a job trained at once, a process each
    "REPRO_LEASE_SECONDS": 15,  # a run whose holder has not renewed its claim for this long lost it
    "REPRO_ATTEMPTS": 3,  # starts of a run whose worker keeps dying, before it fails
    "REPRO_SWEEP": True,  # this process sweeps for runs whose holder stopped
    "REPRO_METRICS_PORT": 0,  # a Celery worker serves its Prometheus figures on this port (0: not at all)
    "REPRO_MAX_SAMPLES": Caps.samples,
    "REPRO_MAX_EPOCHS": Caps.epochs,
    "REPRO_MAX_PARAMS": Caps.params,
    "REPRO_MAX_STEPS": Caps.steps,
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
    "CELERY_RESULT_BACKEND": "redis://127.0.0.1:6379/0",
}


class Reproductions:
    """A conversation's reproduction runs as every channel uses them: start, get, list, cancel, plot.

    Registered on the app as ``app.extensions["assistant.repro"]`` (absent when runs are off).
    """

    def __init__(self, backend: LocalBackend | CeleryBackend) -> None:
        self.backend = backend

    def start(self, conversation_id: str, owner: str | None, *, model_json: str | None = None,
              sample: str | bytes | None = None) -> dict[str, Any] | None:
        """Plan a run of the conversation's setup and queue it; None when the owner has no such conversation.

        ``model_json`` is an uploaded ``model.to_json()``, ``sample`` CSV rows to train on. Raises
        IncompleteFacts (after the conversation asked for the missing facts), SpecError, or
        RunsUnavailable (the run is stored as failed, with the reason).
        """
        conversation = conversations.load(conversation_id, owner)
        if conversation is None:
            return None
        limits, knowledge = caps(), current()
        values = conversation.facts.values()
        rows = None
        if sample is not None:
            values.update({fact.key: fact.value for fact in gather(knowledge, sample=sample).facts})
            rows = sample_data(sample, limits)
        try:
            history = _last_history(conversation_id, owner)
            spec = build(run_names(knowledge.keras), values, metrics=_tracked_metrics(history), model_json=model_json,
                         sample=rows, caps=limits, history=history)
        except IncompleteFacts as missing:
            missing.reply = conversations.add_findings(conversation_id, owner, {"reproduction": "requested"}, [],
                                                       verdict.ask_for_missing(missing.missing))
            raise
        planned = experiments.plan(spec, conversation.facts, knowledge, limits)
        run = store.create(conversation_id, owner, self.backend.name, [e.to_json() for e in planned],
                           list(spec.notes))
        try:
            self.backend.submit(run["id"])
        except RunsUnavailable as down:
            store.refuse(run["id"], str(down))  # no run stays queued that no worker will ever get
            raise
        return run

    def get(self, conversation_id: str, run_id: str, owner: str | None) -> dict[str, Any] | None:
        return store.find(run_id, conversation_id, owner)

    def list(self, conversation_id: str, owner: str | None) -> list[dict[str, Any]]:
        return store.runs(conversation_id, owner)

    def cancel(self, conversation_id: str, run_id: str, owner: str | None) -> dict[str, Any] | None:
        return store.cancel(run_id, conversation_id, owner)

    def plot(self, conversation_id: str, run_id: str, owner: str | None) -> bytes | None:
        return store.plot(run_id, conversation_id, owner)


def init_app(app: Flask) -> None:
    """Fill in the run settings and register the runs on the configured backend (none when runs are off)."""
    for key, value in DEFAULTS.items():
        app.config.setdefault(key, value)
    choice = app.config["REPRO_BACKEND"]
    backends = {"local": LocalBackend, "celery": CeleryBackend}
    if choice not in (*backends, "off"):
        raise ValueError(f"REPRO_BACKEND must be local, celery or off, not {choice!r}")
    if choice == "off":
        app.extensions[EXTENSION] = None
        return
    backend = backends[choice](app)
    app.extensions[EXTENSION] = Reproductions(backend)
    if app.config["REPRO_SWEEP"]:
        sweep.keep_sweeping(app, backend)


def reproductions() -> Reproductions | None:
    """The current app's runs, or None when this service offers none."""
    return current_app.extensions.get(EXTENSION)


def caps() -> Caps:
    config = current_app.config
    return Caps(config["REPRO_MAX_SAMPLES"], config["REPRO_MAX_EPOCHS"], config["REPRO_MAX_PARAMS"],
                config["REPRO_MAX_STEPS"])


def _last_history(conversation_id: str, owner: str | None) -> dict[str, list]:
    """The last history the user uploaded (``history.history``), or an empty one."""
    found = conversations.transcript(conversation_id, owner) or {"turns": []}
    for turn in reversed(found["turns"]):
        if turn["role"] == "user" and turn["body"].get("history"):
            return dict(turn["body"]["history"])
    return {}


def _tracked_metrics(history: dict[str, list]) -> list[str]:
    """The metric names of the user's history, so the run tracks the same."""
    return [name for name in history if name not in ("epoch", "loss") and not name.startswith("val_")]
