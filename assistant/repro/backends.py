"""Where reproduction runs execute: a local pool in the web process, or Celery workers on other machines.

Either way one function, :func:`execute`, runs a job. It starts :mod:`.worker` as a fresh
interpreter (spawned, never forked, so TensorFlow never loads in the web process or the Celery
worker), in a session of its own so that its whole process group can be killed, and reading its
job from an unlinked file, so nothing is left behind whatever dies. A watchdog enforces the
wall-clock, CPU and memory limits (the kernel's ``RLIMIT_CPU`` and ``RLIMIT_AS`` back it up),
renews the run's lease every second (and so notices a cancel within one), and records progress;
the results go to the verdict. The worker dies with its supervisor (:mod:`.worker`).
"""
from __future__ import annotations

import base64
import json
import os
import queue
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask, current_app
from prometheus_client import Histogram
from sqlalchemy.exc import SQLAlchemyError

from ..kb import current
from . import store, verdict
from .spec import run_names

#: How often the watchdog looks at the worker, and how often it renews the run's lease (which tells it of a cancel).
POLL = 0.2
RENEW_EVERY = 1.0
#: Seconds between asking the Celery workers whether they are there, and how long each ask waits for answers.
WORKER_CHECK_EVERY = 15.0
PING_TIMEOUT = 0.5
#: Progress is written at most this often.
REPORT_EVERY = 0.5
#: The worker skips the experiments it has not started once this share of the wall-clock limit is gone.
SOFT_DEADLINE = 0.8
#: Address space a worker may map beyond its memory limit: TensorFlow reserves far more than it uses,
#: so this only stops runaway allocation; the watchdog enforces the memory limit itself.
ADDRESS_SPACE_HEADROOM_MB = 4096
_ROOT = Path(__file__).resolve().parents[2]

RUN_SECONDS = Histogram("assistant_repro_run_duration_seconds",
                        "Time from a worker's claim of a run to its end, by outcome: done, failed, or lost (cancelled, "
                        "or taken over by another worker).", ["outcome"],
                        buckets=(5, 10, 20, 30, 45, 60, 90, 120, 180, 300))
_PAGE = os.sysconf("SC_PAGE_SIZE")
_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Limits:
    wall: float
    cpu: int
    memory_mb: int
    threads: int = 1

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Limits:
        return cls(float(config["REPRO_TIMEOUT"]), int(config["REPRO_CPU_SECONDS"]), int(config["REPRO_MEMORY_MB"]),
                   int(config["REPRO_THREADS"]))


class RunsUnavailable(Exception):
    """The run could not be handed to a worker (the broker is unreachable); the client may try again shortly."""


class JobFailed(Exception):
    """The worker broke a limit, died, or was cancelled; the message says which, for the user."""


