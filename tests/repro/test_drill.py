"""The drill: a worker killed mid-run (SIGKILL) and the run finishing elsewhere, on real processes.

Celery workers on the local Redis, and web processes with the local pool: each loses a run at
its first epochs, the kernel takes its TensorFlow child with it, and the sweep of a process still
alive queues the run again. ``benchmarks/run_recovery.py`` prints the time from kill to verdict.
"""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request

import pytest
import redis

from assistant import conversations
from assistant.repro import EXTENSION, store
from tests.repro.cases import ROOT, TINY, celery_worker, finished, wait_for, worker_pids

pytestmark = [pytest.mark.tf, pytest.mark.services]

#: Short leases, so that a dead worker's run is taken back within seconds (the default is 15 s), and
#: runs of two epochs an experiment, so that the drill takes a minute or so.
LEASE = {"REPRO_LEASE_SECONDS": 3, "REPRO_SWEEP": True, "REPRO_MAX_EPOCHS": 2}
METRICS_PORT = 19808


def training(app, conversation_id, run_id):
    """The run, once a worker is training it (its first epoch reported)."""
    def check():
        with app.app_context():
            run = store.find(run_id, conversation_id, None)
        return run if run["status"] == "running" and run["progress"]["epoch"] > 0 else None
    return check


def sample(exposed: str, name: str) -> float | None:
    """One sample's value in Prometheus text (``name`` with its labels as written)."""
    for line in exposed.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return None


def test_a_celery_worker_killed_mid_run_and_the_run_finishes_on_a_new_one(run_app, redis_url, tmp_path):
    redis.Redis.from_url(redis_url).flushdb()
    settings = {"DATABASE_URL": f"sqlite:///{tmp_path / 'runs.sqlite'}", "REPRO_BACKEND": "celery",
                "CELERY_BROKER_URL": redis_url, "CELERY_RESULT_BACKEND": redis_url, **LEASE}
    app = run_app(**settings)
    client = app.test_client()
    log = tmp_path / "celery.log"
    with celery_worker(settings, log) as first:
        assert client.get("/readyz").get_json()["status"] == "ready"  # the worker answers the ping
        with app.app_context():
            conversation_id, _ = conversations.start(None, TINY)
            run_id = app.extensions[EXTENSION].start(conversation_id, None)["id"]
        wait_for(training(app, conversation_id, run_id), timeout=60)
        during = client.get("/metrics").get_data(as_text=True)
        children = worker_pids(run_id)
        os.kill(first.pid, signal.SIGKILL)
        killed = time.monotonic()
        wait_for(lambda: not worker_pids(run_id), timeout=3)  # its TensorFlow child died with it
    assert children, "the run was training in a child process"
    assert sample(during, 'assistant_repro_runs{status="running"}') == 1
    assert sample(during, "assistant_repro_unacked_tasks") == 1  # with the worker about to be killed
    with celery_worker({**settings, "REPRO_METRICS_PORT": METRICS_PORT}, log):
        run = wait_for(finished(app, conversation_id, run_id), timeout=60)
        recovered = time.monotonic() - killed
        worker_metrics = urllib.request.urlopen(f"http://127.0.0.1:{METRICS_PORT}/metrics", timeout=5).read().decode()
    assert (run["status"], run["attempts"]) == ("done", 2), run["error"]
    assert recovered < 60
    after = client.get("/metrics").get_data(as_text=True)
    assert sample(after, 'assistant_repro_runs{status="done"}') == 1
    assert sample(after, 'assistant_repro_runs{status="running"}') == 0
    assert sample(worker_metrics, 'assistant_repro_run_duration_seconds_count{outcome="done"}') == 1
    with app.app_context():
        assert conversations.transcript(conversation_id, None)["turns"][-1]["body"]["reproduction"]["id"] == run_id


WEB_PROCESS = textwrap.dedent("""
    import json, sys, time
    from assistant import create_app
    app = create_app({"DATABASE_URL": sys.argv[1], "REPRO_BACKEND": "local", "REPRO_SWEEP": False,
                      "REPRO_MAX_EPOCHS": 2})
    client = app.test_client()
    conversation = client.post("/api/v1/conversations", json=json.loads(sys.argv[2])).get_json()["id"]
    run = client.post(f"/api/v1/conversations/{conversation}/reproductions").get_json()
    print(json.dumps({"conversation": conversation, "run": run["id"]}), flush=True)
    time.sleep(600)
""")


def test_a_web_process_killed_mid_run_and_another_one_finishes_it(run_app, tmp_path):
    """The local pool: the run lived in the killed process; the sweep of another web process takes it over."""
    database = f"sqlite:///{tmp_path / 'web.sqlite'}"
    web = subprocess.Popen([sys.executable, "-c", WEB_PROCESS, database, json.dumps(TINY)], cwd=ROOT,
                           stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        started = json.loads(web.stdout.readline())
        conversation_id, run_id = started["conversation"], started["run"]
        app = run_app(DATABASE_URL=database, **LEASE)  # the other web process: it sweeps
        wait_for(training(app, conversation_id, run_id), timeout=60)
        os.kill(web.pid, signal.SIGKILL)
        wait_for(lambda: not worker_pids(run_id), timeout=3)
        run = wait_for(finished(app, conversation_id, run_id), timeout=60)
    finally:
        web.kill()
        web.wait()
    assert (run["status"], run["attempts"]) == ("done", 2), run["error"]
