"""Reproduction runs in the conversation store: their state, progress, results, and who holds them.

Every change of state is one conditional UPDATE (``queued → running`` only if still queued or
its holder's lease lapsed, ``running → done`` only if still held by the same worker), so a
cancel, a finishing worker, a second delivery of the task and the sweep can race and exactly
one wins, on SQLite and PostgreSQL alike.
"""
from __future__ import annotations

import os
import socket
import uuid
from datetime import timedelta
from typing import Any, NamedTuple

from flask import current_app
from sqlalchemy import ColumnElement, func, insert, select, update

from .. import db

#: A run's statuses while it may still change, and once it has ended.
ACTIVE = ("queued", "running")
FINISHED = ("done", "failed", "cancelled")

_c = db.reproductions.c
_PUBLIC = (_c.id, _c.conversation_id, _c.status, _c.backend, _c.plan, _c.progress, _c.result, _c.error,
           _c.created_at, _c.updated_at, _c.started_at, _c.finished_at, _c.attempts,
           _c.plot.is_not(None).label("has_plot"))
_HOLDERS: dict[int, str] = {}


def holder() -> str:
    """This process's name on the runs it holds: host and pid, and a random part, since a restarted
    container can come back with the same host name and pid while its old leases still stand."""
    return _HOLDERS.setdefault(os.getpid(), f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}")


def lease() -> timedelta:
    """How long a holder's claim on a run lasts unless renewed (``REPRO_LEASE_SECONDS``)."""
    return timedelta(seconds=current_app.config["REPRO_LEASE_SECONDS"])


def _lapsed() -> ColumnElement[bool]:
    return _c.leased_until < db.now()


def _owned(run_id: str, conversation_id: str, owner: str | None) -> ColumnElement[bool]:
    return (_c.id == run_id) & (_c.conversation_id == conversation_id) & _c.owner.is_not_distinct_from(owner)


def _view(row: Any) -> dict[str, Any]:
    """A run as clients see it: the contract's id, status, progress and result, and the plan in brief."""
    stamp = {key: getattr(row, key).isoformat() if getattr(row, key) else None
             for key in ("created_at", "started_at", "finished_at")}
    view = {"id": row.id, "conversation_id": row.conversation_id, "status": row.status, "backend": row.backend,
            "progress": row.progress, "result": row.result, "error": row.error, "has_plot": row.has_plot,
            "attempts": row.attempts,
            "plan": [{key: e[key] for key in ("name", "kind", "title", "cause", "changes")}
                     for e in row.plan["experiments"]],
            "notes": row.plan["notes"], **stamp}
    return view


def create(conversation_id: str, owner: str | None, backend: str, experiments: list[dict[str, Any]],
           notes: list[str]) -> dict[str, Any]:
    """Queue a run of the planned experiments, held by this process until it is handed over."""
    stamp = db.now()
    run_id = f"run-{uuid.uuid4().hex}"
    epochs = sum(e["spec"]["training"]["epochs"] for e in experiments)
    with db.get_engine().begin() as connection:
        connection.execute(insert(db.reproductions).values(
            id=run_id, conversation_id=conversation_id, owner=owner, status="queued", backend=backend,
            plan={"experiments": experiments, "notes": notes}, progress={"epoch": 0, "epochs": epochs},
            worker=holder(), leased_until=stamp + lease(), created_at=stamp, updated_at=stamp))
    return find(run_id, conversation_id, owner)


def find(run_id: str, conversation_id: str, owner: str | None) -> dict[str, Any] | None:
    """One run of the owner's conversation, or None."""
    with db.get_engine().connect() as connection:
        row = connection.execute(select(*_PUBLIC).where(_owned(run_id, conversation_id, owner))).first()
    return None if row is None else _view(row)


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


def handed_over(run_id: str) -> None:
    """The run's task is with the broker now, which keeps it: this process no longer holds it."""
    with db.get_engine().begin() as connection:
        connection.execute(update(db.reproductions).where((_c.id == run_id) & (_c.status == "queued"))
                           .values(worker=None, leased_until=None))


def keep_queued() -> None:
    """Renew this process's lease on the runs waiting in its own pool (the local backend)."""
    with db.get_engine().begin() as connection:
        connection.execute(update(db.reproductions).where((_c.worker == holder()) & (_c.status == "queued"))
                           .values(leased_until=db.now() + lease()))


