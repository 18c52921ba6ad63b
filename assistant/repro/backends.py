"""Where reproduction runs execute: a local pool in the web process, or Celery workers on other machines.

Either way one function, :func:`execute`, runs a job. It hands the job to a warm worker
(:mod:`.worker`, spawned as a fresh interpreter, never forked, so TensorFlow never loads in the
web process or the Celery worker, and kept between runs so that TensorFlow is imported once per
worker, not once per run), which forks a child for the job in a session of its own so that its
whole process group can be killed. A watchdog enforces the child's wall-clock, CPU and memory
limits (the kernel's ``RLIMIT_CPU`` and ``RLIMIT_AS``, set in the child, back it up), renews the
run's lease every second (and so notices a cancel within one), and records progress; the
results go to the verdict. The child dies with its warm worker, the warm worker with its
supervisor (:mod:`.worker`). Warm workers wait in a pool per process, one per run at once: an
idle one holds TensorFlow's memory (a few hundred MB) until the process ends.
"""
from __future__ import annotations

import base64
import json
import os
import queue
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
#: Seconds a warm worker may take to report a child's end once it was killed, before it is replaced.
EXIT_GRACE = 10.0
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
    #: Experiments of the run trained at once, each in a process of its own; the limits hold for them together.
    processes: int = 1

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Limits:
        return cls(float(config["REPRO_TIMEOUT"]), int(config["REPRO_CPU_SECONDS"]), int(config["REPRO_MEMORY_MB"]),
                   int(config["REPRO_THREADS"]), int(config["REPRO_PROCESSES"]))


class RunsUnavailable(Exception):
    """The run could not be handed to a worker (the broker is unreachable); the client may try again shortly."""


class JobFailed(Exception):
    """The worker broke a limit, died, or was cancelled; the message says which, for the user."""


