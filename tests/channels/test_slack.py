"""The Slack bot end to end: signed requests through the Flask app, Slack's Web API a real server on loopback."""
import hashlib
import hmac
import json
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

import pytest
import yaml
from sqlalchemy import select

from assistant import conversations, db, repro
from assistant.channels import slack
from assistant.channels.slack import blocks, store
from tests.channels.slack_web_api import BOT_USER, TEAM, TOKEN, SlackWebApi
from tests.helpers import assert_error
from tests.repro.cases import RUNNABLE_DATASET, RUNNABLE_TRAINING

MANIFEST = Path(__file__).resolve().parents[2] / "deploy" / "slack-manifest.yaml"
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
CHANNEL = "C0CHAN"
USER = "U0USER"
SYMPTOM = "my loss stays at 0.693 and accuracy at 50%"
FLAT_CSV = "epoch,accuracy,loss,val_accuracy,val_loss\n" + "".join(f"{e},0.5,0.6931,0.5,0.6932\n" for e in range(6))
NAN_CSV = "epoch,loss,val_loss\n0,0.66,0.64\n1,0.57,0.55\n2,2.94,3.87\n3,nan,nan\n4,nan,nan\n"
PNG = b"\x89PNG\r\n\x1a\n a plot"


@pytest.fixture
def slack_api():
    api = SlackWebApi().start()
    yield api
    api.close()


@pytest.fixture
def make_slack_app(make_app, slack_api):
    """Apps whose bot talks to the loopback Web API; each waits for its bot's work before the database goes."""
    bots = []

    def make(**config):
        app = make_app(SLACK_BOT_TOKEN=TOKEN, SLACK_SIGNING_SECRET=SECRET, SLACK_API_URL=slack_api.url,
                       SLACK_RUN_POLL_SECONDS=0.05, **config)
        bots.append(app.extensions[slack.EXTENSION])
        return app

    yield make
    for bot in bots:
        bot.close()


@pytest.fixture
def slack_app(make_slack_app):
    return make_slack_app()


@pytest.fixture
def slack_client(slack_app):
    return slack_app.test_client()


def signed(body: str, *, secret: str = SECRET, timestamp: int | None = None) -> dict[str, str]:
    """Slack's request signature: v0=HMAC-SHA256(secret, "v0:<timestamp>:<body>")."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"v0:{timestamp}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": str(timestamp), "X-Slack-Signature": f"v0={digest}"}


def send_event(client, event, *, event_id="Ev0001", headers=None, **signing):
    body = json.dumps({"token": "unused", "team_id": TEAM, "api_app_id": "A0APP", "type": "event_callback",
                       "event_id": event_id, "event_time": int(time.time()), "event": event})
    return client.post("/slack/events", data=body, content_type="application/json",
                       headers={**signed(body, **signing), **(headers or {})})


def send_form(client, fields):
    body = urlencode(fields)
    return client.post("/slack/events", data=body, content_type="application/x-www-form-urlencoded",
                       headers=signed(body))


def mention(text=SYMPTOM, ts="1700000000.000100", **event):
    return {"type": "app_mention", "user": USER, "text": f"<@{BOT_USER}> {text}", "ts": ts, "channel": CHANNEL,
            "event_ts": ts, **event}


def click(client, reply, action):
    """Click ``action`` (one of the elements of ``reply``'s blocks) as ``USER``."""
    payload = {"type": "block_actions", "team": {"id": TEAM}, "user": {"id": USER}, "api_app_id": "A0APP",
               "token": "unused", "trigger_id": "1.2.3", "channel": {"id": CHANNEL},
               "container": {"type": "message", "message_ts": reply.response["ts"], "channel_id": CHANNEL},
               "message": {"type": "message", "ts": reply.response["ts"], "thread_ts": reply.args["thread_ts"],
                           "text": reply.args["text"], "blocks": reply.args["blocks"]},
               "actions": [{**action, "block_id": "b1", "action_ts": str(time.time())}]}
    return send_form(client, {"payload": json.dumps(payload)})


def buttons(call):
    return [element for block in call.args["blocks"] if block["type"] == "actions" for element in block["elements"]]


def button(call, action_id):
    return next(element for element in buttons(call) if element["action_id"] == action_id)


def stored(app, table):
    with app.app_context(), db.get_engine().connect() as connection:
        return connection.execute(select(table)).mappings().all()


def transcript(app, thread_ts):
    """The conversation the bot keeps for a thread of the test channel."""
    (link,) = [row for row in stored(app, db.slack_threads) if row["thread_ts"] == thread_ts]
    with app.app_context():
        return conversations.transcript(link["conversation_id"], f"slack:{TEAM}")


def test_url_verification(slack_client):
    body = json.dumps({"token": "unused", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
                       "type": "url_verification"})
    response = slack_client.post("/slack/events", data=body, content_type="application/json", headers=signed(body))
    assert response.status_code == 200
    assert response.get_json() == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}


