"""Where reproduction runs execute: a local pool in the web process, or Celery workers on other machines.

Either way one function, :func:`execute`, runs a job. It starts :mod:`.worker` as a fresh
interpreter (spawned, never forked, so TensorFlow never loads in the web process or the Celery
worker), in a session of its own so that its whole process group can be killed. A watchdog
enforces the wall-clock, CPU and memory limits (the kernel's ``RLIMIT_CPU`` and ``RLIMIT_AS``
back it up), notices a cancel within a second, and records progress; the results go to the
verdict.
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

from ..kb import current
from . import store, verdict
from .spec import run_names

#: How often the watchdog looks at the worker, and how often it asks the store about a cancel.
POLL = 0.2
CANCEL_POLL = 0.5
#: Progress is written at most this often.
REPORT_EVERY = 0.5
#: The worker skips the experiments it has not started once this share of the wall-clock limit is gone.
SOFT_DEADLINE = 0.8
#: Address space a worker may map beyond its memory limit: TensorFlow reserves far more than it uses,
#: so this only stops runaway allocation; the watchdog enforces the memory limit itself.
ADDRESS_SPACE_HEADROOM_MB = 4096
_ROOT = Path(__file__).resolve().parents[2]
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
    return {**os.environ, "PYTHONPATH": path, "ASSISTANT_REPRO_RUN": run_id, "KERAS_BACKEND": "tensorflow",
            "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": str(threads),
            "TF_NUM_INTRAOP_THREADS": str(threads), "TF_NUM_INTEROP_THREADS": str(threads),
            "MPLBACKEND": "Agg"}


def run_worker(run_id: str, experiments: list[dict[str, Any]], names: Mapping[str, Any], limits: Limits,
               on_event: Callable[[dict[str, Any]], None], cancelled: Callable[[], bool]) -> None:
    """Run the experiments in a worker process and pass on each message it sends; raises JobFailed.

    ``names`` (:func:`~.spec.run_names`) tells the worker, which reads no knowledge base, Keras's classes.
    """
    started = time.monotonic()
    job = {"experiments": experiments, "names": names, "deadline": time.time() + limits.wall * SOFT_DEADLINE,
           "threads": limits.threads}
    with tempfile.NamedTemporaryFile("w", suffix=".json") as payload, tempfile.TemporaryFile("w+") as errors:
        json.dump(job, payload)
        payload.flush()
        process = subprocess.Popen([sys.executable, "-m", "assistant.repro.worker", payload.name],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors, text=True,
                                   cwd=_ROOT, env=_environment(run_id, limits.threads), start_new_session=True)
        if hasattr(resource, "prlimit"):
            resource.prlimit(process.pid, resource.RLIMIT_CPU, (limits.cpu, limits.cpu + 5))
            space = (limits.memory_mb + ADDRESS_SPACE_HEADROOM_MB) * 1024 * 1024
            resource.prlimit(process.pid, resource.RLIMIT_AS, (space, space))
        lines: queue.Queue[str | None] = queue.Queue()
        reader = threading.Thread(target=lambda: [*map(lines.put, process.stdout), lines.put(None)], daemon=True)
        reader.start()
        reason = _watch(process, lines, limits, started, on_event, cancelled)
        if reason is not None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        reader.join(timeout=5)
        if reason is None and process.returncode != 0:
            reason = _death(process.returncode, errors, limits)
    if reason is not None:
        raise JobFailed(reason)


def _watch(process: subprocess.Popen, lines: queue.Queue, limits: Limits, started: float,
           on_event: Callable[[dict[str, Any]], None], cancelled: Callable[[], bool]) -> str | None:
    """Relay messages until the worker's output ends; the reason to kill it, if one arises first."""
    asked = 0.0
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
        if time.monotonic() - asked > CANCEL_POLL:
            asked = time.monotonic()
            if cancelled():
                return "cancelled on request"


def _death(returncode: int, errors: Any, limits: Limits) -> str:
    """Why a worker that was not killed here ended badly, in a sentence."""
    if returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        return f"the run was stopped by the system at its limits ({limits.cpu} s CPU, {limits.memory_mb} MB memory)"
    errors.seek(0)
    tail = [line.strip() for line in errors.read().splitlines() if line.strip()]
    return f"the worker failed: {tail[-1] if tail else f'exit status {returncode}'}"[:500]


def execute(run_id: str) -> None:
    """Run one queued job to its end: claim it, train its experiments under limits, conclude."""
    run = store.claim(run_id)
    if run is None:
        return  # cancelled while queued, or another worker took it
    experiments = run["plan"]["experiments"]
    planned = {e["name"]: e["spec"]["training"]["epochs"] for e in experiments}
    total = sum(planned.values())
    results: dict[str, dict[str, Any]] = {}
    state = {"finished": 0, "reported": 0.0, "plot": None}

    def on_event(event: dict[str, Any]) -> None:
        if event["event"] == "epoch" and time.monotonic() - state["reported"] > REPORT_EVERY:
            state["reported"] = time.monotonic()
            store.report(run_id, {"epoch": state["finished"] + event["epoch"], "epochs": total,
                                  "experiment": event["experiment"]})
        elif event["event"] == "result":
            results[event["name"]] = event
            state["finished"] += planned[event["name"]]
            store.report(run_id, {"epoch": state["finished"], "epochs": total, "experiment": event["name"]})
        elif event["event"] == "plot":
            state["plot"] = base64.b64decode(event["png"])

    limits = Limits.from_config(current_app.config)
    try:
        run_worker(run_id, experiments, run_names(current().keras), limits, on_event,
                   lambda: store.status(run_id) == "cancelled")
        result = verdict.conclude(run, results)
    except JobFailed as failure:
        store.finish(run_id, "failed", error=str(failure))
        return
    except Exception:
        current_app.logger.exception("reproduction run %s failed", run_id)
        store.finish(run_id, "failed", error="the run failed on our side; the details were logged")
        return
    if result is None:
        store.finish(run_id, "failed", error="the conversation no longer exists")
    else:
        store.finish(run_id, "done", result=result, plot=state["plot"])


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

    def submit(self, run_id: str) -> None:
        from .tasks import run_reproduction

        run_reproduction.apply_async(args=[run_id])