def _usage(pid: int) -> tuple[float, int]:
    """CPU seconds and resident bytes of a process, from /proc (zeros where there is none)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        with open(f"/proc/{pid}/statm") as statm:
            resident = int(statm.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0.0, 0
    return (int(fields[11]) + int(fields[12])) / _TICKS, resident


def _environment(run_id: str, threads: int) -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(_ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "ASSISTANT_REPRO_RUN": run_id,
            "ASSISTANT_REPRO_SUPERVISOR": str(os.getpid()), "KERAS_BACKEND": "tensorflow",
            "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": str(threads),
            "TF_NUM_INTRAOP_THREADS": str(threads), "TF_NUM_INTEROP_THREADS": str(threads),
            "MPLBACKEND": "Agg"}


def run_worker(run_id: str, experiments: list[dict[str, Any]], names: Mapping[str, Any], limits: Limits,
               on_event: Callable[[dict[str, Any]], None], still_held: Callable[[], bool]) -> None:
    """Run the experiments in a worker process and pass on each message it sends; raises JobFailed.

    ``names`` (:func:`~.spec.run_names`) tells the worker, which reads no knowledge base, Keras's classes.
    ``still_held`` renews the run's lease, and says False once the run is no longer this worker's.
    """
    started = time.monotonic()
    job = {"experiments": experiments, "names": names, "deadline": time.time() + limits.wall * SOFT_DEADLINE,
           "threads": limits.threads}
    with tempfile.TemporaryFile("w+") as payload, tempfile.TemporaryFile("w+") as errors:
        json.dump(job, payload)
        payload.seek(0)
        process = subprocess.Popen([sys.executable, "-m", "assistant.repro.worker"],
                                   stdin=payload, stdout=subprocess.PIPE, stderr=errors, text=True,
                                   cwd=_ROOT, env=_environment(run_id, limits.threads), start_new_session=True)
        if hasattr(resource, "prlimit"):
            resource.prlimit(process.pid, resource.RLIMIT_CPU, (limits.cpu, limits.cpu + 5))
            space = (limits.memory_mb + ADDRESS_SPACE_HEADROOM_MB) * 1024 * 1024
            resource.prlimit(process.pid, resource.RLIMIT_AS, (space, space))
        lines: queue.Queue[str | None] = queue.Queue()
        reader = threading.Thread(target=lambda: [*map(lines.put, process.stdout), lines.put(None)], daemon=True)
        reader.start()
        reason: str | None = "the run's supervisor failed"
        try:
            reason = _watch(process, lines, limits, started, on_event, still_held)
        finally:
            if reason is not None:
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        reader.join(timeout=5)
        if reason is None and process.returncode != 0:
            reason = _death(process.returncode, errors, limits)
    if reason is not None:
        raise JobFailed(reason)


def _watch(process: subprocess.Popen, lines: queue.Queue, limits: Limits, started: float,
           on_event: Callable[[dict[str, Any]], None], still_held: Callable[[], bool]) -> str | None:
    """Relay messages until the worker's output ends; the reason to kill it, if one arises first."""
    renewed = time.monotonic()
    while True:
        try:
            line = lines.get(timeout=POLL)
        except queue.Empty:
            line = ""
        if line is None:
            return None
        if line.strip():
            on_event(json.loads(line))
        seconds, resident = _usage(process.pid)
        if time.monotonic() - started > limits.wall:
            return f"the run took longer than its wall-clock limit of {limits.wall:g} s and was stopped"
        if seconds > limits.cpu:
            return f"the run used more than its {limits.cpu} s of CPU time and was stopped"
        if resident > limits.memory_mb * 1024 * 1024:
            return f"the run used more than its {limits.memory_mb} MB of memory and was stopped"
        if time.monotonic() - renewed > RENEW_EVERY:
            renewed = time.monotonic()
            if not still_held():
                return "cancelled on request, or taken over by another worker"


def _death(returncode: int, errors: Any, limits: Limits) -> str:
    """Why a worker that was not killed here ended badly, in a sentence."""
    if returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        return f"the run was stopped by the system at its limits ({limits.cpu} s CPU, {limits.memory_mb} MB memory)"
    errors.seek(0)
    tail = [line.strip() for line in errors.read().splitlines() if line.strip()]
    return f"the worker failed: {tail[-1] if tail else f'exit status {returncode}'}"[:500]


