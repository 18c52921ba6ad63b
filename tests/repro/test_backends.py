"""Real jobs: each starts a worker process that imports TensorFlow and trains, under real limits."""
import base64
import json
import marshal
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import redis

from assistant import conversations
from assistant.repro import EXTENSION, backends, store
from assistant.repro.experiments import Experiment
from assistant.repro.spec import build, run_names
from tests.helpers import shipped_kb
from tests.repro.cases import TINY, finished, model_json, wait_for, worker_pids
from tests.repro.cases import celery_worker as start_celery_worker

NAMES = run_names(shipped_kb().keras)
# Every test trains in worker processes (the Celery one also needs Redis: services, from its fixture).
pytestmark = pytest.mark.tf


def start_run(app, request=TINY):
    with app.app_context():
        conversation_id, _ = conversations.start(None, request)
        run = app.extensions[EXTENSION].start(conversation_id, None)
    return conversation_id, run["id"]


def test_a_run_trains_in_a_worker_process_and_concludes(run_app):
    app = run_app()
    conversation_id, run_id = start_run(app)
    run = wait_for(finished(app, conversation_id, run_id), timeout=180)
    assert run["status"] == "done", run["error"]
    assert run["progress"]["epoch"] == run["progress"]["epochs"] > 0
    result = run["result"]
    assert isinstance(result["reproduced"], bool) and result["verdict"]
    assert [e["name"] for e in result["experiments"]] == [e["name"] for e in run["plan"]]
    baseline = result["experiments"][0]
    assert len(baseline["history"]["loss"]) == TINY["training"]["epochs"]
    assert set(baseline["internals"]) >= {"gradient_norms", "dead_fraction_by_epoch", "update_ratio_by_epoch"}
    with app.app_context():
        assert store.plot(run_id, conversation_id, None).startswith(b"\x89PNG")
        turns = conversations.transcript(conversation_id, None)["turns"]
    assert turns[-1]["body"]["reproduction"]["id"] == run_id
    assert worker_pids(run_id) == []


def test_a_runs_experiments_train_at_once_in_lanes_and_give_what_one_process_gives(run_app):
    runs = {}
    for processes in (1, 2):
        app = run_app(REPRO_PROCESSES=processes)
        conversation_id, run_id = start_run(app)
        run = wait_for(finished(app, conversation_id, run_id), timeout=180)
        assert run["status"] == "done", run["error"]
        runs[processes] = {e["name"]: e for e in run["result"]["experiments"]}
    assert runs[1].keys() == runs[2].keys()
    for name, alone in runs[1].items():
        for metric, values in alone["history"].items():
            assert runs[2][name]["history"][metric] == pytest.approx(values, rel=1e-5, nan_ok=True), (name, metric)
    trained = [(e["started"], e["started"] + e["seconds"]) for e in runs[2].values() if e.get("seconds")]
    assert any(a[0] < b[1] and b[0] < a[1] for i, a in enumerate(trained) for b in trained[i + 1:])  # overlapping


def test_a_lane_that_dies_fails_its_run_and_takes_the_others_with_it(run_app):
    app = run_app(REPRO_PROCESSES=2)
    conversation_id, run_id = start_run(app)

    def lanes() -> list[int]:  # the run's processes forked by another of them
        named = worker_pids(run_id)
        return [pid for pid in named if parent(pid) in named]

    os.kill(wait_for(lanes, timeout=60)[0], signal.SIGKILL)
    run = wait_for(finished(app, conversation_id, run_id), timeout=60)
    assert run["status"] == "failed" and "stopped by the system" in run["error"]
    assert worker_pids(run_id) == []


