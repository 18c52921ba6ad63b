"""Reproduction runs in the conversation store: their state, progress and results.

Every change of state is one conditional UPDATE (``queued → running`` only if still queued,
``running → done`` only if still running), so a cancel and a finishing worker can race and
the first one wins, on SQLite and PostgreSQL alike.
"""
from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import ColumnElement, insert, select, update

from .. import db

#: A run's statuses while it may still change, and once it has ended.
ACTIVE = ("queued", "running")
FINISHED = ("done", "failed", "cancelled")
#: A running job that has not reported for its wall-clock limit plus this long lost its worker.
SILENCE = timedelta(seconds=60)

_c = db.reproductions.c
_PUBLIC = (_c.id, _c.conversation_id, _c.status, _c.backend, _c.plan, _c.progress, _c.result, _c.error,
           _c.created_at, _c.updated_at, _c.started_at, _c.finished_at, _c.plot.is_not(None).label("has_plot"))


def _owned(run_id: str, conversation_id: str, owner: str | None) -> ColumnElement[bool]:
    return (_c.id == run_id) & (_c.conversation_id == conversation_id) & _c.owner.is_not_distinct_from(owner)


def _view(row: Any) -> dict[str, Any]:
    """A run as clients see it: the contract's id, status, progress and result, and the plan in brief."""
    stamp = {key: getattr(row, key).isoformat() if getattr(row, key) else None
             for key in ("created_at", "started_at", "finished_at")}
    view = {"id": row.id, "conversation_id": row.conversation_id, "status": row.status, "backend": row.backend,
            "progress": row.progress, "result": row.result, "error": row.error, "has_plot": row.has_plot,
            "plan": [{key: e[key] for key in ("name", "kind", "title", "cause", "changes")}
                     for e in row.plan["experiments"]],
            "notes": row.plan["notes"], **stamp}
    return view


def create(conversation_id: str, owner: str | None, backend: str, experiments: list[dict[str, Any]],
           notes: list[str]) -> dict[str, Any]:
    """Queue a run of the planned experiments."""
    stamp = db.now()
    run_id = f"run-{uuid.uuid4().hex}"
    epochs = sum(e["spec"]["training"]["epochs"] for e in experiments)
    with db.get_engine().begin() as connection:
        connection.execute(insert(db.reproductions).values(
            id=run_id, conversation_id=conversation_id, owner=owner, status="queued", backend=backend,
            plan={"experiments": experiments, "notes": notes}, progress={"epoch": 0, "epochs": epochs},
            created_at=stamp, updated_at=stamp))
    return find(run_id, conversation_id, owner)


def find(run_id: str, conversation_id: str, owner: str | None) -> dict[str, Any] | None:
    """One run of the owner's conversation, or None; a running run whose worker went silent is failed first."""
    with db.get_engine().connect() as connection:
        row = connection.execute(select(*_PUBLIC).where(_owned(run_id, conversation_id, owner))).first()
    if row is None:
        return None
    silent_since = db.now() - timedelta(seconds=current_app.config["REPRO_TIMEOUT"]) - SILENCE
    if row.status == "running" and row.updated_at < silent_since:
        finish(run_id, "failed", error="the worker running it stopped reporting")
        return find(run_id, conversation_id, owner)
    return _view(row)


def runs(conversation_id: str, owner: str | None) -> list[dict[str, Any]]:
    """The conversation's runs, newest first."""
    with db.get_engine().connect() as connection:
        rows = connection.execute(
            select(*_PUBLIC).where((_c.conversation_id == conversation_id) & _c.owner.is_not_distinct_from(owner))
            .order_by(_c.created_at.desc())).all()
    return [_view(row) for row in rows]


def plot(run_id: str, conversation_id: str, owner: str | None) -> bytes | None:
    with db.get_engine().connect() as connection:
        return connection.execute(select(_c.plot).where(_owned(run_id, conversation_id, owner))).scalar()


def claim(run_id: str) -> dict[str, Any] | None:
    """Start a queued run: its conversation, owner and plan; None when it was cancelled or taken."""
    stamp = db.now()
    with db.get_engine().begin() as connection:
        taken = connection.execute(update(db.reproductions).where((_c.id == run_id) & (_c.status == "queued"))
                                   .values(status="running", started_at=stamp, updated_at=stamp)).rowcount
        if not taken:
            return None
        row = connection.execute(select(_c.id, _c.conversation_id, _c.owner, _c.plan).where(_c.id == run_id)).one()
    return row._asdict()


def report(run_id: str, progress: dict[str, Any]) -> None:
    """Record how far a running run got; this is also its worker's sign of life."""
    with db.get_engine().begin() as connection:
        connection.execute(update(db.reproductions).where((_c.id == run_id) & (_c.status == "running"))
                           .values(progress=progress, updated_at=db.now()))


def status(run_id: str) -> str | None:
    with db.get_engine().connect() as connection:
        return connection.execute(select(_c.status).where(_c.id == run_id)).scalar()


def cancel(run_id: str, conversation_id: str, owner: str | None) -> dict[str, Any] | None:
    """Cancel a queued or running run (its worker is killed within a second); None when there is no such run."""
    stamp = db.now()
    with db.get_engine().begin() as connection:
        connection.execute(update(db.reproductions)
                           .where(_owned(run_id, conversation_id, owner) & _c.status.in_(ACTIVE))
                           .values(status="cancelled", error="cancelled on request", finished_at=stamp,
                                   updated_at=stamp))
    return find(run_id, conversation_id, owner)


def finish(run_id: str, status: str, *, result: dict[str, Any] | None = None, error: str | None = None,
           plot: bytes | None = None) -> bool:
    """End a running run as done or failed; False when it had ended already (cancelled meanwhile)."""
    stamp = db.now()
    with db.get_engine().begin() as connection:
        return bool(connection.execute(
            update(db.reproductions).where((_c.id == run_id) & (_c.status == "running"))
            .values(status=status, result=result, error=error, plot=plot, finished_at=stamp, updated_at=stamp)
        ).rowcount)
