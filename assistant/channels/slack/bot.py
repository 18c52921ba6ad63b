"""The Bolt app: mentions, direct messages, ``/troubleshoot``, button clicks and the run form become conversation turns.

Slack wants an answer within 3 seconds, and a diagnosis can take longer. So every listener
is split the way Bolt's lazy listeners allow: its ``ack`` function answers Slack at once in
the request (``process_before_response``), and its lazy function does the work afterwards
on this bot's own thread pool (``Bot.executor``), inside a Flask app context. Validation
runs go further: they train in the reproduction workers (see ``runs``).

The bot behaves like a colleague in the thread: it takes a turn only when addressed (a
mention, a direct message, or a reply from the person who asked), posts one message per turn
that it fills in when the answer is ready, and settles a clicked button in place, on every message of the
thread that offers it: an answered question or a cause given feedback keeps no live buttons.
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
from ...evidence import gather
from ...evidence.facts import EvidenceError
from ...evidence.inputs import coerce
from ...evidence.metrics import pasted_log
from ...evidence.symptom import answer_facts
from . import EXTENSION, blocks, files, runs, store
from .store import Thread

log = logging.getLogger(__name__)

#: Message subtypes that are a person writing: a plain message, one with files, one also sent to the channel.
PERSON_SUBTYPES = (None, "file_share", "thread_broadcast")
#: A direct message that asks for a new conversation instead of continuing the last one.
START_OVER = re.compile(r"\W*(?:start (?:over|again|afresh)|new (?:problem|conversation|question)|reset)\W*",
                        re.IGNORECASE)
_MENTION = re.compile(r"<@[UW][A-Z0-9]+(?:\|[^>]*)?>")
_LINK = re.compile(r"<([^>|]+)(?:\|([^>]*))?>")
USAGE = "Tell me what you see, e.g. `/troubleshoot my loss stays at 0.69 and accuracy at 50%`."


@dataclass(frozen=True)
class Bot:
    """The Bolt app, its Flask adapter, the thread pools its lazy listeners and file turns run on, and the
    run watchers' stop."""

    app: App
    handler: SlackRequestHandler
    executor: ThreadPoolExecutor
    #: Turns with shared files: a download can take seconds, and waits here rather than in front of others' turns.
    downloads: ThreadPoolExecutor
    #: Set when the process stops: run watchers and the sweep end, leaving unposted verdicts owed.
    stopping: threading.Event

    def close(self) -> None:
        """Wait for the turns being answered, then stop the pools and the run watchers."""
        self.executor.shutdown(wait=True)  # first: a listener may still hand a turn to the downloads
        self.downloads.shutdown(wait=True)
        self.stopping.set()


def build(flask_app: Flask) -> Bot:
    """A Bolt app for the Flask app's Slack settings, with every listener registered."""
    config = flask_app.config
    executor = ThreadPoolExecutor(max_workers=config["SLACK_WORKERS"], thread_name_prefix="slack")
    downloads = ThreadPoolExecutor(max_workers=config["SLACK_DOWNLOAD_WORKERS"], thread_name_prefix="slack-files")
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
    app.action(blocks.SHOW_FIX)(ack=_ack, lazy=[in_app(on_show_fix)])
    app.action(blocks.VALIDATE)(ack=_ack, lazy=[in_app(on_validate)])
    app.view(blocks.RUN_FORM)(ack=in_app(ack_run_form), lazy=[in_app(on_run_form)])
    stopping = threading.Event()
    threading.Thread(target=runs.sweep, args=(flask_app, app.client, stopping), name="slack-run-sweep",
                     daemon=True).start()
    return Bot(app, SlackRequestHandler(app), executor, downloads, stopping)


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
    _take_message(event, context, client, mentioned=True)


def on_message(event: dict[str, Any], context: BoltContext, client: WebClient) -> None:
    """A direct message does what a mention does; in a channel, only replies addressed to the bot count."""
    if event.get("subtype") not in PERSON_SUBTYPES or event.get("bot_id"):
        return
    if event.get("channel_type") == "im" or "thread_ts" in event:
        mentioned = bool(context.bot_user_id) and f"<@{context.bot_user_id}" in event.get("text", "")
        _take_message(event, context, client, mentioned=mentioned)


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
    with _answering(_Post(client, thread), "Looking at that…") as post:
        _converse(post, None, _owner(context), {"symptom": symptom}, asker=command["user_id"])