def test_a_runs_cpu_and_memory_count_every_lane(tmp_path):
    """A leader with two lanes that each burn CPU and hold 64 MB of their own: all of it is the run's."""
    script = tmp_path / "lanes.py"
    script.write_text(textwrap.dedent("""
        import os, sys, time
        for _ in range(2):
            if os.fork() == 0:
                held = bytearray(64 * 2**20)  # written, so resident and private
                end = time.process_time() + 0.6
                while time.process_time() < end:
                    pass
                os.write(1, b"busy\\n")  # one write: the two lanes' lines never interleave
                time.sleep(60)
        time.sleep(60)
    """))
    leader = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert [leader.stdout.readline() for _ in range(2)] == ["busy\n"] * 2
        seconds, resident = backends._usage(leader.pid)
        alone = int(Path(f"/proc/{leader.pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    finally:
        leader.kill()
        leader.wait()
    assert seconds >= 1.1
    assert resident >= alone + 2 * 64 * 2**20


def test_a_run_past_its_wall_clock_limit_is_killed(run_app):
    app = run_app(REPRO_TIMEOUT=1)  # TINY's six experiments take over 2 s of training alone, start-up aside
    conversation_id, run_id = start_run(app)
    run = wait_for(finished(app, conversation_id, run_id), timeout=30)
    assert run["status"] == "failed"
    assert run["error"] == "the run took longer than its wall-clock limit of 1 s and was stopped"
    assert worker_pids(run_id) == []
    with app.app_context():
        assert len(conversations.transcript(conversation_id, None)["turns"]) == 2  # no verdict turn


def test_a_run_over_its_memory_limit_is_killed(run_app):
    app = run_app(REPRO_MEMORY_MB=150)  # importing TensorFlow alone takes more
    conversation_id, run_id = start_run(app)
    run = wait_for(finished(app, conversation_id, run_id), timeout=60)
    assert (run["status"], run["error"]) == ("failed", "the run used more than its 150 MB of memory and was stopped")
    assert worker_pids(run_id) == []


def test_a_cancelled_run_has_its_process_group_killed(run_app):
    app = run_app()
    conversation_id, run_id = start_run(app)
    wait_for(lambda: worker_pids(run_id), timeout=30)
    with app.app_context():
        assert store.cancel(run_id, conversation_id, None)["status"] == "cancelled"
    wait_for(lambda: not worker_pids(run_id), timeout=5)
    with app.app_context():
        run = store.find(run_id, conversation_id, None)
        assert (run["status"], run["error"]) == ("cancelled", "cancelled on request")
        assert store.finish(run_id, "done") is False  # a worker that ends late cannot undo the cancel


def test_a_worker_refuses_a_malicious_model_json_it_is_sent(run_app, tmp_path):
    """Past the web tier's check (as if a message were forged on the broker), the worker checks again."""
    marker = tmp_path / "pwned"
    payload = eval(f"lambda t: __import__('pathlib').Path({str(marker)!r}).write_text('pwned') or t")  # noqa: S307
    forged = json.loads(model_json("lambda"))
    forged["config"]["layers"][1]["config"]["function"]["config"]["code"] = base64.b64encode(
        marshal.dumps(payload.__code__)).decode()
    spec = build(NAMES, {**TINY["training"], **TINY["dataset"]}).replace(keras_json=json.dumps(forged))
    app = run_app()
    with app.app_context():
        conversation_id, _ = conversations.start(None, TINY)
        baseline = Experiment("baseline", "baseline", "Yours", spec)
        run = store.create(conversation_id, None, "local", [baseline.to_json()], [])
        backends.execute(run["id"])
        run = store.find(run["id"], conversation_id, None)
    assert run["status"] == "done"
    assert "uses Lambda, which a run does not load" in run["result"]["experiments"][0]["error"]
    assert run["result"]["verdict"].startswith("**Could not run your setup.**")
    assert not marker.exists()


@pytest.fixture
def celery_worker(tmp_path, redis_url):
    """A real Celery worker process on the local Redis, reading the same database as the test's app."""
    redis.Redis.from_url(redis_url).flushdb()  # an empty queue for this worker
    settings = {"DATABASE_URL": f"sqlite:///{tmp_path / 'runs.sqlite'}", "REPRO_BACKEND": "celery",
                "CELERY_BROKER_URL": redis_url, "CELERY_RESULT_BACKEND": redis_url}
    with start_celery_worker(settings, tmp_path / "celery.log"):
        yield settings


def test_a_run_on_a_celery_worker(run_app, celery_worker):
    app = run_app(**celery_worker)
    conversation_id, run_id = start_run(app)
    with app.app_context():
        assert store.find(run_id, conversation_id, None)["backend"] == "celery"
    run = wait_for(finished(app, conversation_id, run_id), timeout=180)
    assert run["status"] == "done", run["error"]
    assert run["result"]["experiments"][0]["history"]["loss"]
    with app.app_context():
        assert conversations.transcript(conversation_id, None)["turns"][-1]["body"]["reproduction"]["id"] == run_id


def test_runs_fork_from_one_warm_worker_that_imported_tensorflow_once(run_app):
    """A child per run, from the same warm worker: TensorFlow is imported once, even after a run was cancelled."""
    app = run_app()
    conversation_id, first = start_run(app)
    assert wait_for(finished(app, conversation_id, first), timeout=180)["status"] == "done"
    warm = {w.process.pid: w for w in backends._idle if w.alive()}  # another test's run may hold one more
    conversation_id, cancelled = start_run(app)
    named = wait_for(lambda: worker_pids(cancelled), timeout=60)  # the run's process, and the lanes it forked
    (forked_from,) = {warm[parent(pid)] for pid in named if parent(pid) in warm}
    with app.app_context():
        store.cancel(cancelled, conversation_id, None)
    wait_for(lambda: not worker_pids(cancelled), timeout=5)
    conversation_id, third = start_run(app)
    run = wait_for(finished(app, conversation_id, third), timeout=180)
    assert run["status"] == "done", run["error"]
    assert forked_from in backends._idle and forked_from.alive()


def parent(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[1])


def test_progress_never_goes_back_while_experiments_train_side_by_side():
    progress = backends.Progress({"baseline": 10, "fix": 10, "other": 10})
    seen = []
    for step in (("trained", "baseline", 5), ("trained", "fix", 7), ("ended", "baseline"),  # stopped early at 5
                 ("trained", "fix", 6), ("trained", "other", 12), ("ended", "fix"), ("ended", "other")):
        getattr(progress, step[0])(*step[1:])
        seen.append(progress.epoch)
    # the old sum (the ended experiments plus the latest epoch) read 5, 7, 10, 16, 22, 20, 30
    assert seen == [5, 12, 17, 17, 27, 30, 30] == sorted(seen)