def claim(run_id: str) -> dict[str, Any] | None:
    """Start a run for this worker: one queued, or one running whose holder's lease lapsed (its worker
    died and the task came back). Its conversation, owner and plan; None when it was cancelled, ended,
    is held by a live worker, or was started ``REPRO_ATTEMPTS`` times already."""
    stamp = db.now()
    with db.get_engine().begin() as connection:
        taken = connection.execute(
            update(db.reproductions)
            .where((_c.id == run_id) & (_c.attempts < current_app.config["REPRO_ATTEMPTS"])
                   & ((_c.status == "queued") | ((_c.status == "running") & _lapsed())))
            .values(status="running", worker=holder(), leased_until=stamp + lease(), attempts=_c.attempts + 1,
                    started_at=stamp, updated_at=stamp)).rowcount
        if not taken:
            return None
        row = connection.execute(select(_c.id, _c.conversation_id, _c.owner, _c.plan).where(_c.id == run_id)).one()
    return row._asdict()


def _held(run_id: str) -> ColumnElement[bool]:
    return (_c.id == run_id) & (_c.status == "running") & (_c.worker == holder())


def renew(run_id: str) -> bool:
    """Extend this worker's lease on its run; False when the run is no longer its own to train
    (cancelled, or taken over after the lease lapsed)."""
    with db.get_engine().begin() as connection:
        return bool(connection.execute(update(db.reproductions).where(_held(run_id))
                                       .values(leased_until=db.now() + lease())).rowcount)


def report(run_id: str, progress: dict[str, Any]) -> None:
    """Record how far this worker's run got."""
    with db.get_engine().begin() as connection:
        connection.execute(update(db.reproductions).where(_held(run_id)).values(progress=progress, updated_at=db.now()))


def cancel(run_id: str, conversation_id: str, owner: str | None) -> dict[str, Any] | None:
    """Cancel a queued or running run (its worker is killed within a second); None when there is no such run."""
    stamp = db.now()
    with db.get_engine().begin() as connection:
        connection.execute(update(db.reproductions)
                           .where(_owned(run_id, conversation_id, owner) & _c.status.in_(ACTIVE))
                           .values(status="cancelled", error="cancelled on request", finished_at=stamp,
                                   updated_at=stamp, worker=None, leased_until=None))
    return find(run_id, conversation_id, owner)


def finish(run_id: str, status: str, *, result: dict[str, Any] | None = None, error: str | None = None,
           plot: bytes | None = None) -> bool:
    """End this worker's run as done or failed; False when it is no longer its own (cancelled, taken over)."""
    stamp = db.now()
    with db.get_engine().begin() as connection:
        return bool(connection.execute(
            update(db.reproductions).where(_held(run_id))
            .values(status=status, result=result, error=error, plot=plot, finished_at=stamp, updated_at=stamp,
                    worker=None, leased_until=None)
        ).rowcount)


def refuse(run_id: str, error: str) -> None:
    """Fail a queued run that could not be handed to a worker, so none stays queued for nothing."""
    stamp = db.now()
    with db.get_engine().begin() as connection:
        connection.execute(update(db.reproductions).where((_c.id == run_id) & (_c.status == "queued"))
                           .values(status="failed", error=error, finished_at=stamp, updated_at=stamp, worker=None,
                                   leased_until=None))


class Lapsed(NamedTuple):
    """An active run whose holder stopped renewing its lease."""

    id: str
    status: str
    attempts: int


def lapsed(backend: str) -> list[Lapsed]:
    """The backend's active runs whose lease lapsed, oldest first."""
    with db.get_engine().connect() as connection:
        rows = connection.execute(select(_c.id, _c.status, _c.attempts)
                                  .where((_c.backend == backend) & _c.status.in_(ACTIVE) & _lapsed())
                                  .order_by(_c.created_at)).all()
    return [Lapsed(*row) for row in rows]


def requeue(run: Lapsed) -> bool:
    """Queue a lapsed run again, held by this process until it is handed over; False when another process
    (or the run's own worker, back in time) got there first."""
    with db.get_engine().begin() as connection:
        return bool(connection.execute(
            update(db.reproductions).where((_c.id == run.id) & (_c.status == run.status) & _lapsed())
            .values(status="queued", worker=holder(), leased_until=db.now() + lease(), updated_at=db.now())).rowcount)


def fail_lapsed(run: Lapsed, error: str) -> bool:
    """Fail a lapsed run for good; False when another process (or its worker) got there first."""
    stamp = db.now()
    with db.get_engine().begin() as connection:
        return bool(connection.execute(
            update(db.reproductions).where((_c.id == run.id) & (_c.status == run.status) & _lapsed())
            .values(status="failed", error=error, finished_at=stamp, updated_at=stamp, worker=None,
                    leased_until=None)).rowcount)


def counts() -> dict[str, int]:
    """How many runs are in each status, for the operators' metrics."""
    with db.get_engine().connect() as connection:
        found = dict(connection.execute(select(_c.status, func.count()).group_by(_c.status)).all())
    return {name: found.get(name, 0) for name in (*ACTIVE, *FINISHED)}