def on_answer(body: dict[str, Any], action: dict[str, Any], context: BoltContext, client: WebClient) -> None:
    """A clicked choice answers its question: its buttons become the answer, and the reply follows."""
    answer = json.loads(action["value"])
    fact, choice = answer["fact"], answer["choice"]
    user, message = body["user"]["id"], body["message"]
    if not store.first_delivery(f"answer:{_team(context)}:{body['channel']['id']}:{message['ts']}:{fact}"):
        return  # a second tap on the same question
    _settle_answers(client, _clicked_thread(body, context), {fact: choice}, user, clicked=body)
    _take_click(body, context, client, {"facts": {fact: choice}}, f"<@{user}> answered {_said(fact, choice)}")


def on_dont_know(body: dict[str, Any], context: BoltContext, client: WebClient) -> None:
    """"I don't know these": the assistant stops asking them and answers with what it has."""
    user, message = body["user"]["id"], body["message"]
    if not store.first_delivery(f"dont_know:{_team(context)}:{body['channel']['id']}:{message['ts']}"):
        return
    _settle(client, body, blocks.without_questions(message["blocks"], f"✓ <@{user}> doesn't know these."))
    _take_click(body, context, client, {"text": "I don't know"}, f"<@{user}> doesn't know these.")


def on_feedback(body: dict[str, Any], action: dict[str, Any], context: BoltContext, client: WebClient) -> None:
    """Record whether a cause's fix worked, once, and show what was recorded where its buttons were: in the
    clicked message and in the bot's other messages in the thread that offer them for the same cause."""
    thread = _clicked_thread(body, context)
    cause, verdict = action["value"], "fixed" if action["action_id"] == blocks.FIXED else "not_helpful"
    with _answering(_Post(client, thread)) as post:
        conversation_id = _known_conversation(post)
        if conversation_id is None:
            return
        if store.feedback_given(conversation_id).get(cause) != verdict and \
                store.first_delivery(f"feedback:{conversation_id}:{cause}:{verdict}"):
            conversations.add_feedback(conversation_id, _owner(context), cause, verdict)
        known = kb.current().causes.get(cause)
        text = blocks.feedback_note(known.title if known else "this cause", verdict, body["user"]["id"])
        if verdict != "fixed":
            text += " Tell me more here and I will look again."
        _settle_thread(client, thread, functools.partial(blocks.feedback_given, cause=cause, by=blocks.context(text)),
                       clicked=body)


def on_show_fix(body: dict[str, Any], action: dict[str, Any], context: BoltContext, client: WebClient) -> None:
    """"Show the fix" of a cause listed in one line: its evidence, fix and snippet, as the one-cause API gives them."""
    thread, message = _clicked_thread(body, context), body["message"]
    if not store.first_delivery(f"fix:{thread.team}:{thread.channel}:{message['ts']}:{action['value']}"):
        return
    with _answering(_Post(client, thread)) as post:
        conversation_id = _known_conversation(post)
        if conversation_id is None:
            return
        cause = conversations.cause(conversation_id, _owner(context), action["value"])
        if cause is None:
            post.show(blocks.Message("That cause is no longer in my knowledge base.", []))
            return
        _settle(client, body, blocks.without_button(message["blocks"], action["value"]))
        post.show(blocks.cause_message(kb.current(), cause, store.feedback_given(conversation_id)))


def on_validate(body: dict[str, Any], context: BoltContext, client: WebClient) -> None:
    """Open the run form, which asks every fact the run needs at once; the run starts when it is sent."""
    thread = _clicked_thread(body, context)
    with _answering(_Post(client, thread)) as post:
        if repro.reproductions() is None:  # a button from before this deployment stopped offering runs
            post.show(blocks.Message("Short runs are not available on this service.", []))
            return
        conversation_id = _known_conversation(post)
        if conversation_id is None:
            return
        conversation = conversations.load(conversation_id, _owner(context))
        knowledge = kb.current()
        fields, assumed = runs.form_fields(knowledge, conversation.facts.values())
        metadata = json.dumps({"channel": thread.channel, "thread_ts": thread.ts})
        client.views_open(trigger_id=body["trigger_id"], view=blocks.run_form(knowledge, fields, metadata, assumed))