def execute(run_id: str) -> None:
    """Run one job to its end: claim it, train its experiments under limits, conclude.

    A job delivered again (its worker died, or the sweep queued it again) takes the run back once
    the dead worker's lease has lapsed; one whose run ended or is held by a live worker does nothing.
    """
    run = store.claim(run_id)
    if run is None:
        return
    experiments = run["plan"]["experiments"]
    planned = {e["name"]: e["spec"]["training"]["epochs"] for e in experiments}
    total = sum(planned.values())
    results: dict[str, dict[str, Any]] = {}
    state = {"finished": 0, "reported": 0.0, "plot": None}

    def report(progress: dict[str, Any]) -> None:
        try:
            store.report(run_id, progress)
        except SQLAlchemyError:  # progress is for show: a database away for a moment does not stop the run
            current_app.logger.warning("could not record the progress of run %s", run_id, exc_info=True)

    def on_event(event: dict[str, Any]) -> None:
        if event["event"] == "epoch" and time.monotonic() - state["reported"] > REPORT_EVERY:
            state["reported"] = time.monotonic()
            report({"epoch": state["finished"] + event["epoch"], "epochs": total, "experiment": event["experiment"]})
        elif event["event"] == "result":
            results[event["name"]] = event
            state["finished"] += planned[event["name"]]
            report({"epoch": state["finished"], "epochs": total, "experiment": event["name"]})
        elif event["event"] == "plot":
            state["plot"] = base64.b64decode(event["png"])

    limits = Limits.from_config(current_app.config)
    claimed = renewed = time.monotonic()

    def still_held() -> bool:
        """Renew the lease; a database that fails to answer stops the run only once the lease has run out."""
        nonlocal renewed
        try:
            held = store.renew(run_id)
        except SQLAlchemyError:
            current_app.logger.warning("could not renew the lease on run %s", run_id, exc_info=True)
            return time.monotonic() - renewed < store.lease().total_seconds()
        renewed = time.monotonic()
        return held

    try:
        run_worker(run_id, experiments, run_names(current().keras), limits, on_event, still_held)
        result = verdict.conclude(run, results)
    except JobFailed as failure:
        ending: dict[str, Any] = {"status": "failed", "error": str(failure)}
    except Exception:
        current_app.logger.exception("reproduction run %s failed", run_id)
        ending = {"status": "failed", "error": "the run failed on our side; the details were logged"}
    else:
        ending = ({"status": "done", "result": result, "plot": state["plot"]} if result is not None
                  else {"status": "failed", "error": "the conversation no longer exists"})
    outcome = ending["status"] if store.finish(run_id, **ending) else "lost"
    RUN_SECONDS.labels(outcome).observe(time.monotonic() - claimed)


class LocalBackend:
    """Runs jobs on this machine, in a small pool of threads that each supervise one worker process."""

    name = "local"

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.pool = ThreadPoolExecutor(app.config["REPRO_WORKERS"], thread_name_prefix="repro")

    def submit(self, run_id: str) -> None:
        self.pool.submit(self._run, run_id)

    def _run(self, run_id: str) -> None:
        with self.app.app_context():
            execute(run_id)


class CeleryBackend:
    """Sends jobs to Celery workers over the broker; each worker runs :func:`execute` like the local pool."""

    name = "celery"

    def __init__(self, app: Flask) -> None:
        from .tasks import celery_init_app

        self.celery = celery_init_app(app)
        self._online = (0, -WORKER_CHECK_EVERY)  # workers that answered, and when they were asked
        self._asking = threading.Lock()

    def workers(self) -> int:
        """How many workers answer a ping, asked at most every WORKER_CHECK_EVERY seconds (each ask waits
        PING_TIMEOUT for the answers). A worker answers while it trains: the task runs in a pool thread."""
        with self._asking:
            count, asked = self._online
            if time.monotonic() - asked > WORKER_CHECK_EVERY:
                self._online = count, asked = len(self.celery.control.ping(timeout=PING_TIMEOUT)), time.monotonic()
        return count

    def backlog(self) -> tuple[int, int]:
        """Run tasks waiting in the queue, and tasks out with workers and not yet acknowledged (Redis broker)."""
        with self.celery.connection_for_read() as connection:
            channel = connection.default_channel
            return channel.client.llen(self.celery.conf.task_default_queue), channel.client.hlen(channel.unacked_key)

    def submit(self, run_id: str) -> None:
        """Send the run's task; once the broker has it, the broker keeps it (so this process no longer holds the run)."""
        from kombu.exceptions import OperationalError

        from .tasks import run_reproduction

        try:
            run_reproduction.apply_async(args=[run_id])
        except OperationalError as refused:
            raise RunsUnavailable(f"the run queue cannot be reached ({refused})") from refused
        store.handed_over(run_id)