@pytest.mark.parametrize("signing", [{"secret": "not-the-secret"}, {"timestamp": int(time.time()) - 6 * 60}],
                         ids=["bad signature", "stale timestamp"])
def test_unverified_requests_are_refused(slack_app, slack_client, slack_api, row_counts, signing):
    before = row_counts()
    response = send_event(slack_client, mention(), **signing)
    assert response.status_code == 401
    unsigned = slack_client.post("/slack/events", data=json.dumps({"type": "event_callback", "event": mention()}),
                                 content_type="application/json")
    assert unsigned.status_code == 401
    slack_app.extensions[slack.EXTENSION].close()  # whatever was started has finished
    assert slack_api.calls == [] and row_counts() == before


def test_mention_is_answered_in_its_thread(slack_app, slack_client, slack_api):
    response = send_event(slack_client, mention())
    assert response.status_code == 200
    (reply,) = slack_api.wait_for("chat.postMessage", 1)
    assert reply.args["channel"] == CHANNEL and reply.args["thread_ts"] == "1700000000.000100"
    assert reply.headers["authorization"] == f"Bearer {TOKEN}"
    assert reply.args["blocks"][0]["text"]["text"] == "*Most likely causes*"
    shown = json.dumps(reply.args["blocks"])
    assert "```" in shown or "follows as the file" in shown  # the top snippet, as a code block or a file
    assert {"answer-0", blocks.DONT_KNOW, blocks.FIXED}.issubset(b["action_id"] for b in buttons(reply))
    offered = blocks.VALIDATE in [b["action_id"] for b in buttons(reply)]
    assert offered is (slack_app.extensions[repro.EXTENSION] is not None)  # only where runs exist
    conversation = transcript(slack_app, "1700000000.000100")
    assert conversation["turns"][0]["body"] == {"symptom": SYMPTOM}
    assert conversation["turns"][1]["body"]["causes"][0]["title"] in reply.args["text"]


def test_a_direct_message_starts_a_conversation_and_channel_chatter_is_ignored(slack_app, slack_client, slack_api):
    direct = {"type": "message", "channel_type": "im", "user": USER, "text": SYMPTOM, "ts": "1700000000.000200",
              "channel": "D0DIRECT"}
    elsewhere = {**direct, "channel_type": "channel", "channel": CHANNEL, "ts": "1700000000.000300",
                 "thread_ts": "1700000000.000250"}  # a reply in someone else's thread
    assert send_event(slack_client, direct, event_id="Ev1").status_code == 200
    assert send_event(slack_client, elsewhere, event_id="Ev2").status_code == 200
    slack_app.extensions[slack.EXTENSION].close()
    (reply,) = slack_api.received("chat.postMessage")
    assert reply.args["channel"] == "D0DIRECT" and reply.args["thread_ts"] == "1700000000.000200"


def test_a_file_shared_in_the_thread_is_read_as_the_next_turn(slack_app, slack_client, slack_api):
    send_event(slack_client, mention())
    slack_api.wait_for("chat.postMessage", 1)
    shared = slack_api.share("training.log.csv", FLAT_CSV.encode())
    follow_up = {"type": "message", "subtype": "file_share", "channel_type": "channel", "user": USER,
                 "text": "here is my CSVLogger file", "ts": "1700000000.000500", "thread_ts": "1700000000.000100",
                 "channel": CHANNEL, "files": [shared]}
    assert send_event(slack_client, follow_up, event_id="Ev2").status_code == 200
    _, reply = slack_api.wait_for("chat.postMessage", 2)
    assert reply.args["thread_ts"] == "1700000000.000100"
    (download,) = slack_api.received(f"files-pri/{TEAM}/download/training.log.csv")
    assert download.headers["authorization"] == f"Bearer {TOKEN}"
    turns = transcript(slack_app, "1700000000.000100")["turns"]
    assert len(turns) == 4
    assert turns[2]["body"]["text"] == "here is my CSVLogger file"
    assert turns[2]["body"]["history"]["loss"] == [0.6931] * 6