def ack_run_form(ack: Ack, view: dict[str, Any]) -> None:
    """Check the form's values while Slack waits, so that a wrong one is shown next to its field."""
    _, errors = _form_facts(view)
    if errors:
        ack(response_action="errors", errors=errors)
    else:
        ack()


def on_run_form(body: dict[str, Any], view: dict[str, Any], context: BoltContext, client: WebClient) -> None:
    """The run form was sent: its facts become a turn, and the run starts, followed in one message."""
    where = json.loads(view["private_metadata"])
    thread = Thread(_team(context), where["channel"], where["thread_ts"])
    facts, errors = _form_facts(view)
    if errors:  # the form stays open with them: Bolt runs this all the same
        return
    user = body["user"]["id"]
    with _answering(_Post(client, thread), "Starting a short run…") as post:
        conversation_id = _known_conversation(post)
        if conversation_id is None:
            return
        owner = _owner(context)
        known = conversations.load(conversation_id, owner).facts.values()
        told = {key: value for key, value in facts.items() if known.get(key) != value}
        if told:
            conversations.reply_to(conversation_id, owner, {"facts": told})
        try:
            run = repro.reproductions().start(conversation_id, owner)
        except repro.IncompleteFacts as missing:  # a fact that only now became needed (the classes of a new task)
            labels = ", ".join(blocks.label(kb.current(), key) for key in missing.missing)
            post.show(blocks.Message(f"To build your model I still need: {labels}. Press *Validate* again.", []))
            return
        except repro.RunsUnavailable:
            post.show(blocks.Message("Short runs cannot be started right now. Please try again in a minute.", []))
            return
        post.show(blocks.progress_message(run, user))
        runs.watch(current_app._get_current_object(), client, current_app.extensions[EXTENSION].stopping, thread,
                   conversation_id, owner, run["id"], message_ts=post.ts)


