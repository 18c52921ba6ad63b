"""What one caller may hold at once, so that no one user can take the service down.

A progress stream holds a web thread for as long as it is open: each caller may hold
``STREAMS_PER_CALLER`` of them in a process, and all callers together ``STREAMS_PER_PROCESS``
(half of gunicorn's 8 threads by default), so streams never take the threads that answer
everything else. Runs queued or running are counted in the database, across all processes:
``RUNS_PER_CALLER`` each. Beyond a cap the answer is 429 with ``Retry-After``.
"""
from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask, current_app
from sqlalchemy import func, select

from .. import db
from ..errors import ApiError

EXTENSION = "assistant.caps"
DEFAULTS = {
    "STREAMS_PER_CALLER": 2,
    "STREAMS_PER_PROCESS": 4,
    # A stream ends after this many seconds without a change in the run, and after the second figure in all.
    "STREAM_IDLE_SECONDS": 30,
    "STREAM_SECONDS": 120,
    "RUNS_PER_CALLER": 2,
}
#: Seconds a refused caller is asked to wait: a stream slot frees when a stream ends, a run slot when a run does.
STREAM_RETRY_AFTER = 10
RUN_RETRY_AFTER = 30
#: Held while a run is counted and started, so that a burst of requests in one process cannot all pass the count.
_STARTING = threading.Lock()


class StreamSlots:
    """The progress streams open in this process, by caller."""

    def __init__(self, per_caller: int, total: int) -> None:
        self.per_caller = per_caller
        self.total = total
        self._open: Counter[str] = Counter()
        self._lock = threading.Lock()

    def take(self, caller: str) -> None:
        """Hold a slot for ``caller`` (give it back with :meth:`give_back`), or raise 429."""
        with self._lock:
            if self._open[caller] >= self.per_caller:
                raise _busy(f"you have {self._open[caller]} progress streams open, the most one caller may; close one "
                            "or poll the run instead", STREAM_RETRY_AFTER)
            if sum(self._open.values()) >= self.total:
                raise _busy("this server is following as many progress streams as it takes; poll the run instead",
                            STREAM_RETRY_AFTER)
            self._open[caller] += 1

    def give_back(self, caller: str) -> None:
        with self._lock:
            self._open[caller] -= 1
            if self._open[caller] <= 0:
                del self._open[caller]


def streams() -> StreamSlots:
    return current_app.extensions[EXTENSION]


@contextmanager
def run_slot(owner: str | None) -> Iterator[None]:
    """Start a run within the block, or raise 429 when the owner has as many queued or running as a caller may.

    The count and the start are one step within a process; processes that check at the same
    instant may each let one more in.
    """
    with _STARTING:
        _check_runs(owner)
        yield


def _check_runs(owner: str | None) -> None:
    r = db.reproductions.c
    with db.get_engine().connect() as connection:
        active = connection.execute(select(func.count()).where(
            r.owner.is_not_distinct_from(owner), r.status.in_(("queued", "running")))).scalar_one()
    limit = current_app.config["RUNS_PER_CALLER"]
    if active >= limit:
        raise _busy(f"you have {active} runs queued or running, the most one caller may; start another when one "
                    "has ended", RUN_RETRY_AFTER)


def _busy(message: str, retry_after: int) -> ApiError:
    return ApiError(429, "too_many_requests", message, headers={"Retry-After": str(retry_after)})


def init_app(app: Flask) -> None:
    """Fill in the caps and keep this process's stream slots."""
    for key, value in DEFAULTS.items():
        app.config.setdefault(key, value)
    app.extensions[EXTENSION] = StreamSlots(int(app.config["STREAMS_PER_CALLER"]), int(app.config["STREAMS_PER_PROCESS"]))
