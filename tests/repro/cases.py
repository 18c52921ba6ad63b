"""A small conversation whose reproduction run trains in seconds, shared by the run tests."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from assistant.repro import FINISHED, store
from assistant.repro.backends import process_name

DATA = Path(__file__).with_name("data")
ROOT = Path(__file__).resolve().parents[2]

#: Adam at learning rate 5 on a small three-class problem: a huge, jumping loss.
TINY = {
    "symptom": "the loss is huge and jumps around",
    "metrics": {"loss": [812.0, 35.2, 9.1, 14.3, 6.2], "val_loss": [120.4, 15.1, 11.9, 13.2, 8.8],
                "accuracy": [0.31, 0.34, 0.33, 0.35, 0.33], "val_accuracy": [0.3, 0.33, 0.31, 0.33, 0.32]},
    "training": {"optimizer": "adam", "learning_rate": 5.0, "batch_size": 32, "epochs": 5,
                 "loss": "sparse_categorical_crossentropy", "output_activation": "softmax", "output_units": 3,
                 "hidden_activation": "relu", "n_hidden_layers": 1, "total_params": 83, "validation_split": 0.2},
    "dataset": {"task": "multiclass_classification", "n_samples": 300, "n_features": 4, "n_classes": 3,
                "class_counts": {"0": 100, "1": 100, "2": 100}, "feature_min": -3.1, "feature_max": 3.2,
                "feature_mean": 0.0, "feature_std": 1.0, "missing_fraction": 0.0},
}

#: Facts a reproduction run can build and train a model from: a binary classifier on generated data.
RUNNABLE_TRAINING = {"optimizer": "adam", "learning_rate": 0.5, "loss": "binary_crossentropy", "epochs": 6,
                     "batch_size": 32, "n_hidden_layers": 2, "hidden_activation": "relu",
                     "output_activation": "sigmoid", "output_units": 1}
RUNNABLE_DATASET = {"task": "binary_classification", "n_samples": 400, "n_features": 8, "n_classes": 2}


def wait_for(condition, timeout: float = 120.0, every: float = 0.2):
    """Poll until ``condition()`` is truthy; returns it, or fails the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"still waiting after {timeout:g} s")


def worker_pids(run_id: str) -> list[int]:
    """Live processes training a run (a warm worker's child names itself after the run)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            name = (entry / "comm").read_text().strip()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if name == process_name(run_id) and state != "Z":
            found.append(int(entry.name))
    return found


def model_json(name: str) -> str:
    """A real ``model.to_json()`` kept in tests/repro/data (made with Keras, so tests need not import it)."""
    return (DATA / f"{name}.json").read_text()



@contextmanager
def celery_worker(settings: dict, log: Path) -> Iterator[subprocess.Popen]:
    """A real Celery worker process, as deploy/README.md starts one, with these ``ASSISTANT_*`` settings.

    Yields the process once it is ready; stops it at the end unless the test has killed it.
    """
    environment = {**os.environ, **{f"ASSISTANT_{key}": str(value) for key, value in settings.items()}}
    with log.open("a") as output:
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "assistant.repro.celery_worker", "worker", "--pool=threads",
             "--concurrency=1", "--loglevel=info", "--without-gossip", "--without-mingle"],
            cwd=ROOT, env=environment, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: "ready." in log.read_text() or worker.poll() is not None, timeout=60)
        assert worker.poll() is None, log.read_text()
        yield worker
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)


def finished(app, conversation_id: str, run_id: str):
    """A wait_for check: the run once it has finished, else None."""
    def check():
        with app.app_context():
            run = store.find(run_id, conversation_id, None)
        return run if run["status"] in FINISHED else None
    return check
