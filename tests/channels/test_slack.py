"""The Slack bot end to end: signed requests through the Flask app, Slack's Web API a real server on loopback."""
import json
import re
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

import pytest
import yaml
from sqlalchemy import select

from assistant import conversations, db, kb, repro
from assistant.channels import slack
from assistant.channels.slack import blocks, store
from assistant.repro.verdict import ask_for_missing
from tests.channels import slack_web_api
from tests.channels.slack_web_api import BOT_USER, TEAM, TOKEN, SlackWebApi
from tests.channels.test_slack_blocks import CODE_LIKE
from tests.helpers import assert_error
from tests.repro.cases import RUNNABLE_DATASET, RUNNABLE_TRAINING

MANIFEST = Path(__file__).resolve().parents[2] / "deploy" / "slack-manifest.yaml"
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
CHANNEL = "C0CHAN"
USER = "U0USER"
OTHER = "U0OTHER"
DM = "D0DIRECT"
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
    return slack_web_api.signed(body, secret, timestamp=timestamp)


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


def thread_message(text, ts, user=USER, thread_ts="1700000000.000100", **event):
    return {"type": "message", "channel_type": "channel", "user": user, "text": text, "ts": ts,
            "thread_ts": thread_ts, "channel": CHANNEL, **event}


def direct_message(text, ts, **event):
    return {"type": "message", "channel_type": "im", "user": USER, "text": text, "ts": ts, "channel": DM, **event}


@dataclass
class Shown:
    """A bot message as the thread shows it now: posted, then changed in place by ``chat.update``."""

    ts: str
    channel: str
    thread_ts: str
    text: str
    blocks: list
    updates: int


WORKING = ("Looking at", "Starting a short run")


def answers(api, count, timeout=15):
    """The first ``count`` turns' messages, each once its placeholder was replaced: as they are shown now."""
    deadline = time.monotonic() + timeout
    while True:
        found = []
        for post in api.received("chat.postMessage"):
            if not post.args["text"].startswith(WORKING):
                continue
            updates = [u for u in api.received("chat.update") if u.args["ts"] == post.response["ts"]]
            if updates:
                last = updates[-1].args
                found.append(Shown(post.response["ts"], post.args["channel"], post.args["thread_ts"], last["text"],
                                   last["blocks"], len(updates)))
        if len(found) >= count:
            return found[:count]
        assert time.monotonic() < deadline, f"{len(found)} of {count} turns answered: {[c.method for c in api.calls]}"
        time.sleep(0.02)


def click(client, shown, action, user=USER):
    """Click ``action`` (one of the elements of ``shown``'s blocks) as ``user``."""
    payload = {"type": "block_actions", "team": {"id": TEAM}, "user": {"id": user}, "api_app_id": "A0APP",
               "token": "unused", "trigger_id": "1.2.3", "channel": {"id": shown.channel},
               "container": {"type": "message", "message_ts": shown.ts, "channel_id": shown.channel},
               "message": {"type": "message", "ts": shown.ts, "thread_ts": shown.thread_ts,
                           "text": shown.text, "blocks": shown.blocks},
               "actions": [{**action, "block_id": "b1", "action_ts": repr(time.time())}]}
    return send_form(client, {"payload": json.dumps(payload)})


def buttons(shown):
    return [element for block in shown.blocks if block["type"] == "actions" for element in block["elements"]] + [
        block["accessory"] for block in shown.blocks if "accessory" in block]


def button(shown, action_id):
    return next(element for element in buttons(shown) if element["action_id"] == action_id)


def visible(args):
    """Every text a person sees of a posted or updated message: its notification and its blocks' words."""
    parts = [args.get("text") or ""]
    for block in args.get("blocks") or []:
        parts.append(block.get("text", {}).get("text", ""))
        for element in [*block.get("elements", []), block.get("accessory", {})]:
            text = element.get("text", "")
            parts.append(text if isinstance(text, str) else text.get("text", ""))
    return "\n".join(parts)


def internal_ids(api):
    """Cause ids, fact keys, conversation and run ids that any message posted or updated shows."""
    knowledge = kb.load(kb.DEFAULT_DIR)
    names = {name for name in [*knowledge.causes, *knowledge.vocabulary] if "_" in name}
    shown = "\n".join(visible(call.args) for call in api.calls if call.method in ("chat.postMessage", "chat.update"))
    words = set(re.findall(r"[\w-]+", shown))
    return sorted(names & words) + re.findall(r"\b(?:conv|run)-[0-9a-f]{6,}", shown)


def asked_texts(api):
    """The words of every question the bot showed: in a reply (the section above a question's buttons, or one
    asking to type the answer) and in the run form (its hints)."""
    for call in api.calls:
        if call.method in ("chat.postMessage", "chat.update"):
            shown = call.args.get("blocks") or []
            for block, after in zip(shown, [*shown[1:], {}]):
                text = block.get("text", {}).get("text", "")
                if str(after.get("block_id", "")).startswith(blocks.QUESTION_BLOCK) or "Type the answer" in text:
                    yield text.split("\n", 1)[0]  # not the line in italics saying to type the answer
        elif call.method == "views.open":
            yield from (b["hint"]["text"] for b in call.args["view"]["blocks"] if "hint" in b)


