"""The Celery entry point: ``celery -A assistant.repro.celery_worker worker --pool=threads --concurrency=1``.

The app is built from ``ASSISTANT_*`` environment variables, so set at least
``ASSISTANT_REPRO_BACKEND=celery``, ``ASSISTANT_DATABASE_URL`` and ``ASSISTANT_CELERY_BROKER_URL``.
With ``ASSISTANT_REPRO_METRICS_PORT`` the worker serves its Prometheus figures (how its runs
ended, what its sweeps did) on that port. A ready worker starts its warm TensorFlow process at
once, so that its first run does not wait for the import either.
"""
from typing import Any

from celery.signals import worker_ready
from prometheus_client import start_http_server

from assistant import create_app
from assistant.repro import backends

flask_app = create_app()
celery_app = flask_app.extensions["celery"]


@worker_ready.connect
def _serve_metrics(**_: Any) -> None:
    """Only in a worker: ``celery inspect`` or Flower import this module too, and must not take the port."""
    if flask_app.config["REPRO_METRICS_PORT"]:
        start_http_server(int(flask_app.config["REPRO_METRICS_PORT"]))


@worker_ready.connect
def _warm_up(**_: Any) -> None:
    backends.warm_up(int(flask_app.config["REPRO_THREADS"]))
