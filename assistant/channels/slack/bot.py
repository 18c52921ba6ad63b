"""The Bolt app: mentions, direct messages, ``/troubleshoot`` and button clicks become conversation turns.

Slack wants an answer within 3 seconds, and a diagnosis can take longer. So every listener
is split the way Bolt's lazy listeners allow: its ``ack`` function answers Slack at once in
the request (``process_before_response``), and its lazy function does the work afterwards
on this bot's own thread pool (``Bot.executor``), inside a Flask app context. Validation
runs go further: they train in the reproduction workers (see ``runs``).
"""
from __future__ import annotations

import functools
import html
import json
import logging
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app
from slack_bolt import Ack, App, BoltContext, BoltRequest, BoltResponse
from slack_bolt.adapter.flask import SlackRequestHandler
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from ... import conversations, kb, repro
from ...evidence.facts import EvidenceError
from . import EXTENSION, blocks, files, runs, store
from .store import Thread

log = logging.getLogger(__name__)

#: Message subtypes that are a person writing: a plain message, one with files, one also sent to the channel.
PERSON_SUBTYPES = (None, "file_share", "thread_broadcast")
#: A pasted Keras console log in a message; it is read as the turn's metrics too.
CONSOLE_LOG = re.compile(r"^\W*Epoch \d+/\d+", re.MULTILINE)
_MENTION = re.compile(r"<@[UW][A-Z0-9]+(?:\|[^>]*)?>")
_LINK = re.compile(r"<([^>|]+)(?:\|([^>]*))?>")
USAGE = "Tell me what you see, e.g. `/troubleshoot my loss stays at 0.69 and accuracy at 50%`."


@dataclass(frozen=True)
class Bot:
    """The Bolt app, its Flask adapter, the thread pool its lazy listeners run on, and the run watchers' stop."""

    app: App
    handler: SlackRequestHandler
    executor: ThreadPoolExecutor
    #: Set when the process stops: run watchers and the sweep end, leaving unposted verdicts owed.
    stopping: threading.Event

    def close(self) -> None:
        """Wait for the turns being answered, then stop the pool and the run watchers."""
        self.executor.shutdown(wait=True)
        self.stopping.set()


def build(flask_app: Flask) -> Bot:
    """A Bolt app for the Flask app's Slack settings, with every listener registered."""
    config = flask_app.config
    executor = ThreadPoolExecutor(max_workers=config["SLACK_WORKERS"], thread_name_prefix="slack")
    app = App(
        client=WebClient(token=config["SLACK_BOT_TOKEN"], base_url=config["SLACK_API_URL"]),
        signing_secret=config["SLACK_SIGNING_SECRET"] or "",
        process_before_response=True,
        # auth.test on the first request, not while the app is being created.
        token_verification_enabled=False,
        listener_executor=executor,
        name="keras-troubleshooter",
    )
    in_app = functools.partial(_in_app_context, flask_app)
    app.middleware(in_app(skip_redeliveries))
    app.event("app_mention")(ack=_ack, lazy=[in_app(on_mention)])
    app.event("message")(ack=_ack, lazy=[in_app(on_message)])
    app.command("/troubleshoot")(ack=ack_command, lazy=[in_app(on_command)])
    app.action(re.compile(rf"^{blocks.ANSWER}-\d+$"))(ack=_ack, lazy=[in_app(on_answer)])
    app.action(blocks.DONT_KNOW)(ack=_ack, lazy=[in_app(on_dont_know)])
    app.action(re.compile(f"^({blocks.FIXED}|{blocks.NOT_HELPFUL})$"))(ack=_ack, lazy=[in_app(on_feedback)])
    app.action(blocks.VALIDATE)(ack=_ack, lazy=[in_app(on_validate)])
    stopping = threading.Event()
    threading.Thread(target=runs.sweep, args=(flask_app, app.client, stopping), name="slack-run-sweep",
                     daemon=True).start()
    return Bot(app, SlackRequestHandler(app), executor, stopping)