def code_in_questions(api):
    """Code-like fragments (a call, an attribute, a keyword argument, an identifier) in the questions the bot showed."""
    return [found for text in asked_texts(api) for found in CODE_LIKE.findall(text)]


def stored(app, table):
    with app.app_context(), db.get_engine().connect() as connection:
        return connection.execute(select(table)).mappings().all()


def transcript(app, thread_ts):
    """The conversation the bot keeps for a thread."""
    (link,) = [row for row in stored(app, db.slack_threads) if row["thread_ts"] == thread_ts]
    with app.app_context():
        return conversations.transcript(link["conversation_id"], f"slack:{TEAM}")


def close(app):
    """Wait until the bot has done everything it was sent."""
    app.extensions[slack.EXTENSION].close()


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


def test_a_mention_is_answered_in_one_message_that_fits_a_phone(slack_app, slack_client, slack_api):
    response = send_event(slack_client, mention())
    assert response.status_code == 200
    (placeholder,) = slack_api.wait_for("chat.postMessage", 1)
    assert placeholder.args["text"] == "Looking at that…"
    assert placeholder.args["channel"] == CHANNEL and placeholder.args["thread_ts"] == "1700000000.000100"
    assert placeholder.headers["authorization"] == f"Bearer {TOKEN}"
    (shown,) = answers(slack_api, 1)
    assert shown.updates == 1 and shown.blocks[0]["text"]["text"].startswith("*What I see:*")
    assert len(shown.blocks) <= 14 and sum(b["type"] == "actions" for b in shown.blocks) <= 4
    conversation = transcript(slack_app, "1700000000.000100")
    top = conversation["turns"][1]["body"]["causes"][0]
    assert shown.text.startswith(f"Most likely {top['title']}: ")  # the notification says why, not a percentage
    assert any(f"Most likely: {top['title']}" in b.get("text", {}).get("text", "") for b in shown.blocks)
    assert {"answer-0", blocks.DONT_KNOW, blocks.FIXED, blocks.SHOW_FIX}.issubset(b["action_id"] for b in buttons(shown))
    offered = blocks.VALIDATE in [b["action_id"] for b in buttons(shown)]
    assert offered is (slack_app.extensions[repro.EXTENSION] is not None)  # only where runs exist
    if "follows as a file" in json.dumps(shown.blocks):
        (upload,) = slack_api.wait_for("files.completeUploadExternal", 1)
        assert upload.args["thread_ts"] == "1700000000.000100"
    close(slack_app)
    assert conversation["turns"][0]["body"] == {"symptom": SYMPTOM}
    assert internal_ids(slack_api) == []
    assert code_in_questions(slack_api) == []


@pytest.mark.parametrize("symptom, fact", [("loss becomes nan after a few epochs", "missing_fraction"),
                                           ("my regression loss is huge, in the millions", "target_std"),
                                           ("the loss jumps around a lot", "batch_size")])
def test_questions_whose_wording_names_code_are_asked_in_plain_words(slack_app, slack_client, slack_api, symptom,
                                                                     fact):
    send_event(slack_client, mention(symptom))
    (shown,) = answers(slack_api, 1)
    close(slack_app)
    plain = slack_app.extensions[kb.EXTENSION].facts[fact]["plain"]
    assert any(plain in text for text in asked_texts(slack_api))
    assert code_in_questions(slack_api) == [] and internal_ids(slack_api) == []
    stored_reply = transcript(slack_app, "1700000000.000100")["turns"][1]["body"]
    (api_question,) = [q["text"] for q in stored_reply["questions"] if q["fact"] == fact]
    assert CODE_LIKE.search(api_question)  # the API's and the web page's wording is as it was, code and all


def test_a_colleagues_message_in_the_thread_is_not_a_turn_unless_it_mentions_the_bot(slack_app, slack_client,
                                                                                      slack_api):
    send_event(slack_client, mention(), event_id="Ev1")
    answers(slack_api, 1)
    aside = "have you checked that the labels aren't all one class?"
    send_event(slack_client, thread_message(aside, "1700000000.000200", user=OTHER), event_id="Ev2")
    asked = thread_message(f"<@{BOT_USER}> my learning rate is 0.01", "1700000000.000300", user=OTHER)
    send_event(slack_client, {**asked, "type": "app_mention"}, event_id="Ev3")
    send_event(slack_client, asked, event_id="Ev4")  # the same message, as a message event too
    answers(slack_api, 2)
    close(slack_app)
    assert len(slack_api.received("chat.postMessage")) == 2
    conversation = transcript(slack_app, "1700000000.000100")
    assert [turn["body"].get("text") for turn in conversation["turns"][::2]] == [None, "my learning rate is 0.01"]
    assert "kernel_initializer" not in conversation["facts"] and conversation["facts"]["learning_rate"] == 0.01


def test_an_unreadable_reply_is_said_so_and_not_taken_for_i_dont_know(slack_app, slack_client, slack_api):
    send_event(slack_client, mention(), event_id="Ev1")
    answers(slack_api, 1)
    send_event(slack_client, thread_message("hmm, have you seen this before?", "1700000000.000200"), event_id="Ev2")
    _, unread = answers(slack_api, 2)
    assert unread.text.startswith("I couldn't tell which fact that answers — I asked about the learning rate")
    close(slack_app)
    conversation = transcript(slack_app, "1700000000.000100")
    assert len(conversation["turns"]) == 2 and conversation["declined"] == []