def test_a_thread_stays_its_conversation_after_a_restart(make_slack_app, slack_api):
    send_event(make_slack_app().test_client(), mention())
    slack_api.wait_for("chat.postMessage", 1)
    restarted = make_slack_app()
    reply_in_thread = {"type": "message", "channel_type": "channel", "user": USER, "text": "learning rate = 0.01",
                       "ts": "1700000000.000600", "thread_ts": "1700000000.000100", "channel": CHANNEL}
    send_event(restarted.test_client(), reply_in_thread, event_id="Ev2")
    _, reply = slack_api.wait_for("chat.postMessage", 2)
    assert reply.args["thread_ts"] == "1700000000.000100"
    conversation = transcript(restarted, "1700000000.000100")
    assert [turn["role"] for turn in conversation["turns"]] == ["user", "assistant"] * 2
    assert conversation["facts"]["learning_rate"] == 0.01


def test_a_console_log_pasted_in_a_message_is_read(slack_app, slack_client, slack_api):
    log = "".join(f"Epoch {e}/3\n32/32 - 0s - loss: 0.6931 - accuracy: 0.5000\n" for e in (1, 2, 3))
    send_event(slack_client, mention(f"accuracy is stuck, here is the log:\n```{log}```"))
    slack_api.wait_for("chat.postMessage", 1)
    user = transcript(slack_app, "1700000000.000100")["turns"][0]["body"]
    assert user["history"]["loss"] == [0.6931] * 3


def test_a_file_read_in_part_is_answered_and_what_was_left_out_is_kept(slack_app, slack_client, slack_api):
    shared = slack_api.share("training.log", b"epoch,loss\n0,abc\n1,0.5\n")
    send_event(slack_client, mention(files=[shared], subtype="file_share"))
    (reply,) = slack_api.wait_for("chat.postMessage", 1)
    assert reply.args["thread_ts"] == "1700000000.000100"
    conversation = transcript(slack_app, "1700000000.000100")
    assert conversation["turns"][0]["body"]["history"] == {"epoch": [2], "loss": [0.5]}
    assert conversation["facts"]["history_partial"] is True
    assert conversation["facts"]["history_unread"] == "line 2 was left out (expected a number in column loss, got 'abc')"


def test_a_file_over_the_upload_limit_is_refused_in_the_thread(slack_app, slack_client, slack_api):
    shared = slack_api.share("huge.log", b"Epoch 1/1\n", size=slack_app.config["MAX_CONTENT_LENGTH"] + 1)
    send_event(slack_client, mention(files=[shared], subtype="file_share"))
    refusal, reply = slack_api.wait_for("chat.postMessage", 2)
    assert refusal.args["thread_ts"] == "1700000000.000100"
    assert refusal.args["text"].startswith("I did not read `huge.log`: it is 10.5 MB and I read files up to 10 MB.")
    assert reply.args["blocks"][0]["text"]["text"] == "*Most likely causes*"  # the words are still answered
    assert not slack_api.received(f"files-pri/{TEAM}/download/huge.log")


def test_a_clicked_answer_is_the_next_turn(slack_app, slack_client, slack_api):
    send_event(slack_client, mention())
    (first,) = slack_api.wait_for("chat.postMessage", 1)
    choice = button(first, "answer-0")
    assert click(slack_client, first, choice).status_code == 200
    _, second = slack_api.wait_for("chat.postMessage", 2)
    assert second.args["thread_ts"] == "1700000000.000100"
    answer = json.loads(choice["value"])
    assert second.args["blocks"][0]["elements"][0]["text"].startswith(f"<@{USER}> answered: {answer['fact']} =")
    conversation = transcript(slack_app, "1700000000.000100")
    assert conversation["turns"][2]["body"] == {"facts": {answer["fact"]: answer["choice"]}}
    assert answer["fact"] in conversation["facts"]


def test_feedback_buttons_are_stored(slack_app, slack_client, slack_api):
    send_event(slack_client, mention())
    (reply,) = slack_api.wait_for("chat.postMessage", 1)
    fixed = button(reply, blocks.FIXED)
    click(slack_client, reply, fixed)
    _, thanks = slack_api.wait_for("chat.postMessage", 2)
    assert thanks.args["text"].startswith(f"Thanks, <@{USER}>: noted that the fix for `{fixed['value']}` worked.")
    (row,) = stored(slack_app, db.feedback)
    assert (row["cause_id"], row["verdict"]) == (fixed["value"], "fixed")


