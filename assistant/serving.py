"""gunicorn's settings for the service, read from its own configuration module.

``assistant serve`` runs ``gunicorn --config python:assistant.serving``; ``deploy/gunicorn.conf.py``
is the same settings for a plain ``gunicorn`` command. Threaded workers (gthread, as
:mod:`assistant.web_worker` hardens it), so a database wait or a progress stream holds one thread
and never a whole worker, and a slow client holds none until its request head is in. The
settings read ``ASSISTANT_BIND``, ``ASSISTANT_WORKERS``, ``ASSISTANT_THREADS`` and
``ASSISTANT_LOG_LEVEL``; any other gunicorn setting can be given in ``GUNICORN_CMD_ARGS``.
"""
from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["wsgi_app", "bind", "workers", "worker_class", "threads", "timeout", "graceful_timeout", "keepalive",
           "worker_tmp_dir", "logconfig_dict", "control_socket_disable", "on_starting", "on_exit", "child_exit"]

wsgi_app = "assistant:create_app()"
bind = os.environ.get("ASSISTANT_BIND", "127.0.0.1:8000")
# A diagnosis is CPU work under the GIL: one process per core; threads cover the waiting.
workers = int(os.environ.get("ASSISTANT_WORKERS") or max(2, os.cpu_count() or 1))
worker_class = "assistant.web_worker.Worker"
threads = int(os.environ.get("ASSISTANT_THREADS", "8"))
# A worker whose main loop has not checked in for this long is killed and replaced. Requests run on
# threads while the loop keeps checking in, so a long progress stream never trips it; a hung process does.
timeout = 60
graceful_timeout = 30
# Longer than a balancer's idle timeout (60 s for most), so the balancer closes idle connections
# first and never sends a request on one that gunicorn has just closed. Idle connections hold no thread.
keepalive = 75
# The heartbeat file on tmpfs: container disks can stall long enough to look like a hung worker.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
control_socket_disable = True
logconfig_dict: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "assistant.logs.JsonFormatter"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
    "root": {"level": os.environ.get("ASSISTANT_LOG_LEVEL", "INFO"), "handlers": ["stderr"]},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["stderr"], "propagate": False},
        "gunicorn.access": {"handlers": [], "propagate": False},  # the app's own request lines carry the id
    },
}


def on_starting(server: Any) -> None:
    """Give the workers an empty folder to keep their Prometheus counts in, the service a current
    schema (:func:`migrate_first`), and fewer malloc arenas (:func:`limit_malloc_arenas`), before
    the first worker is forked.

    The variable must be set before a worker imports prometheus_client, and stale files of an
    earlier run would add old counts to the new ones.
    """
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = server.made_metrics_folder = tempfile.mkdtemp(prefix="assistant-metrics-")
    folder = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink()
    if server.app.app_uri == wsgi_app:  # the service, not another app under these settings
        migrate_first(server.log)
    limit_malloc_arenas()


#: glibc's mallopt option for how many malloc arenas a process may have, and the number the workers get.
M_ARENA_MAX = -8
MALLOC_ARENAS = 2


def limit_malloc_arenas() -> bool:
    """Let the workers (forked after this) share ``MALLOC_ARENAS`` malloc arenas among their threads.

    glibc gives threads arenas of their own, up to eight per core, and each keeps what was freed
    in it: a threaded worker that reads 500-epoch bodies on many threads held about 3 MB more for
    it. Python runs one thread at a time, so fewer arenas cost no speed. False where the C library
    is not glibc (it has no such option) and nothing changed.
    """
    try:
        return bool(ctypes.CDLL("libc.so.6").mallopt(M_ARENA_MAX, MALLOC_ARENAS))
    except (OSError, AttributeError):
        return False


#: The command that brings the schema up to date, as an operator would run it (``assistant init-db``).
INIT_DB = [sys.executable, "-c", "from assistant.cli import main; main()", "init-db"]


def migrate_first(log: Any) -> None:
    """Bring the database's schema up to date in a process of its own, before any worker is forked.

    The workers then find it current: none imports Alembic for the rest of its life (about 9 MB
    of each worker's memory) and none waits on another's migration. A database that cannot be
    reached is left to the workers, which answer 503 until it can be and migrate it then.
    """
    # A command of its own, as an operator would run it: no metrics of the workers', no sweep of the runs.
    environ = {**{k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"},
               "ASSISTANT_REPRO_SWEEP": "false"}
    done = subprocess.run(INIT_DB, env=environ, capture_output=True, text=True, timeout=900)
    if done.returncode == 0:
        log.info(done.stdout.strip())
    else:
        said = (done.stderr or done.stdout).strip().splitlines()
        log.warning("the schema was not brought up to date before the workers started (they will try): %s",
                    said[-1] if said else f"init-db exited with {done.returncode}")


def on_exit(server: Any) -> None:
    """Remove the metrics folder that :func:`on_starting` made (one that was configured stays)."""
    made = getattr(server, "made_metrics_folder", None)
    if made:
        shutil.rmtree(made, ignore_errors=True)


def child_exit(server: Any, worker: Any) -> None:
    """Let a dead worker's live gauges go; its counters stay in the totals."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