@pytest.mark.parametrize("typed, fact, value", [("20", "n_features", 20), ("20 features", "n_features", 20),
                                                ("n_features = 20", "n_features", 20),
                                                ("lr=0.01", "learning_rate", 0.01), ("adam", "optimizer", "adam")])
def test_a_typed_answer_answers_the_pending_question(slack_app, slack_client, slack_api, typed, fact, value):
    send_event(slack_client, mention(), event_id="Ev1")
    answers(slack_api, 1)
    with slack_app.app_context():  # the reply asks what a run needs: several questions, two of them numbers
        link = store.conversation_in(store.Thread(TEAM, CHANNEL, "1700000000.000100"))
        conversations.add_findings(link, f"slack:{TEAM}", {"reproduction": "requested"}, [],
                                   ask_for_missing(["optimizer", "loss", "n_features", "n_hidden_layers"]))
    send_event(slack_client, thread_message(typed, "1700000000.000200"), event_id="Ev2")
    _, reply = answers(slack_api, 2)
    assert not reply.text.startswith("I couldn't tell")
    close(slack_app)
    conversation = transcript(slack_app, "1700000000.000100")
    assert conversation["facts"][fact] == value and conversation["declined"] == []


def test_a_typed_answer_settles_the_question_it_answers_in_place(slack_app, slack_client, slack_api):
    send_event(slack_client, mention(), event_id="Ev1")
    (first,) = answers(slack_api, 1)
    assert blocks.QUESTION_BLOCK + "learning_rate" in [b.get("block_id") for b in first.blocks]
    send_event(slack_client, thread_message("0.01", "1700000000.000200"), event_id="Ev2")
    answers(slack_api, 2)
    close(slack_app)
    settled = slack_api.messages[first.ts]["blocks"]
    assert blocks.QUESTION_BLOCK + "learning_rate" not in [b.get("block_id") for b in settled]
    assert f"✓ learning rate: *0.01* (<@{USER}>)" in visible({"blocks": settled})
    assert transcript(slack_app, "1700000000.000100")["facts"]["learning_rate"] == 0.01


def test_a_file_shared_in_the_thread_is_read_as_the_next_turn(slack_app, slack_client, slack_api):
    send_event(slack_client, mention())
    answers(slack_api, 1)
    shared = slack_api.share("training.log.csv", FLAT_CSV.encode())
    follow_up = thread_message("here is my CSVLogger file", "1700000000.000500", subtype="file_share", files=[shared])
    assert send_event(slack_client, follow_up, event_id="Ev2").status_code == 200
    _, reply = answers(slack_api, 2)
    assert [c.args["text"] for c in slack_api.received("chat.postMessage")][1] == "Looking at your log…"
    assert reply.thread_ts == "1700000000.000100"
    (download,) = slack_api.received(f"files-pri/{TEAM}/download/training.log.csv")
    assert download.headers["authorization"] == f"Bearer {TOKEN}"
    turns = transcript(slack_app, "1700000000.000100")["turns"]
    assert len(turns) == 4
    assert turns[2]["body"]["text"] == "here is my CSVLogger file"
    assert turns[2]["body"]["history"]["loss"] == [0.6931] * 6


def test_a_thread_stays_its_conversation_after_a_restart(make_slack_app, slack_api):
    send_event(make_slack_app().test_client(), mention())
    answers(slack_api, 1)
    restarted = make_slack_app()
    send_event(restarted.test_client(), thread_message("learning rate = 0.01", "1700000000.000600"), event_id="Ev2")
    _, reply = answers(slack_api, 2)
    assert reply.thread_ts == "1700000000.000100"
    conversation = transcript(restarted, "1700000000.000100")
    assert [turn["role"] for turn in conversation["turns"]] == ["user", "assistant"] * 2
    assert conversation["facts"]["learning_rate"] == 0.01


def test_a_console_log_pasted_in_a_message_is_read(slack_app, slack_client, slack_api):
    log = "".join(f"Epoch {e}/3\n32/32 - 0s - loss: 0.6931 - accuracy: 0.5000\n" for e in (1, 2, 3))
    send_event(slack_client, mention(f"accuracy is stuck, here is the log:\n```{log}```"))
    answers(slack_api, 1)
    assert slack_api.received("chat.postMessage")[0].args["text"] == "Looking at your log…"
    user = transcript(slack_app, "1700000000.000100")["turns"][0]["body"]
    assert user["history"]["loss"] == [0.6931] * 3


def test_a_file_read_in_part_is_answered_and_what_was_left_out_is_kept(slack_app, slack_client, slack_api):
    shared = slack_api.share("training.log", b"epoch,loss\n0,abc\n1,0.5\n")
    send_event(slack_client, mention(files=[shared], subtype="file_share"))
    (reply,) = answers(slack_api, 1)
    assert reply.thread_ts == "1700000000.000100"
    conversation = transcript(slack_app, "1700000000.000100")
    assert conversation["turns"][0]["body"]["history"] == {"epoch": [2], "loss": [0.5]}
    assert conversation["facts"]["history_partial"] is True
    assert conversation["facts"]["history_unread"] == "line 2 was left out (expected a number in column loss, got 'abc')"