def _form_facts(view: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The facts filled in on the run form, and a sentence per field whose value cannot be read."""
    knowledge, facts, errors = kb.current(), {}, {}
    for key, inputs in view["state"]["values"].items():
        state = inputs.get(blocks.RUN_INPUT, {})
        value = (state.get("selected_option") or {}).get("value", state.get("value"))
        if value is None or not str(value).strip():
            continue
        try:
            facts[key] = coerce(knowledge, key, str(value).strip())
        except EvidenceError as error:
            errors[key] = error.described().partition(": ")[2] or error.described()
    return facts, errors


# --- Turns ----------------------------------------------------------------------------------------


class _Post:
    """The one message a turn answers with: posted as a placeholder at once, then filled in with ``show``."""

    def __init__(self, client: WebClient, thread: Thread) -> None:
        self.client, self.thread, self.ts = client, thread, None

    def show(self, message: blocks.Message) -> None:
        """Put ``message`` in the turn's message (posting it, the first time), then its snippet as a file."""
        # A message without blocks still sends one: chat.update would keep the placeholder's otherwise.
        args = {"channel": self.thread.channel, "text": message.text,
                "blocks": message.blocks or [blocks.section(message.text)]}
        if self.ts is None:
            self.ts = self.client.chat_postMessage(thread_ts=self.thread.ts, **args)["ts"]
        else:
            self.client.chat_update(ts=self.ts, **args)
        if message.snippet is not None:
            self.client.files_upload_v2(channel=self.thread.channel, thread_ts=self.thread.ts,
                                        content=message.snippet.code, filename=message.snippet.filename,
                                        title=message.snippet.title, snippet_type="python")


def _take_message(event: dict[str, Any], context: BoltContext, client: WebClient, *, mentioned: bool) -> None:
    """One person's message as a turn of its thread's conversation, or the first one, when it is addressed to the bot."""
    # A mention in a channel the bot is in arrives as app_mention and as message: answer it once.
    if not store.first_delivery(f"message:{_team(context)}:{event['channel']}:{event['ts']}"):
        return
    direct, user = event.get("channel_type") == "im", event.get("user")
    thread = Thread(_team(context), event["channel"], event.get("thread_ts") or event["ts"])
    words = plain_text(event.get("text", ""), context.bot_user_id)
    link, note = store.link_of(thread), None
    if direct and "thread_ts" not in event:
        if START_OVER.fullmatch(words):
            store.start_over(thread.team, thread.channel, event["ts"])
            client.chat_postMessage(channel=thread.channel, thread_ts=thread.ts,
                                    text="Starting over. " + USAGE.replace("/troubleshoot ", ""))
            return
        link = link or store.latest_in_channel(thread.team, thread.channel)
        if link is not None:
            store.link(thread, link.conversation_id, user)
            note = "Continuing our last conversation. Send *start over* for a new problem."
    if link is None and not (mentioned or direct):
        return
    if link is not None and not (mentioned or direct or link.asker in (None, user)):
        return  # a colleague talking in the thread, not to the bot
    conversation_id = None if link is None else link.conversation_id
    shared = event.get("files", [])
    working = "Looking at your log…" if shared or pasted_log(words) else "Looking at that…"
    with _answering(_Post(client, thread), working) as post:
        answer = functools.partial(_answer_message, post, conversation_id, _owner(context), user, words, shared, note)
        if shared:  # a download may take seconds: it waits in a pool of its own, not in front of others' turns
            current_app.extensions[EXTENSION].downloads.submit(
                _in_app_context(current_app._get_current_object(), answer))
        else:
            answer()


def _answer_message(post: _Post, conversation_id: str | None, owner: str, user: str | None, words: str,
                    shared: list[dict[str, Any]], note: str | None) -> None:
    """Read a message's words and files, and answer them in ``post`` as the thread's first turn or its next one."""
    client, thread = post.client, post.thread
    with _answering(post):
        inputs, notes = files.read_shared(kb.current(), client, shared, current_app.config["MAX_CONTENT_LENGTH"])
        if notes:
            client.chat_postMessage(channel=thread.channel, thread_ts=thread.ts, text=blocks.escape("\n".join(notes)))
        if conversation_id is None:
            if not words:  # a conversation starts from the user's words
                post.show(blocks.Message(USAGE, []))
                return
            _converse(post, None, owner, {**inputs, "symptom": words}, asker=user)
            return
        answered: dict[str, Any] = {}
        if words:
            asked = conversations.load(conversation_id, owner).asked
            told = _told(asked, words, bool(inputs))
            if told is None:  # in a continued direct message, it may be a new problem: say how to start one
                post.show(blocks.Message(" ".join(filter(None, (_unread(asked), note))), []))
                return
            inputs.update(told[0])
            answered = told[1]
        if inputs:
            _converse(post, conversation_id, owner, inputs, note=note)
        if answered:
            _settle_answers(client, thread, answered, user, skip=post.ts)


def _told(asked: tuple[str, ...], words: str, more: bool) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The inputs a typed reply gives, and the facts it tells (the questions it answers among them); None when
    nothing in it can be read and nothing else came with it.

    A bare value ("20", "adam") goes to the first question asked that it fits. "I don't know" stays words
    alone, which the conversation takes as not knowing the questions; any other reply is never taken so.
    """
    knowledge = kb.current()
    if knowledge.phrases.dont_know.search(words):
        return {"text": words}, {}
    read = {fact.key: fact.value for fact in gather(knowledge, text=words, asked=asked).facts}
    answered = {key: value for key, value in read.items() if key in asked}
    matched: dict[str, Any] = {}
    if not answered:
        for key in asked:
            found = [fact for fact in answer_facts(knowledge, words, [key]) if fact.key == key]
            if found:
                matched[key] = found[0].value
                break
    if not (read or matched or more):
        return None
    return {"text": words, "facts": matched}, {**read, **matched}


def _said(key: str, value: Any) -> str:
    """An answer as the thread shows it: the fact's label and the value."""
    return f"{blocks.escape(blocks.label(kb.current(), key))}: *{blocks.escape(str(value))}*"


def _settle_answers(client: WebClient, thread: Thread, answered: Mapping[str, Any], user: str | None, *,
                    clicked: dict[str, Any] | None = None, skip: str | None = None) -> None:
    """The questions ``answered`` tells show their answer instead of their buttons, wherever the bot asked them in
    the thread: an answered fact keeps no live button, even on an older reply."""

    def settle(message_blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for key, value in answered.items():
            message_blocks = blocks.replaced(message_blocks, blocks.QUESTION_BLOCK + key,
                                             blocks.context(f"✓ {_said(key, value)} (<@{user}>)"))
        return message_blocks

    _settle_thread(client, thread, settle, clicked=clicked, skip=skip)


def _settle_thread(client: WebClient, thread: Thread, change: Callable[[list[dict[str, Any]]], list[dict[str, Any]]],
                   *, clicked: dict[str, Any] | None = None, skip: str | None = None) -> None:
    """``change`` made to the clicked message and to the bot's other messages in the thread (but ``skip``).

    The clicked message is changed as the click shows it, so it settles even when the thread cannot be read;
    the others are read with conversations.replies, best effort: a thread that cannot be read (a scope missing)
    or a message that cannot be changed keeps its buttons, and the turn is answered all the same.
    """
    if clicked is not None:
        _settle(client, clicked, change(clicked["message"]["blocks"]))
        skip = clicked["message"]["ts"]
    try:
        messages = client.conversations_replies(channel=thread.channel, ts=thread.ts, limit=200)["messages"]
    except SlackApiError:
        log.exception("could not read Slack thread %s to settle its buttons", thread)
        return
    for message in messages:
        if not message.get("bot_id") or message["ts"] == skip:
            continue
        settled = change(message.get("blocks", []))
        if settled == message.get("blocks", []):
            continue
        try:
            client.chat_update(channel=thread.channel, ts=message["ts"], text=message.get("text", ""), blocks=settled)
        except SlackApiError:
            log.exception("could not settle the buttons of Slack message %s in %s", message["ts"], thread)


def _unread(asked: tuple[str, ...]) -> str:
    """What the bot says to words it cannot read: which fact it hoped for, and how to write it."""
    if not asked:
        return ("I couldn't tell which fact that answers — name it with its value, like “learning rate = 0.01”, "
                "or share the training log.")
    name = blocks.label(kb.current(), asked[0])
    return (f"I couldn't tell which fact that answers — I asked about the {name}: reply with the value alone, "
            f"or as “{name} = …”. If you were talking to someone else, carry on.")


def _take_click(body: dict[str, Any], context: BoltContext, client: WebClient, inputs: Mapping[str, Any],
                note: str) -> None:
    thread = _clicked_thread(body, context)
    with _answering(_Post(client, thread), "Looking at that…") as post:
        conversation_id = _known_conversation(post)
        if conversation_id is not None:
            _converse(post, conversation_id, _owner(context), inputs, note=note)


def _converse(post: _Post, conversation_id: str | None, owner: str, inputs: Mapping[str, Any],
              note: str | None = None, asker: str | None = None) -> None:
    """Answer the turn with the same pipeline as the JSON API, and put the reply in the turn's message.

    Without a ``conversation_id`` the turn starts one, and the thread becomes it, with ``asker`` as who asked.
    """
    if conversation_id is None:
        conversation_id, reply = conversations.start(owner, inputs)
        store.link(post.thread, conversation_id, asker)
    else:
        reply = conversations.reply_to(conversation_id, owner, inputs)
        if reply is None:
            raise LookupError(f"conversation {conversation_id} of Slack thread {post.thread} is gone")
    post.show(blocks.reply_message(kb.current(), reply, runs=repro.reproductions() is not None, note=note,
                                   recorded=store.feedback_given(conversation_id)))


def _settle(client: WebClient, body: dict[str, Any], new_blocks: list[dict[str, Any]]) -> None:
    """The clicked message, with what the click did in place of its buttons."""
    message = body["message"]
    client.chat_update(channel=body["channel"]["id"], ts=message["ts"], text=message.get("text", ""),
                       blocks=new_blocks)


@contextmanager
def _answering(post: _Post, working: str | None = None) -> Iterator[_Post]:
    """The turn's message, posted at once as ``working`` when given; a turn that fails says why in it,
    instead of failing silently in a background thread."""
    thread = post.thread
    try:
        if working is not None:
            post.show(blocks.placeholder(working))
        yield post
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
        post.show(blocks.Message(blocks.escape(text), [blocks.section(blocks.escape(text))]))
    except SlackApiError:
        log.exception("could not post to Slack thread %s", thread)


def _known_conversation(post: _Post) -> str | None:
    """The thread's conversation; when it has none (any more), the thread is told how to start one."""
    conversation_id = store.conversation_in(post.thread)
    if conversation_id is None:
        post.show(blocks.Message("I have no conversation in this thread any more. " + USAGE, []))
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