def _usage(pid: int) -> tuple[float, int]:
    """CPU seconds and memory of a run's process ``pid`` and its lanes, from /proc (zeros where there is none).

    CPU: the process, its lanes, and the lanes that ended (its reaped children). Memory: its
    resident bytes, plus what each lane holds privately; a lane shares the rest (TensorFlow
    itself) with it, which counts it once.
    """
    try:
        seconds = _cpu(str(pid), reaped=True)
        with open(f"/proc/{pid}/statm") as statm:
            resident = int(statm.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0.0, 0
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as children:
            lanes = children.read().split()
    except OSError:  # a kernel without this file: the lanes go unseen, the kernel's own limits still hold
        lanes = []
    for lane in lanes:
        try:
            seconds += _cpu(lane)
            resident += _private(lane)
        except (OSError, IndexError, ValueError):  # it ended meanwhile: its CPU time is its parent's now
            continue
    return seconds, resident


def _cpu(pid: str, reaped: bool = False) -> float:
    """User and system CPU seconds of a process, with its reaped children's if ``reaped``."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return sum(map(int, fields[11:15] if reaped else fields[11:13])) / _TICKS


def _private(pid: str) -> int:
    """Bytes a process alone maps: its private pages, clean and dirty."""
    with open(f"/proc/{pid}/smaps_rollup") as rollup:
        return sum(int(line.split()[1]) * 1024 for line in rollup
                   if line.startswith(("Private_Clean", "Private_Dirty")))


def _environment(threads: int) -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(_ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "KERAS_BACKEND": "tensorflow",
            "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": str(threads),
            "TF_NUM_INTRAOP_THREADS": str(threads), "TF_NUM_INTEROP_THREADS": str(threads),
            "MPLBACKEND": "Agg"}


def process_name(run_id: str) -> str:
    """The name (``ps``, /proc/PID/comm: 15 bytes at most) of the process that trains a run."""
    return "repro-" + run_id.removeprefix("run-")[:9]


class WarmWorker:
    """A :mod:`.worker` process that has imported TensorFlow and forks a child per job, one job at a time.

    Its stdout is read into ``lines`` by a thread (None once it closes); its stderr, and its
    children's, go to ``errors``, emptied before each job so that a failure's reason is the job's own.
    A worker is reused only after it reported its child's end, so a job never meets another's messages.
    """

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self.errors = tempfile.TemporaryFile("a+")  # appended to by every writer, so it can be emptied
        self.process = subprocess.Popen([sys.executable, "-m", "assistant.repro.worker"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=self.errors, text=True, cwd=_ROOT,
                                        env=_environment(threads), start_new_session=True)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.child: int | None = None  # the pid of the child training a job now
        threading.Thread(target=lambda: [*map(self.lines.put, self.process.stdout), self.lines.put(None)],
                         name="repro warm worker", daemon=True).start()

    def alive(self) -> bool:
        return self.process.poll() is None

    def send(self, request: dict[str, Any]) -> None:
        self.errors.truncate(0)
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()

    def error_tail(self) -> str | None:
        self.errors.seek(0)
        tail = [line.strip() for line in self.errors.read().splitlines() if line.strip()]
        return tail[-1] if tail else None

    def close(self) -> None:
        """Stop it for good (its child too): it broke the protocol, or failed to report a child's end."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()


_idle: list[WarmWorker] = []
_idle_lock = threading.Lock()


def _take_warm_worker(threads: int) -> WarmWorker:
    """An idle warm worker of this process with these threads, or a new one (which pays TensorFlow's import)."""
    with _idle_lock:
        for worker in list(_idle):
            _idle.remove(worker)
            if worker.alive() and worker.threads == threads:
                return worker
            worker.close()
    return WarmWorker(threads)


def warm_up(threads: int) -> None:
    """Start a warm worker now, so that the first run does not wait for TensorFlow's import."""
    worker = WarmWorker(threads)
    with _idle_lock:
        _idle.append(worker)


def run_worker(run_id: str, experiments: list[dict[str, Any]], names: Mapping[str, Any], limits: Limits,
               on_event: Callable[[dict[str, Any]], None], still_held: Callable[[], bool]) -> None:
    """Run the experiments in a child of a warm worker and pass on each message it sends; raises JobFailed.

    ``names`` (:func:`~.spec.run_names`) tells the worker, which reads no knowledge base, Keras's classes.
    ``still_held`` renews the run's lease, and says False once the run is no longer this worker's.
    """
    started = time.monotonic()
    job = {"experiments": experiments, "names": names, "deadline": time.time() + limits.wall * SOFT_DEADLINE,
           "threads": limits.threads, "processes": limits.processes}
    space = (limits.memory_mb + ADDRESS_SPACE_HEADROOM_MB) * 1024 * 1024
    worker = _take_warm_worker(limits.threads)
    reason: str | None = "the run's supervisor failed"
    code = None
    try:
        worker.send({"job": job, "name": process_name(run_id), "cpu": limits.cpu, "address_space": space})
        reason, code = _watch(worker, limits, started, on_event, still_held)
    except BrokenPipeError:  # the warm worker died before it took the job
        reason = "the worker stopped"
    finally:
        if reason is not None and worker.child is not None:
            _kill(worker.child)
        if code is None and worker.child is not None:
            code = _exit_code(worker.lines)
        if code is None or not worker.alive():  # it died, or cannot be trusted to follow the protocol
            worker.close()
        else:
            worker.child = None
            with _idle_lock:
                _idle.append(worker)
    if reason == "the worker stopped":
        reason = f"the worker failed: {worker.error_tail() or 'it stopped before the run ended'}"[:500]
    elif reason is None and code != 0:
        reason = _death(code, worker.error_tail(), limits)
    if reason is not None:
        raise JobFailed(reason)


def _kill(pid: int) -> None:
    """Kill a child and its process group (the group may not exist yet: it makes it first thing)."""
    for kill in (os.killpg, os.kill):
        try:
            kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _exit_code(lines: queue.Queue) -> int | None:
    """Skip what a killed child still sent, up to its warm worker's ``exit``; its code, or None if none came."""
    deadline = time.monotonic() + EXIT_GRACE
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=POLL)
        except queue.Empty:
            continue
        if line is None:
            return None
        try:
            message = json.loads(line) if line.strip() else {}
        except ValueError:
            continue  # a message the killed child left half-written
        if message.get("event") == "exit":
            return message["code"]
    return None