def test_a_file_over_the_upload_limit_is_refused_in_the_thread(slack_app, slack_client, slack_api):
    shared = slack_api.share("huge.log", b"Epoch 1/1\n", size=slack_app.config["MAX_CONTENT_LENGTH"] + 1)
    send_event(slack_client, mention(files=[shared], subtype="file_share"))
    (reply,) = answers(slack_api, 1)
    _, refusal = slack_api.wait_for("chat.postMessage", 2)
    assert refusal.args["thread_ts"] == "1700000000.000100"
    assert refusal.args["text"].startswith("I did not read `huge.log`: it is 10.5 MB and I read files up to 10 MB.")
    assert reply.blocks[0]["text"]["text"].startswith("*What I see:*")  # the words are still answered
    assert not slack_api.received(f"files-pri/{TEAM}/download/huge.log")


def test_a_clicked_answer_settles_in_place_and_a_double_tap_counts_once(slack_app, slack_client, slack_api):
    send_event(slack_client, mention())
    (first,) = answers(slack_api, 1)
    choice = button(first, "answer-1")
    answer = json.loads(choice["value"])
    for _ in range(2):
        assert click(slack_client, first, choice).status_code == 200
    _, second = answers(slack_api, 2)
    close(slack_app)
    assert len([c for c in slack_api.received("chat.postMessage")]) == 2  # one reply for two taps
    (settled,) = [u for u in slack_api.received("chat.update") if u.args["ts"] == first.ts][1:]
    said = f"✓ learning rate: *{answer['choice']}* (<@{USER}>)"
    assert said in visible(settled.args)
    assert blocks.QUESTION_BLOCK + answer["fact"] not in [b.get("block_id") for b in settled.args["blocks"]]
    assert len(settled.args["blocks"]) == len(first.blocks)
    assert second.thread_ts == "1700000000.000100"
    assert second.blocks[0]["elements"][0]["text"] == f"<@{USER}> answered learning rate: *{answer['choice']}*"
    conversation = transcript(slack_app, "1700000000.000100")
    assert len(conversation["turns"]) == 4
    assert conversation["turns"][2]["body"] == {"facts": {answer["fact"]: answer["choice"]}}
    assert internal_ids(slack_api) == []
    assert code_in_questions(slack_api) == []


def test_i_dont_know_settles_the_questions(slack_app, slack_client, slack_api):
    send_event(slack_client, mention())
    (first,) = answers(slack_api, 1)
    click(slack_client, first, button(first, blocks.DONT_KNOW))
    answers(slack_api, 2)
    close(slack_app)
    settled = [u for u in slack_api.received("chat.update") if u.args["ts"] == first.ts][-1]
    assert f"✓ <@{USER}> doesn't know these." in visible(settled.args)
    assert not [b for b in buttons(Shown(first.ts, CHANNEL, "", "", settled.args["blocks"], 0))
                if b["action_id"].startswith(blocks.ANSWER) or b["action_id"] == blocks.DONT_KNOW]
    assert transcript(slack_app, "1700000000.000100")["declined"]


def test_feedback_is_recorded_once_and_shown_where_its_buttons_were(slack_app, slack_client, slack_api):
    send_event(slack_client, mention())
    (reply,) = answers(slack_api, 1)
    fixed = button(reply, blocks.FIXED)
    click(slack_client, reply, fixed)
    click(slack_client, reply, fixed)  # a double tap, or a tap on a message not yet updated
    close(slack_app)
    (row,) = stored(slack_app, db.feedback)
    assert (row["cause_id"], row["verdict"]) == (fixed["value"], "fixed")
    assert len(slack_api.received("chat.postMessage")) == 1  # no thank-you posts: the message says it
    settled = [u for u in slack_api.received("chat.update") if u.args["ts"] == reply.ts][-1]
    title = slack_app.extensions[kb.EXTENSION].causes[fixed["value"]].title
    assert f"✓ Recorded: the fix for *{title}* worked (<@{USER}>)." in visible(settled.args)
    assert blocks.FIXED not in json.dumps(settled.args["blocks"])


def two_replies_asking_the_same(slack_client, slack_api):
    """A mention, then a typed answer to something else: two replies in the thread that both ask the learning
    rate and both offer feedback on the same leading cause."""
    send_event(slack_client, mention(), event_id="Ev1")
    answers(slack_api, 1)
    send_event(slack_client, thread_message("I use adam", "1700000000.000200"), event_id="Ev2")
    replies = answers(slack_api, 2)
    for reply in replies:
        assert blocks.QUESTION_BLOCK + "learning_rate" in [b.get("block_id") for b in reply.blocks]
    assert len({button(reply, blocks.FIXED)["value"] for reply in replies}) == 1
    return replies


def shown_now(api, ts):
    """The bot's message as the thread shows it now, after every chat.update."""
    message = api.messages[ts]
    return Shown(ts, message["channel"], message["thread_ts"], message["text"], message["blocks"], 0)