def test_a_retried_event_is_answered_once(slack_app, slack_client, slack_api):
    assert send_event(slack_client, mention(), event_id="Ev9").status_code == 200
    retry = send_event(slack_client, mention(), event_id="Ev9",
                       headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
    assert retry.status_code == 200
    # The same message also arrives as a message event, with an event id of its own.
    as_message = {**mention(), "type": "message", "channel_type": "channel"}
    assert send_event(slack_client, as_message, event_id="Ev10").status_code == 200
    slack_app.extensions[slack.EXTENSION].close()
    assert len(slack_api.received("chat.postMessage")) == 1
    assert len(stored(slack_app, db.conversations)) == 1


def test_slash_command_answers_in_a_thread_of_its_own(slack_app, slack_client, slack_api):
    command = {"command": "/troubleshoot", "text": SYMPTOM, "team_id": TEAM, "channel_id": CHANNEL,
               "user_id": USER, "response_url": slack_api.root + "/respond", "trigger_id": "1.2.3", "token": "x"}
    response = send_form(slack_client, command)
    assert response.status_code == 200 and not response.get_data()
    parent, reply = slack_api.wait_for("chat.postMessage", 2)
    assert parent.args["text"] == f"<@{USER}> asked: {SYMPTOM}" and "thread_ts" not in parent.args
    assert reply.args["thread_ts"] == parent.response["ts"]

    usage = send_form(slack_client, {**command, "text": "  "})
    assert usage.status_code == 200 and usage.get_data(as_text=True).startswith("Tell me what you see")
    slack_app.extensions[slack.EXTENSION].close()
    assert len(slack_api.received("chat.postMessage")) == 2


class ImmediateRuns:
    """Reproduction runs that finish on the second look, with a plot: the calls the bot makes of them."""

    def __init__(self):
        self.looks = 0

    def start(self, conversation_id, owner):
        self.started = (conversation_id, owner)
        return {"id": "run-1", "status": "queued"}

    def get(self, conversation_id, run_id, owner):
        self.looks += 1
        if self.looks < 2:
            return {"id": run_id, "status": "running", "progress": {"epoch": 1, "epochs": 5}}
        history = {"epoch": [1, 2, 3], "loss": [0.69, 0.69, 0.69], "val_loss": [0.69, 0.69, float("nan")]}
        return {"id": run_id, "status": "done", "progress": {"epoch": 5, "epochs": 5},
                "result": {"reproduced": True, "verdict": "The baseline stays at 0.69; the fix learns.",
                           "experiments": [{"name": "baseline", "history": history},
                                           {"name": "fixed", "history": {"loss": [0.69, 0.4, 0.2]}}]}}

    def plot(self, conversation_id, run_id, owner):
        return PNG


def validate_and_wait(slack_client, slack_api, event, timeout=15):
    """Click "Validate with a short run" under the reply to ``event``; the verdict message and the uploaded plot."""
    send_event(slack_client, event)
    (reply,) = slack_api.wait_for("chat.postMessage", 1)
    # A long snippet under the reply is uploaded as a file first; the plot is the last upload.
    snippets = 1 if "follows as the file" in json.dumps(reply.args["blocks"]) else 0
    if snippets:
        slack_api.wait_for("files.completeUploadExternal", 1, timeout=timeout)
    assert click(slack_client, reply, button(reply, blocks.VALIDATE)).status_code == 200
    _, started, verdict = slack_api.wait_for("chat.postMessage", 3, timeout=timeout)
    assert started.args["text"].startswith(f"<@{USER}> started a short run")
    *_, upload = slack_api.wait_for("files.completeUploadExternal", snippets + 1, timeout=timeout)
    *_, plot = [call for call in slack_api.calls if call.method.startswith("upload/")]
    return verdict, upload, plot


def test_a_validation_run_posts_its_verdict_and_plot(slack_app, slack_client, slack_api):
    slack_app.extensions[repro.EXTENSION] = backend = ImmediateRuns()
    verdict, upload, plot = validate_and_wait(slack_client, slack_api, mention())
    assert backend.started[1] == f"slack:{TEAM}"
    assert verdict.args["thread_ts"] == upload.args["thread_ts"] == "1700000000.000100"
    assert verdict.args["blocks"][0]["text"]["text"] == ("*The short run reproduced the problem.*\n"
                                                         "The baseline stays at 0.69; the fix learns.")
    assert plot.body == PNG


class UnfinishedRuns(ImmediateRuns):
    """Runs that are still training whenever they are asked about."""

    def get(self, conversation_id, run_id, owner):
        return {"id": run_id, "status": "running", "progress": {"epoch": 1, "epochs": 5}}


def test_a_verdict_owed_by_a_stopped_process_is_posted_by_another_once(make_slack_app, slack_api):
    """A deploy stops the web process watching a run: one of the processes after it posts the verdict."""
    first = make_slack_app(SLACK_RUN_LEASE_SECONDS=0.3)
    first.extensions[repro.EXTENSION] = UnfinishedRuns()
    client = first.test_client()
    send_event(client, mention())
    (reply,) = slack_api.wait_for("chat.postMessage", 1)
    click(client, reply, button(reply, blocks.VALIDATE))
    slack_api.wait_for("chat.postMessage", 2)
    first.extensions[slack.EXTENSION].close()  # the process stops while the run still trains
    assert [row["run_id"] for row in stored(first, db.slack_run_reports)] == ["run-1"]

    later = [make_slack_app(SLACK_RUN_LEASE_SECONDS=0.3) for _ in range(2)]  # both sweep for lapsed reports
    for app in later:
        app.extensions[repro.EXTENSION] = ImmediateRuns()
    *_, verdict = slack_api.wait_for("chat.postMessage", 3, timeout=15)
    slack_api.wait_for("files.completeUploadExternal", timeout=15)
    assert verdict.args["thread_ts"] == "1700000000.000100"
    assert verdict.args["blocks"][0]["text"]["text"].startswith("*The short run reproduced the problem.*")
    time.sleep(1.5)  # several more sweeps of both processes
    assert [call.method for call in slack_api.calls].count("chat.postMessage") == 3
    assert stored(first, db.slack_run_reports) == []


class BrieflyUnreadableRuns(ImmediateRuns):
    """Runs whose store fails the first time it is read, as a database fails over."""

    def get(self, conversation_id, run_id, owner):
        if not self.looks:
            self.looks += 1
            raise ConnectionError("the database is away")
        return super().get(conversation_id, run_id, owner)


def test_a_run_that_cannot_be_read_for_a_while_is_still_reported(make_slack_app, slack_api):
    app = make_slack_app(SLACK_RUN_LEASE_SECONDS=0.3)
    app.extensions[repro.EXTENSION] = BrieflyUnreadableRuns()
    verdict, upload, _ = validate_and_wait(app.test_client(), slack_api, mention())
    assert verdict.args["blocks"][0]["text"]["text"].startswith("*The short run reproduced the problem.*")
    assert upload.args["thread_ts"] == "1700000000.000100"
    deadline = time.monotonic() + 5
    while stored(app, db.slack_run_reports) and time.monotonic() < deadline:  # settled just after the upload
        time.sleep(0.05)
    assert stored(app, db.slack_run_reports) == []


def test_the_sweep_forgets_deliveries_too_old_to_be_retried(make_slack_app):
    app = make_slack_app(SLACK_RUN_LEASE_SECONDS=0.3)  # sweeps every 0.15 s
    with app.app_context(), db.get_engine().begin() as connection:
        connection.execute(db.slack_deliveries.insert(), [
            {"key": "event:old", "received_at": db.now() - store.DELIVERY_MEMORY - timedelta(minutes=1)},
            {"key": "event:new", "received_at": db.now()}])
    deadline = time.monotonic() + 5
    while len(stored(app, db.slack_deliveries)) > 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [row["key"] for row in stored(app, db.slack_deliveries)] == ["event:new"]


def test_only_lapsed_reports_are_taken_over_and_each_by_one_holder(slack_app):
    minute = timedelta(minutes=1)
    with slack_app.app_context():
        conversation_id, _ = conversations.start(None, {"symptom": SYMPTOM})
        thread = store.Thread(TEAM, CHANNEL, "1700000000.000100")
        store.owe_report(thread, conversation_id, f"slack:{TEAM}", "run-live", holder="a", lease=minute)
        store.owe_report(thread, conversation_id, f"slack:{TEAM}", "run-lapsed", holder="b", lease=timedelta(0))
        (taken,) = store.take_over_lapsed(holder="c", lease=minute)
        assert taken.run_id == "run-lapsed" and taken.thread == thread
        assert store.take_over_lapsed(holder="d", lease=minute) == []
        assert not store.renew("run-lapsed", holder="b", lease=minute)  # its old holder lost it
        assert store.renew("run-lapsed", holder="c", lease=minute) and store.renew("run-live", holder="a", lease=minute)


def test_a_run_that_needs_more_facts_asks_for_them(slack_app, slack_client, slack_api):
    send_event(slack_client, mention())
    (reply,) = slack_api.wait_for("chat.postMessage", 1)
    click(slack_client, reply, button(reply, blocks.VALIDATE))
    _, asking = slack_api.wait_for("chat.postMessage", 2)
    assert asking.args["blocks"][0]["elements"][0]["text"].startswith("to build your model I still need: ")
    assert any(b["action_id"].startswith(blocks.ANSWER) for b in buttons(asking))


@pytest.mark.tf
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # one real run is enough
def test_a_validation_run_in_the_reproduction_workers(slack_client, slack_api):
    """A real run: TensorFlow starts in a worker process and trains every experiment (a minute or two)."""
    setup = slack_api.share("setup.json", json.dumps({"metrics": NAN_CSV, "training": RUNNABLE_TRAINING,
                                                      "dataset": RUNNABLE_DATASET}).encode())
    event = mention("loss becomes nan", files=[setup], subtype="file_share")
    verdict, upload, plot = validate_and_wait(slack_client, slack_api, event, timeout=300)
    assert verdict.args["thread_ts"] == upload.args["thread_ts"] == "1700000000.000100"
    assert verdict.args["text"].startswith(("The short run reproduced the problem.", "The short run is done."))
    assert plot.body.startswith(b"\x89PNG")


def test_without_slack_settings_nothing_is_served(make_app, monkeypatch):
    for name in slack.STANDARD_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    app = make_app()
    assert slack.EXTENSION not in app.extensions
    assert_error(app.test_client().post("/slack/events", json={}), 404, "not_found")


def test_standard_environment_names_configure_the_bot(make_app, monkeypatch, slack_api):
    monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SECRET)
    app = make_app(SLACK_API_URL=slack_api.url)
    try:
        body = json.dumps({"type": "url_verification", "challenge": "c"})
        response = app.test_client().post("/slack/events", data=body, content_type="application/json",
                                          headers=signed(body))
        assert response.get_json() == {"challenge": "c"}
    finally:
        app.extensions[slack.EXTENSION].close()


