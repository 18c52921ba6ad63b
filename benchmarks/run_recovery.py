"""How fast a run recovers when its Celery worker is killed mid-run (issue 18's drill, measured).

    .venv/bin/python benchmarks/run_recovery.py [--lease 30] [--repeat 3] [--redis redis://127.0.0.1:6379/15]

Two real workers on the local Redis, a SQLite file as the database, and this process as the web
process (it sweeps, as a web machine does). Each round starts a run, waits for its first epoch,
then kills the worker training it with SIGKILL: the other worker finishes it. Printed per round
and as medians: seconds from the kill to the TensorFlow child's death, to the other worker's
claim of the run, and to the verdict; and, for scale, how long an undisturbed run takes. The
lease (``REPRO_LEASE_SECONDS``) bounds the wait: the sweep comes within a third of it after it lapses.
"""
from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import redis  # noqa: E402

from assistant import conversations, create_app  # noqa: E402
from assistant.repro import EXTENSION, FINISHED, store  # noqa: E402
from tests.repro.cases import TINY, celery_worker, wait_for, worker_pids  # noqa: E402


def supervisor(run_id: str) -> int:
    """The Celery worker whose warm TensorFlow worker's child trains the run."""
    (child,) = worker_pids(run_id)
    warm = int(Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[1])
    return int(Path(f"/proc/{warm}/stat").read_text().rsplit(")", 1)[1].split()[1])


def one_round(app, kill: bool) -> dict[str, float]:
    with app.app_context():
        conversation_id, _ = conversations.start(None, TINY)
        run_id = app.extensions[EXTENSION].start(conversation_id, None)["id"]

    def run() -> dict:
        with app.app_context():
            return store.find(run_id, conversation_id, None)

    clock = time.monotonic()
    if not kill:
        wait_for(lambda: run()["status"] in FINISHED, timeout=300, every=0.1)
        return {"undisturbed": time.monotonic() - clock}
    wait_for(lambda: run()["progress"]["epoch"] > 0 and len(worker_pids(run_id)) == 1, timeout=120, every=0.1)
    os.kill(supervisor(run_id), signal.SIGKILL)
    killed, times = time.monotonic(), {}
    while (found := run())["status"] not in FINISHED:
        if "child gone" not in times and not worker_pids(run_id):
            times["child gone"] = time.monotonic() - killed
        if "claimed again" not in times and found["attempts"] == 2:
            times["claimed again"] = time.monotonic() - killed
        time.sleep(0.05)
    assert found["status"] == "done", found["error"]
    times["verdict"] = time.monotonic() - killed
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lease", type=float, default=15, help="REPRO_LEASE_SECONDS")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15", help="a Redis database this may empty")
    options = parser.parse_args()
    redis.Redis.from_url(options.redis).flushdb()
    folder = Path(tempfile.mkdtemp(prefix="run-recovery-"))
    settings = {"DATABASE_URL": f"sqlite:///{folder / 'runs.sqlite'}", "REPRO_BACKEND": "celery",
                "CELERY_BROKER_URL": options.redis, "CELERY_RESULT_BACKEND": options.redis,
                "REPRO_LEASE_SECONDS": options.lease}
    app = create_app(settings)
    rounds = []
    with ExitStack() as workers:
        for name in ("a", "b"):
            workers.enter_context(celery_worker(settings, folder / f"worker-{name}.log"))
        undisturbed = one_round(app, kill=False)["undisturbed"]
        for number in range(options.repeat):
            if number:  # the killed worker comes back, as a supervisor would restart it
                workers.enter_context(celery_worker(settings, folder / f"worker-{number}.log"))
            rounds.append(one_round(app, kill=True))
            print(f"round {number + 1}: " + ", ".join(f"{key} {value:.1f} s" for key, value in rounds[-1].items()))
    print(f"lease {options.lease:g} s; an undisturbed run takes {undisturbed:.1f} s")
    print("median seconds from the kill: " + ", ".join(
        f"{key} {statistics.median(r[key] for r in rounds):.1f}" for key in rounds[0]))


if __name__ == "__main__":
    main()
