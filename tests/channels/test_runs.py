"""The reproduction-run endpoints. One module-wide run trains for real; the refusals need no worker."""
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from assistant.channels.api import schema_validator
from tests.helpers import app_factory, assert_error
from tests.repro.cases import TINY, model_json

API = "/api/v1/conversations"
ROOT = Path(__file__).resolve().parents[2]


def events(body: str) -> list[tuple[str, dict]]:
    """(event, data) pairs of a server-sent event stream (blocks that only set ``retry`` are none)."""
    found = []
    for block in body.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if not line.startswith(":"))
        if "event" in fields:
            found.append((fields["event"], json.loads(fields["data"])))
    return found


@pytest.fixture(scope="module")
def followed(tmp_path_factory):
    """A conversation whose run was started over the API and followed on its event stream to the end."""
    with app_factory(REPRO_BACKEND="local",
                     DATABASE_URL=f"sqlite:///{tmp_path_factory.mktemp('runs') / 'api.sqlite'}") as make:
        client = make().test_client()
        conversation = client.post(API, json=TINY).get_json()["id"]
        started = client.post(f"{API}/{conversation}/reproductions")
        stream = client.get(started.get_json()["links"]["events"])
        stream.get_data()  # the stream ends with the run
        yield {"client": client, "conversation": conversation, "started": started, "stream": stream,
               "run": client.get(started.get_json()["links"]["self"]).get_json()}


def test_a_run_is_accepted_and_queued(followed):
    started = followed["started"]
    assert started.status_code == 202
    body = started.get_json()
    assert body["id"].startswith("run-") and body["status"] in ("queued", "running")
    assert started.headers["Location"] == body["links"]["self"]
    assert body["links"]["self"] == f"{API}/{followed['conversation']}/reproductions/{body['id']}"
    assert body["plan"][0] == {"name": "baseline", "kind": "baseline", "title": "Your setup", "cause": None,
                               "changes": {}}


def test_the_event_stream_reports_progress_then_the_end(followed):
    stream = followed["stream"]
    assert stream.mimetype == "text/event-stream"
    seen = events(stream.get_data(as_text=True))
    names = [name for name, _ in seen]
    assert names[-1] == "done" and set(names[:-1]) == {"progress"}
    epochs = [data["progress"]["epoch"] for name, data in seen]
    assert epochs == sorted(epochs) and epochs[-1] == seen[-1][1]["progress"]["epochs"]


def test_a_finished_run_has_the_contracts_result(followed):
    run = followed["run"]
    errors = [e.message for e in schema_validator("Reproduction").iter_errors(run)]
    assert not errors, errors
    assert run["status"] == "done" and run["error"] is None
    result = run["result"]
    assert isinstance(result["reproduced"], bool) and result["verdict"].startswith("**")
    assert all({"name", "history"} <= set(e) for e in result["experiments"])
    assert set(run["links"]) == {"self", "events", "cancel", "plot"}


def test_the_plot_is_served(followed):
    picture = followed["client"].get(followed["run"]["links"]["plot"])
    assert picture.status_code == 200 and picture.mimetype == "image/png"
    assert picture.get_data().startswith(b"\x89PNG")


def test_the_verdict_is_the_conversations_next_turn(followed):
    conversation = followed["client"].get(f"{API}/{followed['conversation']}").get_json()
    assert conversation["reproductions"] == f"{API}/{followed['conversation']}/reproductions"
    user, assistant = conversation["turns"][-2:]
    assert user["body"] == {"reproduction": followed["run"]["id"]}
    assert assistant["body"]["reproduction"]["verdict"] == followed["run"]["result"]["verdict"]
    assert conversation["facts"]["repro_reproduced"] == followed["run"]["result"]["reproduced"]


def test_runs_are_listed_and_an_ended_run_stays_as_it_was(followed):
    client, run = followed["client"], followed["run"]
    listed = client.get(f"{API}/{followed['conversation']}/reproductions").get_json()["reproductions"]
    assert [r["id"] for r in listed] == [run["id"]]
    for cancel in (client.delete(run["links"]["self"]), client.post(run["links"]["cancel"])):
        assert cancel.status_code == 200 and cancel.get_json()["status"] == "done"