def _in_app_context(flask_app: Flask, func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` run inside an app context, for the database; Bolt still sees its argument names."""

    @functools.wraps(func)
    def run(**kwargs: Any) -> Any:
        with flask_app.app_context():
            return func(**kwargs)

    return run


def _ack(ack: Ack) -> None:
    ack()


def skip_redeliveries(req: BoltRequest, body: dict[str, Any], next_: Callable[[], BoltResponse]) -> BoltResponse:
    """Acknowledge an event or request seen before without handling it again.

    Slack resends an event (with ``X-Slack-Retry-Num``) when the first delivery was not
    acknowledged in time, although it may have been handled; its ``event_id`` stays the same.
    A signed request sent again as it was (a replay: a slash command, a click) carries the very
    signature it had, which no new request from Slack can; Bolt has checked it by now.
    """
    event_id = body.get("event_id")
    signature = next(iter(req.headers.get("x-slack-signature", ())), None)
    for key in (event_id and f"event:{event_id}", signature and f"signed:{signature}"):
        if key and not store.first_delivery(key):
            return BoltResponse(status=200, body="")
    return next_()


def ack_command(ack: Ack, command: dict[str, Any]) -> None:
    """An empty ``/troubleshoot`` gets the usage, shown only to the person who typed it."""
    if command.get("text", "").strip():
        ack()
    else:
        ack(USAGE)


# --- Listeners: each runs after Slack has its acknowledgement -----------------------------------


def on_mention(event: dict[str, Any], context: BoltContext, client: WebClient) -> None:
    """A mention starts a conversation in its thread, or is the next turn of the thread's conversation."""
    _take_message(event, context, client, may_start=True)


def on_message(event: dict[str, Any], context: BoltContext, client: WebClient) -> None:
    """A direct message does what a mention does; in a channel, only replies in a conversation's thread count."""
    if event.get("subtype") not in PERSON_SUBTYPES or event.get("bot_id"):
        return
    direct = event.get("channel_type") == "im"
    if direct or "thread_ts" in event:
        _take_message(event, context, client, may_start=direct)


def on_command(command: dict[str, Any], context: BoltContext, client: WebClient, respond: Callable) -> None:
    """``/troubleshoot <symptom>``: post the question in the channel and answer it in that message's thread."""
    symptom = plain_text(command["text"], None)
    if not symptom:  # ack_command has shown the usage
        return
    try:
        parent = client.chat_postMessage(channel=command["channel_id"],
                                         text=f"<@{command['user_id']}> asked: {blocks.escape(symptom)}")
    except SlackApiError as error:
        respond(f"I cannot post in this channel ({error.response['error']}). Invite me with `/invite`, "
                "or send me a direct message.")
        return
    thread = Thread(_team(context), command["channel_id"], parent["ts"])
    with _answering(client, thread):
        _converse(client, thread, None, _owner(context), {"symptom": symptom})


def on_answer(body: dict[str, Any], action: dict[str, Any], context: BoltContext, client: WebClient) -> None:
    """A clicked choice answers its question: the next turn."""
    answer = json.loads(action["value"])
    note = f"<@{body['user']['id']}> answered: {blocks.escape(answer['fact'])} = *{blocks.escape(answer['choice'])}*"
    _take_click(body, context, client, {"facts": {answer["fact"]: answer["choice"]}}, note)


def on_dont_know(body: dict[str, Any], context: BoltContext, client: WebClient) -> None:
    """"I don't know these": the assistant stops asking them and answers with what it has."""
    _take_click(body, context, client, {"text": "I don't know"}, f"<@{body['user']['id']}> doesn't know these.")


def on_feedback(body: dict[str, Any], action: dict[str, Any], context: BoltContext, client: WebClient) -> None:
    """Record whether a suggested cause's fix worked, and say so in the thread."""
    thread = _clicked_thread(body, context)
    fixed = action["action_id"] == blocks.FIXED
    with _answering(client, thread):
        conversation_id = _known_conversation(client, thread)
        if conversation_id is None:
            return
        conversations.add_feedback(conversation_id, _owner(context), action["value"],
                                   "fixed" if fixed else "not_helpful")
        user = f"<@{body['user']['id']}>"
        text = (f"Thanks, {user}: noted that the fix for `{action['value']}` worked." if fixed else
                f"Thanks, {user}: noted that the fix for `{action['value']}` did not help. Tell me more in "
                "this thread and I will look again.")
        client.chat_postMessage(channel=thread.channel, thread_ts=thread.ts, text=text)


def on_validate(body: dict[str, Any], context: BoltContext, client: WebClient) -> None:
    """Queue a short reproduction run; its verdict and plot are posted in the thread when it ends."""
    thread = _clicked_thread(body, context)
    reproductions = repro.reproductions()
    with _answering(client, thread):
        if reproductions is None:  # a button from before this deployment stopped offering runs
            client.chat_postMessage(channel=thread.channel, thread_ts=thread.ts,
                                    text="Short runs are not available on this service.")
            return
        conversation_id = _known_conversation(client, thread)
        if conversation_id is None:
            return
        try:
            run = reproductions.start(conversation_id, _owner(context))
        except repro.IncompleteFacts as missing:  # the conversation has asked for them: show those questions
            if missing.reply is not None:
                _post_reply(client, thread, missing.reply, note=blocks.escape(str(missing)))
            return
        except repro.RunsUnavailable:
            client.chat_postMessage(channel=thread.channel, thread_ts=thread.ts,
                                    text="Short runs cannot be started right now. Please try again in a minute.")
            return
        client.chat_postMessage(channel=thread.channel, thread_ts=thread.ts,
                                text=f"<@{body['user']['id']}> started a short run ({run['id']}). "
                                     "I will post its verdict here when it is done.")
        runs.watch(current_app._get_current_object(), client, current_app.extensions[EXTENSION].stopping, thread,
                   conversation_id, _owner(context), run["id"])


# --- Turns ----------------------------------------------------------------------------------------


def _take_message(event: dict[str, Any], context: BoltContext, client: WebClient, *, may_start: bool) -> None:
    """One person's message as a turn of its thread's conversation (or the first one, if ``may_start``)."""
    # A mention in a channel the bot is in arrives as app_mention and as message: answer it once.
    if not store.first_delivery(f"message:{_team(context)}:{event['channel']}:{event['ts']}"):
        return
    thread = Thread(_team(context), event["channel"], event.get("thread_ts") or event["ts"])
    conversation_id = store.conversation_in(thread)
    if conversation_id is None and not may_start:
        return
    with _answering(client, thread):
        words = plain_text(event.get("text", ""), context.bot_user_id)
        inputs, notes = files.read_shared(kb.current(), client, event.get("files", []),
                                            current_app.config["MAX_CONTENT_LENGTH"])
        if words:
            inputs["symptom" if conversation_id is None else "text"] = words
            if CONSOLE_LOG.search(words) and "metrics" not in inputs:
                inputs["metrics"] = words.replace("```", "\n")
        if notes:
            client.chat_postMessage(channel=thread.channel, thread_ts=thread.ts, text=blocks.escape("\n".join(notes)))
        if conversation_id is None and "symptom" not in inputs:  # a conversation starts from the user's words
            client.chat_postMessage(channel=thread.channel, thread_ts=thread.ts, text=USAGE)
        elif inputs:
            _converse(client, thread, conversation_id, _owner(context), inputs)


def _take_click(body: dict[str, Any], context: BoltContext, client: WebClient, inputs: Mapping[str, Any],
                note: str) -> None:
    thread = _clicked_thread(body, context)
    with _answering(client, thread):
        conversation_id = _known_conversation(client, thread)
        if conversation_id is not None:
            _converse(client, thread, conversation_id, _owner(context), inputs, note=note)


def _converse(client: WebClient, thread: Thread, conversation_id: str | None, owner: str,
              inputs: Mapping[str, Any], note: str | None = None) -> None:
    """Answer the turn with the same pipeline as the JSON API, and post the reply in the thread.

    Without a ``conversation_id`` the turn starts one, and the thread becomes it.
    """
    if conversation_id is None:
        conversation_id, reply = conversations.start(owner, inputs)
        store.link(thread, conversation_id)
    else:
        reply = conversations.reply_to(conversation_id, owner, inputs)
        if reply is None:
            raise LookupError(f"conversation {conversation_id} of Slack thread {thread} is gone")
    _post_reply(client, thread, reply, note=note)


def _post_reply(client: WebClient, thread: Thread, reply: Mapping[str, Any], note: str | None = None) -> None:
    """A reply in Block Kit, and its long snippet as a file after it."""
    message = blocks.reply_message(reply, runs=repro.reproductions() is not None, note=note)
    client.chat_postMessage(channel=thread.channel, thread_ts=thread.ts, text=message.text, blocks=message.blocks)
    if message.snippet is not None:
        client.files_upload_v2(channel=thread.channel, thread_ts=thread.ts, content=message.snippet.code,
                               filename=message.snippet.filename, title=message.snippet.title,
                               snippet_type="python")


@contextmanager
def _answering(client: WebClient, thread: Thread) -> Iterator[None]:
    """Say in the thread why a turn could not be answered, instead of failing silently in a background thread."""
    try:
        yield
    except EvidenceError as error:
        text = f"I could not read that: {error.described()}"
    except (conversations.Conflict, repro.SpecError) as error:  # both say what to do, for the user
        text = str(error)
    except Exception:
        log.exception("could not answer in Slack thread %s", thread)
        text = "Something went wrong on my side; the details were logged. Please try again."
    else:
        return
    try:
        client.chat_postMessage(channel=thread.channel, thread_ts=thread.ts, text=blocks.escape(text))
    except SlackApiError:
        log.exception("could not post to Slack thread %s", thread)


def _known_conversation(client: WebClient, thread: Thread) -> str | None:
    """The thread's conversation; when it has none (any more), the thread is told how to start one."""
    conversation_id = store.conversation_in(thread)
    if conversation_id is None:
        client.chat_postMessage(channel=thread.channel, thread_ts=thread.ts,
                                text="I have no conversation in this thread any more. " + USAGE)
    return conversation_id


def _clicked_thread(body: dict[str, Any], context: BoltContext) -> Thread:
    """The thread of the message whose button was clicked (the bot answers only in threads)."""
    message = body["message"]
    return Thread(_team(context), body["channel"]["id"], message.get("thread_ts") or message["ts"])


def _team(context: BoltContext) -> str:
    return context.team_id or context.enterprise_id or ""


def _owner(context: BoltContext) -> str:
    """Conversations started in Slack belong to the workspace; API tokens do not see them."""
    return f"slack:{_team(context)}"


def plain_text(text: str, bot_user_id: str | None) -> str:
    """What a person wrote, without the bot's mention and with Slack's markup undone."""
    text = _MENTION.sub(lambda m: "" if bot_user_id and bot_user_id in m.group() else m.group(), text)
    text = _LINK.sub(lambda m: m.group(2) or m.group(1), text)
    return html.unescape(text).strip()