def _watch(worker: WarmWorker, limits: Limits, started: float, on_event: Callable[[dict[str, Any]], None],
           still_held: Callable[[], bool]) -> tuple[str | None, int | None]:
    """Relay the child's messages until it ends (its exit code), or the reason to kill it, if one arises first."""
    renewed = time.monotonic()
    while True:
        try:
            line = worker.lines.get(timeout=POLL)
        except queue.Empty:
            line = ""
        if line is None:
            return "the worker stopped", None
        if line.strip():
            message = json.loads(line)
            if message["event"] == "started":
                worker.child = message["pid"]
            elif message["event"] == "exit":
                return None, message["code"]
            else:
                on_event(message)
        seconds, resident = _usage(worker.child) if worker.child else (0.0, 0)
        if time.monotonic() - started > limits.wall:
            return f"the run took longer than its wall-clock limit of {limits.wall:g} s and was stopped", None
        if seconds > limits.cpu:
            return f"the run used more than its {limits.cpu} s of CPU time and was stopped", None
        if resident > limits.memory_mb * 1024 * 1024:
            return f"the run used more than its {limits.memory_mb} MB of memory and was stopped", None
        if time.monotonic() - renewed > RENEW_EVERY:
            renewed = time.monotonic()
            if not still_held():
                return "cancelled on request, or taken over by another worker", None


def _death(returncode: int, error: str | None, limits: Limits) -> str:
    """Why a worker that was not killed here ended badly, in a sentence (``error``: its last line on stderr)."""
    if returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        return f"the run was stopped by the system at its limits ({limits.cpu} s CPU, {limits.memory_mb} MB memory)"
    return f"the worker failed: {error or f'exit status {returncode}'}"[:500]


class Progress:
    """How many of a run's planned epochs are behind it, never going back.

    Experiments train side by side, so the sum over all of them is kept, not the ended ones plus the
    latest epoch heard (that went back when one ended while another was further along); one that
    ended counts every epoch it was planned, since it may stop early once its verdict is settled.
    """

    def __init__(self, planned: dict[str, int]) -> None:
        self.planned, self.done = planned, dict.fromkeys(planned, 0)

    @property
    def epoch(self) -> int:
        return sum(self.done.values())

    @property
    def epochs(self) -> int:
        """All the epochs the run was planned."""
        return sum(self.planned.values())

    def as_dict(self, experiment: str) -> dict[str, Any]:
        """What is stored and streamed: how far the run got, of how far, and the experiment heard from last."""
        return {"epoch": self.epoch, "epochs": self.epochs, "experiment": experiment}

    def trained(self, experiment: str, epoch: int) -> None:
        self.done[experiment] = max(self.done[experiment], min(epoch, self.planned[experiment]))

    def ended(self, experiment: str) -> None:
        self.done[experiment] = self.planned[experiment]


def execute(run_id: str) -> None:
    """Run one job to its end: claim it, train its experiments under limits, conclude.

    A job delivered again (its worker died, or the sweep queued it again) takes the run back once
    the dead worker's lease has lapsed; one whose run ended or is held by a live worker does nothing.
    """
    run = store.claim(run_id)
    if run is None:
        return
    experiments = run["plan"]["experiments"]
    results: dict[str, dict[str, Any]] = {}
    progress = Progress({e["name"]: e["spec"]["training"]["epochs"] for e in experiments})
    state = {"reported": 0.0, "plot": None}

    def report(experiment: str) -> None:
        try:
            store.report(run_id, progress.as_dict(experiment))
        except SQLAlchemyError:  # progress is for show: a database away for a moment does not stop the run
            current_app.logger.warning("could not record the progress of run %s", run_id, exc_info=True)

    def on_event(event: dict[str, Any]) -> None:
        if event["event"] == "epoch":
            progress.trained(event["experiment"], event["epoch"])
            if time.monotonic() - state["reported"] > REPORT_EVERY:
                state["reported"] = time.monotonic()
                report(event["experiment"])
        elif event["event"] == "result":
            results[event["name"]] = event
            progress.ended(event["name"])
            report(event["name"])
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
