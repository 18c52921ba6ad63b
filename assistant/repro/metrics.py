"""What operators see of the runs in Prometheus: runs by status, the queue and its workers, and how runs end.

Runs by status come from the database at each scrape, so every web machine reports the same
truth. With Celery, the queue's depth and the tasks out with workers come from Redis, and the
workers online from a ping that :class:`~.backends.CeleryBackend` caches. How long runs took and
how they ended (``backends.RUN_SECONDS``), and what the sweep did (``sweep.SWEPT``), are counted by
the process that did it: the web process for the local pool, the Celery worker otherwise
(``REPRO_METRICS_PORT``).
"""
from __future__ import annotations

import logging
from collections.abc import Iterator

from flask import Flask
from prometheus_client.core import GaugeMetricFamily, Metric

from . import store
from .backends import CeleryBackend, LocalBackend

log = logging.getLogger(__name__)


class RunsCollector:
    """Read at each scrape of ``/metrics``, for one app."""

    def __init__(self, app: Flask, backend: LocalBackend | CeleryBackend) -> None:
        self.app = app
        self.backend = backend

    def describe(self) -> list[Metric]:
        return []  # nothing to check at registration: reading the database there would be wasted

    def collect(self) -> Iterator[Metric]:
        with self.app.app_context():
            runs = GaugeMetricFamily("assistant_repro_runs", "Reproduction runs in the database, by status.",
                                     labels=["status"])
            for status, count in store.counts().items():
                runs.add_metric([status], count)
            yield runs
        if isinstance(self.backend, CeleryBackend):
            try:
                waiting, unacked = self.backend.backlog()
                online = self.backend.workers()
            except Exception:  # the broker is away: /readyz says so; the other figures still count
                log.warning("could not read the run queue for the metrics", exc_info=True)
                return
            yield GaugeMetricFamily("assistant_repro_queue_depth", "Run tasks waiting in the broker's queue.",
                                    value=waiting)
            yield GaugeMetricFamily("assistant_repro_unacked_tasks",
                                    "Run tasks delivered to a worker and not yet acknowledged (running, or lost "
                                    "with their worker until the broker hands them out again).", value=unacked)
            yield GaugeMetricFamily("assistant_repro_workers_online", "Celery workers that answered the last ping.",
                                    value=online)
