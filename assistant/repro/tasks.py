"""Celery: reproduction runs on worker machines, set up the way Flask's documentation shows.

Start a worker with ``celery -A assistant.repro.celery_worker worker --pool=solo``; it reads
the same ``ASSISTANT_*`` settings as the web app (database, broker) and runs each job with
:func:`~assistant.repro.backends.execute`, which spawns the TensorFlow process itself.
"""
from __future__ import annotations

from celery import Celery, Task, shared_task
from flask import Flask

from .backends import execute


def celery_init_app(app: Flask) -> Celery:
    """A Celery app whose tasks run inside the Flask app's context, configured from ``CELERY_*`` settings."""

    class FlaskTask(Task):
        def __call__(self, *args: object, **kwargs: object) -> object:
            with app.app_context():
                return self.run(*args, **kwargs)

    celery_app = Celery(app.name, task_cls=FlaskTask)
    celery_app.conf.update(
        broker_url=app.config["CELERY_BROKER_URL"], result_backend=app.config["CELERY_RESULT_BACKEND"],
        task_ignore_result=True, task_acks_late=True, worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True)
    celery_app.set_default()
    app.extensions["celery"] = celery_app
    return celery_app


@shared_task(name="assistant.repro.run")
def run_reproduction(run_id: str) -> None:
    """Run one queued reproduction job; its state and results go to the conversation store."""
    execute(run_id)