def test_missing_facts_are_named_and_asked_for(client, row_counts):
    conversation = client.post(API, json={"symptom": "my loss does not move"}).get_json()["id"]
    message = assert_error(client.post(f"{API}/{conversation}/reproductions"), 422, "missing_facts")
    assert message.startswith("to build your model I still need: task, optimizer, loss, n_features")
    assert message.endswith("the conversation now asks for them")
    last = client.get(f"{API}/{conversation}").get_json()["turns"][-1]["body"]
    assert {"task", "optimizer", "loss"} <= {q["fact"] for q in last["questions"]}
    assert row_counts()["reproductions"] == 0


@pytest.mark.parametrize("body, named", [
    ({"model": model_json("lambda")}, "uses Lambda"),
    ({"model": json.loads(model_json("lambda"))}, "uses Lambda"),
    ({"model": "{not json"}, "not valid JSON"),
    ({"model": "[" * 50_000 + "]" * 50_000}, "model: nested more than 32 levels deep"),
    ({"epochs": 3}, "Additional properties are not allowed"),
    ({"sample": 5}, "sample: 5 is not of type 'string'"),
])
def test_a_bad_request_is_refused_and_runs_nothing(client, row_counts, body, named):
    conversation = client.post(API, json=TINY).get_json()["id"]
    assert named in assert_error(client.post(f"{API}/{conversation}/reproductions", json=body), 400, "bad_input")
    assert row_counts()["reproductions"] == 0


def test_a_malicious_model_upload_is_refused(client, row_counts):
    conversation = client.post(API, json=TINY).get_json()["id"]
    upload = {"model": (__import__("io").BytesIO(model_json("lambda").encode()), "model.json")}
    response = client.post(f"{API}/{conversation}/reproductions", data=upload, content_type="multipart/form-data")
    assert "uses Lambda" in assert_error(response, 400, "bad_input")
    assert row_counts()["reproductions"] == 0


def test_unknown_conversations_and_runs(client):
    missing = "conv-" + "0" * 32
    assert_error(client.post(f"{API}/{missing}/reproductions"), 404, "not_found")
    conversation = client.post(API, json=TINY).get_json()["id"]
    for method, path in (("get", ""), ("delete", ""), ("post", "/cancel"), ("get", "/events"), ("get", "/plot.png")):
        response = getattr(client, method)(f"{API}/{conversation}/reproductions/run-{'0' * 32}{path}")
        assert "no reproduction run" in assert_error(response, 404, "not_found")


def test_another_callers_runs_are_invisible(make_app):
    app = make_app(API_TOKENS=["alice", "bob"])
    client = app.test_client()
    alice, bob = ({"Authorization": f"Bearer {name}"} for name in ("alice", "bob"))
    conversation = client.post(API, json=TINY, headers=alice).get_json()["id"]
    assert_error(client.post(f"{API}/{conversation}/reproductions"), 401, "unauthorized")
    assert_error(client.post(f"{API}/{conversation}/reproductions", headers=bob), 404, "not_found")


def test_without_runs_there_is_no_button(make_app):
    client = make_app(REPRO_BACKEND="off").test_client()
    conversation = client.post(API, json=TINY).get_json()["id"]
    assert "reproductions" not in client.get(f"{API}/{conversation}").get_json()
    message = assert_error(client.post(f"{API}/{conversation}/reproductions"), 404, "not_found")
    assert message == "this service does not offer reproduction runs"


WEB_PROCESS = textwrap.dedent("""
    import json, sys, time
    from assistant import create_app
    app = create_app({"DATABASE_URL": sys.argv[1], "REPRO_BACKEND": "local"})
    client = app.test_client()
    conversation = client.post("/api/v1/conversations", json=json.loads(sys.argv[2])).get_json()["id"]
    run = client.post(f"/api/v1/conversations/{conversation}/reproductions").get_json()
    while run["status"] not in ("done", "failed", "cancelled"):
        time.sleep(0.5)
        run = client.get(run["links"]["self"]).get_json()
    heavy = sorted(name for name in sys.modules if name.split(".")[0] in ("tensorflow", "keras"))
    print(json.dumps({"status": run["status"], "error": run["error"], "heavy": heavy}))
""")


@pytest.mark.tf  # the run trains in a worker process
def test_the_web_process_never_imports_tensorflow(tmp_path):
    """A whole run served from a fresh interpreter: TensorFlow loads in the worker only."""
    done = subprocess.run([sys.executable, "-c", WEB_PROCESS, f"sqlite:///{tmp_path / 'web.sqlite'}", json.dumps(TINY)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome == {"status": "done", "error": None, "heavy": []}