def test_socket_mode_needs_an_app_token(slack_app):
    slack_app.config["SLACK_APP_TOKEN"] = None
    result = slack_app.test_cli_runner().invoke(slack.socket_command)
    assert result.exit_code == 1
    assert "set SLACK_APP_TOKEN" in result.output


def test_the_manifest_subscribes_to_what_the_bot_listens_for():
    manifest = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    settings = manifest["settings"]
    urls = {settings["event_subscriptions"]["request_url"], settings["interactivity"]["request_url"],
            *(command["url"] for command in manifest["features"]["slash_commands"])}
    assert {url.rpartition(".com")[2] for url in urls} == {"/slack/events"}
    assert [command["command"] for command in manifest["features"]["slash_commands"]] == ["/troubleshoot"]
    assert {"app_mention", "message.im", "message.channels"} <= set(settings["event_subscriptions"]["bot_events"])
    assert {"chat:write", "commands", "files:read", "files:write"} <= set(manifest["oauth_config"]["scopes"]["bot"])


@pytest.mark.parametrize("timestamp", ["abc", "", "1e9", "²"])
def test_a_timestamp_that_is_no_number_is_refused_without_a_fault(slack_client, slack_api, row_counts, timestamp):
    body = json.dumps({"type": "event_callback", "event": mention()})
    response = slack_client.post("/slack/events", data=body, content_type="application/json",
                                 headers={"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": "v0=00"})
    assert "X-Slack-Request-Timestamp" in assert_error(response, 401, "unauthorized")
    assert slack_api.calls == [] and not any(row_counts().values())


def test_a_replayed_slash_command_is_answered_once(slack_app, slack_client, slack_api):
    command = {"command": "/troubleshoot", "text": SYMPTOM, "team_id": TEAM, "channel_id": CHANNEL,
               "user_id": USER, "response_url": slack_api.root + "/respond", "trigger_id": "1.2.3", "token": "x"}
    body = urlencode(command)
    headers = signed(body)
    for _ in range(3):  # the same signed request, sent again within Slack's five minutes
        response = slack_client.post("/slack/events", data=body, content_type="application/x-www-form-urlencoded",
                                     headers=headers)
        assert response.status_code == 200
    slack_app.extensions[slack.EXTENSION].close()
    assert len(slack_api.received("chat.postMessage")) == 2  # the parent message and one reply in its thread
    assert len(stored(slack_app, db.conversations)) == 1
