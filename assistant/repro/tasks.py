"""Celery: reproduction runs on worker machines, set up the way Flask's documentation shows.

Start a worker with ``celery -A assistant.repro.celery_worker worker --pool=threads --concurrency=1``; it reads
the same ``ASSISTANT_*`` settings as the web app (database, broker) and runs each job with
:func:`~assistant.repro.backends.execute`, which spawns the TensorFlow process itself.
"""
from __future__ import annotations

from celery import Celery, Task, shared_task
from flask import Flask

from .backends import execute

#: Seconds beyond a run's wall-clock limit before the broker hands an unacknowledged task out again.
VISIBILITY_MARGIN = 60
#: Seconds to connect to the broker: an unreachable one fails a request quickly (503) rather than hang it.
CONNECT_TIMEOUT = 2


def celery_init_app(app: Flask) -> Celery:
    """A Celery app whose tasks run inside the Flask app's context, configured from ``CELERY_*`` settings."""

    class FlaskTask(Task):
        def __call__(self, *args: object, **kwargs: object) -> object:
            with app.app_context():
                return self.run(*args, **kwargs)

    celery_app = Celery(app.name, task_cls=FlaskTask)
    celery_app.conf.update(
        broker_url=app.config["CELERY_BROKER_URL"], result_backend=app.config["CELERY_RESULT_BACKEND"],
        task_ignore_result=True, broker_connection_retry_on_startup=True,
        # A task is acknowledged when its run ends, so a worker that dies leaves it with the broker, which
        # delivers it again once it has been out for longer than any run may take; a pool process that
        # dies has its task rejected back to the queue. The sweep (sweep.py) is the faster way back.
        task_acks_late=True, task_reject_on_worker_lost=True, worker_prefetch_multiplier=1,
        broker_transport_options={"visibility_timeout": app.config["REPRO_TIMEOUT"] + VISIBILITY_MARGIN,
                                  "socket_connect_timeout": CONNECT_TIMEOUT},
        # Task and worker events, for Flower and other monitors.
        worker_send_task_events=True, task_send_sent_event=True)
    celery_app.set_default()
    app.extensions["celery"] = celery_app
    return celery_app


@shared_task(name="assistant.repro.run")
def run_reproduction(run_id: str) -> None:
    """Run one queued reproduction job; its state and results go to the conversation store."""
    execute(run_id)