@pytest.mark.parametrize("how", ["click on the older reply", "click on the newer reply", "typed"])
def test_an_answered_question_keeps_no_live_button_in_any_reply(slack_app, slack_client, slack_api, how):
    replies = two_replies_asking_the_same(slack_client, slack_api)
    if how == "typed":
        send_event(slack_client, thread_message("0.01", "1700000000.000300"), event_id="Ev3")
    else:
        clicked = replies[0 if "older" in how else 1]
        choice = button(clicked, "answer-1")
        assert json.loads(choice["value"]) == {"fact": "learning_rate", "choice": "0.01"}
        click(slack_client, clicked, choice)
    answers(slack_api, 3)
    close(slack_app)
    for reply in replies:
        now = shown_now(slack_api, reply.ts)
        assert not [b for b in buttons(now) if '"fact": "learning_rate"' in b.get("value", "")]
        assert f"✓ learning rate: *0.01* (<@{USER}>)" in visible({"blocks": now.blocks})
        assert blocks.QUESTION_BLOCK + "kernel_initializer" in [b.get("block_id") for b in now.blocks]  # still open
    assert transcript(slack_app, "1700000000.000100")["facts"]["learning_rate"] == 0.01


def test_feedback_settles_that_causes_buttons_in_every_reply(slack_app, slack_client, slack_api):
    replies = two_replies_asking_the_same(slack_client, slack_api)
    fixed = button(replies[0], blocks.FIXED)
    click(slack_client, replies[0], fixed)
    close(slack_app)
    title = slack_app.extensions[kb.EXTENSION].causes[fixed["value"]].title
    for reply in replies:
        now = shown_now(slack_api, reply.ts)
        assert not [b for b in buttons(now) if b["action_id"] in (blocks.FIXED, blocks.NOT_HELPFUL)]
        assert f"✓ Recorded: the fix for *{title}* worked (<@{USER}>)." in visible({"blocks": now.blocks})
    (row,) = stored(slack_app, db.feedback)
    assert row["cause_id"] == fixed["value"]
    assert len(slack_api.received("chat.postMessage")) == 2


def test_a_later_reply_shows_the_feedback_given_instead_of_its_buttons(slack_app, slack_client, slack_api):
    replies = two_replies_asking_the_same(slack_client, slack_api)
    fixed = button(replies[1], blocks.FIXED)
    click(slack_client, replies[1], fixed)
    deadline = time.monotonic() + 15
    while [b for b in buttons(shown_now(slack_api, replies[1].ts)) if b["action_id"] == blocks.FIXED]:
        assert time.monotonic() < deadline, "the click was never settled"
        time.sleep(0.02)
    send_event(slack_client, thread_message("0.01", "1700000000.000300"), event_id="Ev3")
    *_, later = answers(slack_api, 3)
    close(slack_app)
    title = slack_app.extensions[kb.EXTENSION].causes[fixed["value"]].title
    assert f"*Most likely: {title}*" in visible({"blocks": later.blocks})  # the same cause leads
    assert not [b for b in buttons(later) if b["action_id"] in (blocks.FIXED, blocks.NOT_HELPFUL)]
    # Rendered after the click was stored, or settled by the click afterwards (which names who clicked).
    assert f"✓ Recorded: the fix for *{title}* worked" in visible({"blocks": later.blocks})
    assert len(stored(slack_app, db.feedback)) == 1


def test_show_the_fix_posts_that_cause_and_takes_its_button_off(slack_app, slack_client, slack_api):
    send_event(slack_client, mention())
    (reply,) = answers(slack_api, 1)
    other = button(reply, blocks.SHOW_FIX)
    click(slack_client, reply, other)
    click(slack_client, reply, other)
    _, fix = slack_api.wait_for("chat.postMessage", 2)
    close(slack_app)
    assert len(slack_api.received("chat.postMessage")) == 2
    cause = slack_app.extensions[kb.EXTENSION].causes[other["value"]]
    assert fix.args["text"] == f"The fix for {cause.title}" and fix.args["thread_ts"] == "1700000000.000100"
    assert {b["action_id"] for b in buttons(Shown("", CHANNEL, "", "", fix.args["blocks"], 0))} == {
        blocks.FIXED, blocks.NOT_HELPFUL}
    settled = [u for u in slack_api.received("chat.update") if u.args["ts"] == reply.ts][-1]
    assert other["value"] not in [b.get("accessory", {}).get("value") for b in settled.args["blocks"]]
    assert internal_ids(slack_api) == []
    assert code_in_questions(slack_api) == []


def test_a_direct_message_starts_a_conversation_and_channel_chatter_is_ignored(slack_app, slack_client, slack_api):
    elsewhere = thread_message(SYMPTOM, "1700000000.000300", thread_ts="1700000000.000250")  # someone else's thread
    assert send_event(slack_client, direct_message(SYMPTOM, "1700000000.000200"), event_id="Ev1").status_code == 200
    assert send_event(slack_client, elsewhere, event_id="Ev2").status_code == 200
    close(slack_app)
    (reply,) = slack_api.received("chat.postMessage")
    assert reply.args["channel"] == DM and reply.args["thread_ts"] == "1700000000.000200"


