"""Runs held on leases: a run whose holder stopped is taken back, queued again, or failed, and never lost."""
from datetime import timedelta

import pytest
from sqlalchemy import update

from assistant import conversations, db
from assistant.repro import store, sweep
from assistant.repro.backends import RunsUnavailable
from tests.helpers import assert_error
from tests.repro.cases import TINY

API = "/api/v1/conversations"


class Recorded:
    """A backend that keeps the runs it is handed, so a test can see what the sweep queued again."""

    def __init__(self, name="local", refuses=False):
        self.name, self.refuses, self.submitted = name, refuses, []

    def submit(self, run_id):
        if self.refuses:
            raise RunsUnavailable("the run queue cannot be reached")
        self.submitted.append(run_id)


@pytest.fixture
def new_run(app):
    """Store a queued run of a new conversation, as the web process does before it hands it over."""
    def make(backend="local"):
        conversation_id, _ = conversations.start(None, TINY)
        return store.create(conversation_id, None, backend, [], [])
    with app.app_context():
        yield make


def lapse(run_id, worker=None):
    """Let the run's lease run out, as when its holder (``worker``, if named) stopped renewing it."""
    values = {"leased_until": db.now() - timedelta(seconds=1)}
    if worker:
        values["worker"] = worker
    with db.get_engine().begin() as connection:
        connection.execute(update(db.reproductions).where(db.reproductions.c.id == run_id).values(**values))


def view(run):
    return store.find(run["id"], run["conversation_id"], None)


def test_a_claimed_run_is_held_and_a_second_delivery_does_nothing(new_run):
    run = new_run()
    assert store.claim(run["id"]) is not None
    assert store.claim(run["id"]) is None  # the same task delivered again while its worker lives
    assert (view(run)["status"], view(run)["attempts"]) == ("running", 1)
    assert store.renew(run["id"]) and store.finish(run["id"], "done", result={})
    assert store.claim(run["id"]) is None and view(run)["status"] == "done"


def test_a_delivery_after_the_lease_lapsed_takes_the_run_back(new_run):
    run = new_run()
    store.claim(run["id"])
    lapse(run["id"], worker="dead-host:1:deadbeef")
    assert store.claim(run["id"]) is not None
    assert (view(run)["status"], view(run)["attempts"]) == ("running", 2)
    lapse(run["id"], worker="dead-host:2:deadbeef")
    store.claim(run["id"])
    lapse(run["id"], worker="dead-host:3:deadbeef")
    assert store.claim(run["id"]) is None  # REPRO_ATTEMPTS (3) starts, then no more


def test_a_worker_that_lost_its_run_cannot_finish_or_report_it(new_run):
    run = new_run()
    store.claim(run["id"])
    lapse(run["id"], worker="another-host:7:0badf00d")  # taken over by another worker
    assert store.renew(run["id"]) is False
    assert store.finish(run["id"], "failed", error="late") is False
    assert view(run)["error"] is None


def test_a_cancel_ends_the_lease(new_run):
    run = new_run()
    store.claim(run["id"])
    store.cancel(run["id"], run["conversation_id"], None)
    assert store.renew(run["id"]) is False  # the worker's next renewal tells it to stop


def test_the_sweep_queues_a_run_whose_worker_died_again(new_run):
    run, backend = new_run(), Recorded()
    store.claim(run["id"])
    assert sweep.sweep(backend) == {"requeued": [], "failed": []}  # its worker renews: nothing to do
    lapse(run["id"], worker="dead-host:1:deadbeef")
    assert sweep.sweep(backend) == {"requeued": [run["id"]], "failed": []}
    assert backend.submitted == [run["id"]] and view(run)["status"] == "queued"
    assert sweep.sweep(backend)["requeued"] == []  # held by this process now, until a worker claims it
    assert store.runs(run["conversation_id"], None)[0]["status"] == "queued"  # lists show the same truth


def test_the_sweep_fails_a_run_whose_workers_kept_dying(new_run):
    run, backend = new_run(), Recorded()
    for attempt in range(3):
        store.claim(run["id"])
        lapse(run["id"], worker=f"dead-host:{attempt}:deadbeef")
    assert sweep.sweep(backend) == {"requeued": [], "failed": [run["id"]]}
    found = store.runs(run["conversation_id"], None)[0]
    assert (found["status"], found["error"]) == ("failed", "the worker running it stopped, 3 times out of 3 attempts")
    assert backend.submitted == []


def test_the_sweep_fails_a_celery_run_that_was_never_sent(new_run):
    """Its process stopped between storing the run and sending the task: the client never heard of it."""
    run, backend = new_run("celery"), Recorded("celery")
    assert sweep.sweep(backend)["failed"] == []  # still within the sender's lease
    lapse(run["id"])
    assert sweep.sweep(backend) == {"requeued": [], "failed": [run["id"]]}
    assert view(run)["error"].startswith("the run was never handed to a worker")


def test_a_local_run_waits_in_its_process_pool_while_that_process_lives(new_run):
    run, backend = new_run(), Recorded()
    lapse(run["id"])
    assert sweep.sweep(backend)["requeued"] == []  # this process renews the runs its own pool holds
    lapse(run["id"], worker="stopped-web:9:deadbeef")
    assert sweep.sweep(backend) == {"requeued": [run["id"]], "failed": []}  # its process stopped: taken over
    assert view(run)["attempts"] == 0


def test_a_run_the_sweep_cannot_send_stays_held_until_a_later_sweep(new_run):
    run = new_run("celery")
    store.claim(run["id"])
    lapse(run["id"], worker="dead-host:1:deadbeef")
    assert sweep.sweep(Recorded("celery", refuses=True)) == {"requeued": [], "failed": []}
    assert view(run)["status"] == "queued"
    lapse(run["id"])
    assert sweep.sweep(Recorded("celery"))["failed"] == [run["id"]]


def test_processes_sweeping_at_once_take_each_run_once(new_run):
    run = new_run()
    store.claim(run["id"])
    lapse(run["id"], worker="dead-host:1:deadbeef")
    (found,) = store.lapsed("local")
    assert store.requeue(found) is True
    assert store.requeue(found) is False and store.fail_lapsed(found, "late") is False


def test_a_broker_that_refuses_the_task_is_a_503_and_no_run_stays_queued(make_app, row_counts):
    app = make_app(REPRO_BACKEND="celery", CELERY_BROKER_URL="redis://127.0.0.1:1/0")
    client = app.test_client()
    conversation = client.post(API, json=TINY).get_json()["id"]
    response = client.post(f"{API}/{conversation}/reproductions")
    assert "try again in 30 s" in assert_error(response, 503, "runs_unavailable")
    assert response.headers["Retry-After"] == "30"
    (run,) = client.get(f"{API}/{conversation}/reproductions").get_json()["reproductions"]
    assert run["status"] == "failed" and run["error"].startswith("the run queue cannot be reached")