def test_a_direct_follow_up_continues_the_last_conversation_until_started_over(slack_app, slack_client, slack_api):
    send_event(slack_client, direct_message(SYMPTOM, "1700000000.000200"), event_id="Ev1")
    answers(slack_api, 1)
    send_event(slack_client, direct_message("I use adam with learning rate 0.01", "1700000000.000300"), event_id="Ev2")
    _, follow_up = answers(slack_api, 2)
    assert "Continuing our last conversation" in visible({"blocks": follow_up.blocks})
    conversation = transcript(slack_app, "1700000000.000200")
    assert transcript(slack_app, "1700000000.000300")["id"] == conversation["id"]
    assert len(conversation["turns"]) == 4
    assert (conversation["facts"]["optimizer"], conversation["facts"]["learning_rate"]) == ("adam", 0.01)

    send_event(slack_client, direct_message("my GAN's generator collapses", "1700000000.000350"), event_id="Ev5")
    *_, unread = answers(slack_api, 3)
    assert unread.text.startswith("I couldn't tell which fact that answers") and "*start over*" in unread.text
    send_event(slack_client, direct_message("start over", "1700000000.000400"), event_id="Ev3")
    assert slack_api.wait_for("chat.postMessage", 4)[-1].args["text"].startswith("Starting over.")
    send_event(slack_client, direct_message("loss is nan after epoch 3", "1700000000.000500"), event_id="Ev4")
    answers(slack_api, 4)
    close(slack_app)
    fresh = transcript(slack_app, "1700000000.000500")
    assert fresh["id"] != conversation["id"] and fresh["turns"][0]["body"] == {"symptom": "loss is nan after epoch 3"}


def test_a_retried_event_is_answered_once(slack_app, slack_client, slack_api):
    assert send_event(slack_client, mention(), event_id="Ev9").status_code == 200
    retry = send_event(slack_client, mention(), event_id="Ev9",
                       headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
    assert retry.status_code == 200
    # The same message also arrives as a message event, with an event id of its own.
    as_message = {**mention(), "type": "message", "channel_type": "channel"}
    assert send_event(slack_client, as_message, event_id="Ev10").status_code == 200
    close(slack_app)
    assert len(slack_api.received("chat.postMessage")) == 1
    assert len(stored(slack_app, db.conversations)) == 1


def test_slash_command_answers_in_a_thread_of_its_own(slack_app, slack_client, slack_api):
    command = {"command": "/troubleshoot", "text": SYMPTOM, "team_id": TEAM, "channel_id": CHANNEL,
               "user_id": USER, "response_url": slack_api.root + "/respond", "trigger_id": "1.2.3", "token": "x"}
    response = send_form(slack_client, command)
    assert response.status_code == 200 and not response.get_data()
    (reply,) = answers(slack_api, 1)
    parent = slack_api.received("chat.postMessage")[0]
    assert parent.args["text"] == f"<@{USER}> asked: {SYMPTOM}" and "thread_ts" not in parent.args
    assert reply.thread_ts == parent.response["ts"]
    assert stored(slack_app, db.slack_threads)[0]["asker"] == USER

    usage = send_form(slack_client, {**command, "text": "  "})
    assert usage.status_code == 200 and usage.get_data(as_text=True).startswith("Tell me what you see")
    close(slack_app)
    assert len(slack_api.received("chat.postMessage")) == 2


VERDICT = ("**Reproduced.** A 10-epoch run of your setup on 1,000 generated samples shaped like your data shows the "
           "same problem (loss plateau): the loss stayed at 0.693 in 10 epochs.\n\nWhat each fix changed:\n"
           + "".join(f"- **Fix {n}**, with learning rate 0.0{n} instead of 1e-05: the loss fell from 0.693 to "
                     f"0.{n}12 in 10 epochs; your setup: the loss stayed at 0.693. Confirmed: the symptom is gone.\n"
                     for n in range(1, 4))
           + "\nChecks:\n- Zeroed inputs (does the model use its inputs?): the loss stayed at 0.693 in 10 epochs.\n"
           "\n**Verdict:** Learning rate too low. Its fix removed the symptom.\n\n"
           "_Run notes: assumed batch_size = 32 (Keras' default); held out the last 20% of the rows for validation._")


class ImmediateRuns:
    """Reproduction runs that finish on the third look, with a plot: the calls the bot makes of them."""

    def __init__(self):
        self.looks = 0

    def start(self, conversation_id, owner):
        self.started = (conversation_id, owner)
        return {"id": "run-1", "status": "queued", "progress": {"epoch": 0, "epochs": 40}}

    def get(self, conversation_id, run_id, owner):
        self.looks += 1
        if self.looks < 3:
            return {"id": run_id, "status": "running", "progress": {"epoch": 10 * self.looks, "epochs": 40}}
        history = {"epoch": [1, 2, 3], "loss": [0.69, 0.69, 0.69], "val_loss": [0.69, 0.69, float("nan")]}
        return {"id": run_id, "status": "done", "progress": {"epoch": 40, "epochs": 40},
                "result": {"reproduced": True, "verdict": VERDICT,
                           "causes": [{"id": "learning_rate_too_low", "title": "Learning rate too low",
                                       "confidence": 0.81},
                                      {"id": "poor_initialization", "title": "Poor weight initialization",
                                       "confidence": 0.07}],
                           "experiments": [{"name": "baseline", "history": history},
                                           {"name": "fix:learning_rate_too_low", "history": {"loss": [0.69, 0.4]}}]}}

    def plot(self, conversation_id, run_id, owner):
        return PNG


def submit(client, view, values, user=USER):
    """Send the run form ``view`` as Slack would: what it was filled in with, with ``values`` typed over it."""
    state = {}
    for block in view["blocks"]:
        if block["type"] != "input":
            continue
        element, key = block["element"], block["block_id"]
        if key in values:
            entry = {"type": "plain_text_input", "value": values[key]}
        elif "initial_option" in element:
            entry = {"type": "static_select", "selected_option": element["initial_option"]}
        else:
            entry = {"type": element["type"], "value": element.get("initial_value")}
        state[key] = {blocks.RUN_INPUT: entry}
    payload = {"type": "view_submission", "team": {"id": TEAM}, "user": {"id": user}, "api_app_id": "A0APP",
               "token": "unused", "trigger_id": "1.2.4",
               "view": {**view, "id": "V1", "team_id": TEAM, "state": {"values": state}}}
    return send_form(client, {"payload": json.dumps(payload)})


RUNNABLE_ANSWERS = {"task": "binary_classification", "optimizer": "adam", "loss": "binary_crossentropy",
                    "n_features": "20", "n_hidden_layers": "2", "hidden_activation": "relu",
                    "output_activation": "sigmoid", "n_classes": "2"}


def open_run_form(slack_client, slack_api, event):
    """Mention, then click "Validate with a short run": the reply and the form it opens."""
    send_event(slack_client, event)
    (reply,) = answers(slack_api, 1)
    assert click(slack_client, reply, button(reply, blocks.VALIDATE)).status_code == 200
    (opened,) = slack_api.wait_for("views.open", 1)
    assert opened.args["trigger_id"] == "1.2.3"
    return reply, opened.args["view"]


def validate_and_wait(slack_client, slack_api, event, values=RUNNABLE_ANSWERS, timeout=15):
    """Start a run through the form; the run's message as it ended, the plot's upload and the re-ranking."""
    _, view = open_run_form(slack_client, slack_api, event)
    assert submit(slack_client, view, values).status_code == 200
    _, run = answers(slack_api, 2, timeout=timeout)
    deadline = time.monotonic() + timeout
    while not [c for c in slack_api.received("chat.postMessage") if c.args["text"].startswith("After the run")]:
        assert time.monotonic() < deadline, [c.method for c in slack_api.calls]
        time.sleep(0.05)
    return run


def test_the_run_form_asks_every_missing_fact_at_once(slack_app, slack_client, slack_api):
    slack_app.extensions[repro.EXTENSION] = ImmediateRuns()
    _, view = open_run_form(slack_client, slack_api, mention(f"{SYMPTOM}. I use adam with learning rate 0.01"))
    inputs = {b["block_id"]: b for b in view["blocks"] if b["type"] == "input"}
    required = {key for key, block in inputs.items() if not block["optional"]}
    assert required == {"task", "loss", "n_features", "n_hidden_layers", "output_activation"}
    assert inputs["optimizer"]["element"]["initial_option"]["value"] == "adam"  # known: filled in
    assert inputs["learning_rate"]["element"]["initial_value"] == "0.01"
    assert inputs["n_features"]["label"]["text"] == "Features" and "_" not in json.dumps(
        [b["label"]["text"] for b in inputs.values()])
    assert "Fields left empty are assumed" in view["blocks"][-1]["elements"][0]["text"]

    wrong = submit(slack_client, view, {**RUNNABLE_ANSWERS, "n_features": "twenty"})
    assert wrong.status_code == 200
    assert set(wrong.get_json()["errors"]) == {"n_features"} and wrong.get_json()["response_action"] == "errors"
    close(slack_app)
    assert len(slack_api.received("chat.postMessage")) == 1  # nothing started


def test_a_run_shows_its_progress_in_one_message_that_ends_as_the_whole_verdict(slack_app, slack_client, slack_api):
    slack_app.extensions[repro.EXTENSION] = backend = ImmediateRuns()
    run = validate_and_wait(slack_client, slack_api, mention())
    close(slack_app)
    assert backend.started[1] == f"slack:{TEAM}"
    facts = transcript(slack_app, "1700000000.000100")["facts"]
    assert (facts["n_features"], facts["task"]) == (20, "binary_classification")  # the form's answers, one turn
    updates = [u.args for u in slack_api.received("chat.update") if u.args["ts"] == run.ts]
    assert [u["text"] for u in updates[:3]] == [f"<@{USER}> started a short run. Waiting for a worker… I will put the "
                                                "verdict here.", "Training: 25% done… I will put the verdict here.",
                                                "Training: 50% done… I will put the verdict here."]
    shown = visible({"blocks": updates[-1]["blocks"]})  # the notification text is short by design
    assert updates[-1]["text"].startswith("The short run reproduced the problem. Reproduced. A 10-epoch run")
    assert "*Reproduced.* A 10-epoch run" in shown and "**" not in shown and "…" not in shown
    assert shown.count("Confirmed: the symptom is gone.") == 3  # every fix's effect
    assert "• Zeroed inputs (does the model use its inputs?)" in shown  # the checks
    assert "assumed batch size = 32" in shown  # the assumptions, in words
    methods = [c.method for c in slack_api.calls]
    verdict_at = max(i for i, c in enumerate(slack_api.calls) if c.method == "chat.update" and c.args["ts"] == run.ts)
    plot_at = methods.index("files.completeUploadExternal", verdict_at)
    ranking_at = next(i for i, c in enumerate(slack_api.calls)
                      if c.method == "chat.postMessage" and c.args["text"].startswith("After the run"))
    assert verdict_at < plot_at < ranking_at  # the verdict, then its plot, then the re-ranking
    ranking = slack_api.calls[ranking_at]
    assert "1. Learning rate too low  ·  81%" in visible(ranking.args)
    *_, plot = [call for call in slack_api.calls if call.method.startswith("upload/")]
    assert plot.body == PNG
    assert len(slack_api.received("chat.postMessage")) == 3  # the reply, the run, the re-ranking
    assert internal_ids(slack_api) == []
    assert code_in_questions(slack_api) == []


class UnfinishedRuns(ImmediateRuns):
    """Runs that are still training whenever they are asked about."""

    def get(self, conversation_id, run_id, owner):
        return {"id": run_id, "status": "running", "progress": {"epoch": 1, "epochs": 5}}


def test_a_verdict_owed_by_a_stopped_process_ends_its_progress_message_from_another_once(make_slack_app, slack_api):
    """A deploy stops the web process watching a run: one of the processes after it puts the verdict in the
    run's own message, which the report keeps."""
    first = make_slack_app(SLACK_RUN_LEASE_SECONDS=0.3)
    first.extensions[repro.EXTENSION] = UnfinishedRuns()
    client = first.test_client()
    _, view = open_run_form(client, slack_api, mention())
    submit(client, view, RUNNABLE_ANSWERS)
    _, run = answers(slack_api, 2)
    close(first)  # the process stops while the run still trains
    assert [(row["run_id"], row["message_ts"]) for row in stored(first, db.slack_run_reports)] == [("run-1", run.ts)]

    later = [make_slack_app(SLACK_RUN_LEASE_SECONDS=0.3) for _ in range(2)]  # both sweep for lapsed reports
    for app in later:
        app.extensions[repro.EXTENSION] = ImmediateRuns()
    *_, ranking = slack_api.wait_for("chat.postMessage", 3, timeout=15)
    slack_api.wait_for("files.completeUploadExternal", timeout=15)
    assert ranking.args["text"].startswith("After the run") and ranking.args["thread_ts"] == "1700000000.000100"
    time.sleep(1.5)  # several more sweeps of both processes
    verdicts = [u for u in slack_api.received("chat.update") if u.args["text"].startswith("The short run")]
    assert [u.args["ts"] for u in verdicts] == [run.ts]  # once, in the run's message
    assert slack_api.messages[run.ts]["blocks"][0]["text"]["text"] == "*The short run reproduced the problem.*"
    assert [call.method for call in slack_api.calls].count("chat.postMessage") == 3  # reply, run, re-ranking
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
    run = validate_and_wait(app.test_client(), slack_api, mention())
    assert slack_api.messages[run.ts]["blocks"][0]["text"]["text"] == "*The short run reproduced the problem.*"
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
        store.owe_report(thread, conversation_id, f"slack:{TEAM}", "run-live", holder="a", lease=minute,
                         message_ts="1700000100.000001")
        store.owe_report(thread, conversation_id, f"slack:{TEAM}", "run-lapsed", holder="b", lease=timedelta(0),
                         message_ts="1700000100.000002")
        (taken,) = store.take_over_lapsed(holder="c", lease=minute)
        assert (taken.run_id, taken.thread, taken.message_ts) == ("run-lapsed", thread, "1700000100.000002")
        assert store.take_over_lapsed(holder="d", lease=minute) == []
        assert not store.renew("run-lapsed", holder="b", lease=minute)  # its old holder lost it
        assert store.renew("run-lapsed", holder="c", lease=minute) and store.renew("run-live", holder="a", lease=minute)


@pytest.mark.tf
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # one real run is enough
def test_a_validation_run_in_the_reproduction_workers(slack_client, slack_api):
    """A real run: TensorFlow starts in a worker process and trains every experiment (a minute or two)."""
    setup = slack_api.share("setup.json", json.dumps({"metrics": NAN_CSV, "training": RUNNABLE_TRAINING,
                                                      "dataset": RUNNABLE_DATASET}).encode())
    event = mention("loss becomes nan", files=[setup], subtype="file_share")
    run = validate_and_wait(slack_client, slack_api, event, values={}, timeout=300)
    assert run.thread_ts == "1700000000.000100"
    verdict = [u for u in slack_api.received("chat.update") if u.args["ts"] == run.ts][-1]
    assert verdict.args["text"].startswith(("The short run reproduced the problem.", "The short run is done."))
    *_, plot = [call for call in slack_api.calls if call.method.startswith("upload/")]
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
