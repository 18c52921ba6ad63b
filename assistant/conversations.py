"""Conversations: what one knows so far, how a turn advances it, and how turns are stored.

Channels (the JSON API, later the chat page and Slack) call ``start`` and ``reply_to`` and
never touch the pipeline or the tables themselves.
"""
from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from flask import current_app
from sqlalchemy import ColumnElement, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from . import alarms, db, kb
from .evidence import gather
from .evidence.facts import Fact, Facts, OverLimit
from .reasoning.engine import Diagnosis, diagnose
from .reply import render, render_cause

#: How often a turn is answered again after another turn on the same conversation was stored first.
ATTEMPTS = 3
#: How many conversations ``recent`` lists.
RECENT_LIMIT = 50


class Conflict(Exception):
    """Another turn was stored on the conversation after it was read."""


@dataclass(frozen=True)
class Conversation:
    """What a conversation knows before its next turn."""

    id: str
    owner: str | None
    title: str
    facts: Facts
    #: Fact keys the user said they do not know; the assistant does not ask for them again.
    declined: frozenset[str]
    #: Fact keys the last reply asked for.
    asked: tuple[str, ...]
    #: Sequence number of the last stored turn; 0 before the first one.
    last_seq: int
    #: Ids of the causes the last reply listed, most likely first.
    shown: tuple[str, ...] = ()
    #: The alarms (their facts) the last reply rang for a live run.
    alarms: frozenset[str] = frozenset()

    @classmethod
    def new(cls, owner: str | None, title: str) -> Conversation:
        return cls(f"conv-{uuid.uuid4().hex}", owner, title, Facts(), frozenset(), (), 0)


@dataclass(frozen=True)
class Turn:
    """The user's turn, the assistant's reply, and the conversation state they lead to."""

    user: dict[str, Any]
    reply: dict[str, Any]
    facts: Facts
    declined: frozenset[str]
    #: One epoch of a live training run (Keras's logs with its 0-based ``epoch``) that this turn adds.
    epoch: dict[str, Any] | None = None
    #: False for a live epoch that changes nothing a person would read: the facts advance, the transcript does not.
    recorded: bool = True
    #: The facts with the facts derived from them, as the diagnosis worked them out.
    values: dict[str, Any] | None = None


def respond(facts: Facts, declined: Collection[str]) -> tuple[Diagnosis, dict[str, Any]]:
    """The one way a reply is made: facts and derived facts worked out once, the diagnosis, then its rendering."""
    knowledge = kb.current()
    diagnosis = diagnose(knowledge, facts, declined=declined)
    return diagnosis, render(knowledge, diagnosis)


def answer(conversation: Conversation, inputs: Mapping[str, Any]) -> Turn:
    """Run the user's inputs through the evidence and reply pipeline, on top of what the conversation knows.

    ``inputs`` holds ``gather``'s keyword arguments (symptom or text, metrics, dataset, ...).
    """
    evidence = gather(kb.current(), asked=conversation.asked, **inputs)
    history_length = max(map(len, (evidence.history or {}).values()), default=0)
    if history_length > current_app.config["MAX_EPOCHS"]:
        raise OverLimit(
            f"the history has {history_length:,} epochs; at most {current_app.config['MAX_EPOCHS']:,} are read",
            field="metrics", status=413,
        )
    facts = conversation.facts.copy()
    facts.update(evidence.facts)
    declined = set(conversation.declined)
    answered = {fact.key for fact in evidence.facts}
    if set(inputs) == {"text"} and not answered.intersection(conversation.asked):
        declined.update(conversation.asked)  # words alone that answer none of the questions: "I don't know"
    diagnosis, reply = respond(facts, declined)
    user = {key: value for key, value in inputs.items() if key not in ("metrics", "sample")}
    if "sample" in inputs:
        user["sample_bytes"] = len(inputs["sample"])
    if evidence.history is not None:
        user["history"] = evidence.history
    return Turn(user, reply, facts, frozenset(declined), values=diagnosis.values)


def save(conversation: Conversation, turn: Turn) -> None:
    """Store the turn, its reply and the new state in one transaction; ``Conflict`` if another turn got in first."""
    stamp = db.now()
    state = {"facts": turn.facts.as_list(), "declined": sorted(turn.declined), "updated_at": stamp}
    rows = [
        {"conversation_id": conversation.id, "seq": conversation.last_seq + n, "role": role, "body": body,
         "created_at": stamp}
        for n, role, body in ((1, "user", turn.user), (2, "assistant", turn.reply))
    ]
    conflict = Conflict(f"conversation {conversation.id} changed while this turn was answered; send it again")
    c, e = db.conversations.c, db.live_epochs.c
    try:
        with db.get_engine().begin() as connection:
            if conversation.last_seq == 0:
                connection.execute(insert(db.conversations).values(
                    id=conversation.id, owner=conversation.owner, title=conversation.title, created_at=stamp,
                    **state))
            elif turn.recorded:
                connection.execute(update(db.conversations).where(c.id == conversation.id).values(**state))
            else:  # no turn rows to collide on: the state may only move on from the one this turn was read with
                last_seq = select(func.max(db.turns.c.seq)).where(db.turns.c.conversation_id == conversation.id)
                if not connection.execute(update(db.conversations).values(**state).where(
                        c.id == conversation.id, last_seq.scalar_subquery() == conversation.last_seq)).rowcount:
                    raise conflict
            if turn.epoch is not None:  # an epoch number seen before: training started again from there
                connection.execute(delete(db.live_epochs).where(e.conversation_id == conversation.id,
                                                                e.epoch >= turn.epoch["epoch"]))
                connection.execute(insert(db.live_epochs).values(
                    conversation_id=conversation.id, epoch=turn.epoch["epoch"], logs=turn.epoch, created_at=stamp))
            if turn.recorded:
                connection.execute(insert(db.turns), rows)  # a conflict on either row rolls the whole turn back
    except IntegrityError as exc:  # the (conversation_id, seq) key: those numbers were taken meanwhile
        raise conflict from exc


def start(owner: str | None, inputs: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """Open a conversation from the user's first message; returns its id and the assistant's reply."""
    conversation = Conversation.new(owner, _title(inputs["symptom"]))
    turn = answer(conversation, inputs)
    save(conversation, turn)
    return conversation.id, turn.reply


def reply_to(conversation_id: str, owner: str | None, inputs: Mapping[str, Any]) -> dict[str, Any] | None:
    """Answer a further turn; None when the owner has no such conversation.

    A turn that lands on the same conversation meanwhile changes what this one should say, so
    the conversation is read and the turn answered again.
    """
    return _advance(conversation_id, owner, lambda conversation: answer(conversation, inputs))


def add_findings(conversation_id: str, owner: str | None, user: dict[str, Any], findings: Iterable[Fact],
                 explain: Callable[[dict[str, Any], Facts], dict[str, Any]]) -> dict[str, Any] | None:
    """Add facts the assistant found itself (a reproduction run) and store the reply re-ranked on them.

    ``user`` is the stored request that led to them; ``explain(reply, facts)`` adds to the reply
    what was found. None when the owner has no such conversation.
    """
    findings = list(findings)

    def step(conversation: Conversation) -> Turn:
        facts = conversation.facts.copy()
        facts.update(findings)
        reply = explain(respond(facts, conversation.declined)[1], facts)
        return Turn(dict(user), reply, facts, conversation.declined)

    return _advance(conversation_id, owner, step)


def add_epoch(conversation_id: str, owner: str | None, logs: dict[str, Any], *,
              title: str | None = None) -> dict[str, Any] | None:
    """Add one epoch of a live training run and answer for the run so far, through the same pipeline as any turn.

    ``logs`` are Keras's epoch logs with the 0-based ``epoch``; an epoch number already stored means
    training started again from there, so it and the later ones are replaced. The reply carries
    ``live`` (see :func:`_with_live`). A turn joins the transcript only when the leading cause or the
    alarms change; otherwise just the facts advance. None when the owner has no such conversation, unless
    ``title`` is given: then the run's conversation starts under ``conversation_id``.
    """
    def step(conversation: Conversation) -> Turn:
        records = [r for r in epochs(conversation.id) if r["epoch"] < logs["epoch"]] + [logs]
        turn = answer(conversation, {"metrics": records})
        reply = _with_live(turn.reply, records, alarms.problems(kb.current(), turn.facts, turn.values))
        rung = {problem["fact"] for problem in reply["live"]["problems"]}
        # The last stored reply rang the alarms of the conversation as it stands: an epoch that changed
        # neither the leader nor the alarms was not stored, so they have not changed since.
        changed = reply["causes"][0]["id"] != next(iter(conversation.shown), None) or rung != conversation.alarms
        return replace(turn, user={"epoch": logs, **turn.user}, reply=reply, epoch=logs,
                       recorded=changed or conversation.last_seq == 0)

    start = None if title is None else replace(Conversation.new(owner, title), id=conversation_id)
    return _advance(conversation_id, owner, step, start=start)


def cause(conversation_id: str, owner: str | None, cause_id: str) -> dict[str, Any] | None:
    """One cause of the knowledge base as this conversation's facts weigh it, listed in the last reply
    or not; None when the owner has no such conversation."""
    conversation = load(conversation_id, owner)
    if conversation is None:
        return None
    knowledge = kb.current()
    return render_cause(knowledge, diagnose(knowledge, conversation.facts, declined=conversation.declined), cause_id)


def live_reply(conversation_id: str, owner: str | None) -> dict[str, Any] | None:
    """The reply for a live run as it stands, for a client that polls it; None when there is no such conversation."""
    conversation = load(conversation_id, owner)
    if conversation is None:
        return None
    diagnosis, reply = respond(conversation.facts, conversation.declined)
    return _with_live(reply, epochs(conversation_id), alarms.problems(kb.current(), conversation.facts,
                                                                     diagnosis.values))


def _with_live(reply: dict[str, Any], records: list[dict[str, Any]], rung: list[dict[str, str]]) -> dict[str, Any]:
    """The reply with ``live``: the last epoch received (Keras's number), how many the run has, and the alarms rung."""
    return {**reply, "live": {"epoch": records[-1]["epoch"] if records else None, "epochs": len(records),
                              "problems": rung}}


def epochs(conversation_id: str) -> list[dict[str, Any]]:
    """The logs of a live run's epochs, in order."""
    e = db.live_epochs.c
    with db.get_engine().connect() as connection:
        rows = connection.execute(select(e.logs).where(e.conversation_id == conversation_id).order_by(e.epoch))
        return [row.logs for row in rows]


def _advance(conversation_id: str, owner: str | None, step: Callable[[Conversation], Turn], *,
             start: Conversation | None = None) -> dict[str, Any] | None:
    """Store the turn ``step`` makes of the conversation, reading it again while other turns land first.

    None when the owner has no such conversation and there is no ``start`` to begin it with.
    """
    for _ in range(ATTEMPTS):
        conversation = load(conversation_id, owner) or start
        if conversation is None:
            return None
        turn = step(conversation)
        try:
            save(conversation, turn)
            return turn.reply
        except Conflict as exc:
            conflict = exc
    raise conflict


def load(conversation_id: str, owner: str | None) -> Conversation | None:
    """The state a next turn builds on, or None when the owner has no such conversation."""
    c = db.conversations.c
    with db.get_engine().connect() as connection:
        row = connection.execute(
            select(c.id, c.owner, c.title, c.facts, c.declined).where(_owned_by(conversation_id, owner))
        ).first()
        if row is None:
            return None
        # Turns are stored in pairs, so the last one is the assistant's reply.
        last = connection.execute(
            select(db.turns.c.seq, db.turns.c.body).where(db.turns.c.conversation_id == conversation_id)
            .order_by(db.turns.c.seq.desc()).limit(1)
        ).one()
    asked = tuple(question["fact"] for question in last.body.get("questions", ()))
    shown = tuple(cause["id"] for cause in last.body.get("causes", ()))
    rung = frozenset(problem["fact"] for problem in last.body.get("live", {}).get("problems", ()))
    return Conversation(row.id, row.owner, row.title, Facts.from_list(row.facts), frozenset(row.declined), asked,
                        last.seq, shown, rung)


def transcript(conversation_id: str, owner: str | None) -> dict[str, Any] | None:
    """Every turn of a conversation and the facts it has gathered, as clients see them."""
    with db.get_engine().connect() as connection:
        row = connection.execute(select(db.conversations).where(_owned_by(conversation_id, owner))).first()
        if row is None:
            return None
        turns = connection.execute(
            select(db.turns.c.seq, db.turns.c.role, db.turns.c.body, db.turns.c.created_at)
            .where(db.turns.c.conversation_id == conversation_id).order_by(db.turns.c.seq)
        ).all()
    return {
        "id": row.id,
        "title": row.title,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
        "turns": [{"seq": t.seq, "role": t.role, "body": t.body, "created_at": t.created_at.isoformat()} for t in turns],
        "facts": Facts.from_list(row.facts).values(),
        "declined": row.declined,
    }


def recent(owner: str | None) -> list[dict[str, Any]]:
    """The owner's conversations, most recently active first."""
    c = db.conversations.c
    with db.get_engine().connect() as connection:
        rows = connection.execute(
            select(c.id, c.title, c.updated_at).where(c.owner.is_not_distinct_from(owner))
            .order_by(c.updated_at.desc()).limit(RECENT_LIMIT)
        ).all()
    return [{"id": r.id, "title": r.title, "updated_at": r.updated_at.isoformat()} for r in rows]


def add_feedback(conversation_id: str, owner: str | None, cause: str, verdict: str,
                 comment: str | None = None) -> dict[str, Any] | None:
    """Record whether a suggested cause fixed the problem; None when the owner has no such conversation."""
    stamp = db.now()
    with db.get_engine().begin() as connection:
        if connection.execute(select(db.conversations.c.id).where(_owned_by(conversation_id, owner))).first() is None:
            return None
        feedback_id = connection.execute(insert(db.feedback).values(
            conversation_id=conversation_id, cause_id=cause, verdict=verdict, comment=comment, created_at=stamp,
        )).inserted_primary_key[0]
    return {"id": feedback_id, "conversation_id": conversation_id, "cause": cause, "verdict": verdict,
            "comment": comment, "created_at": stamp.isoformat()}


def _owned_by(conversation_id: str, owner: str | None) -> ColumnElement[bool]:
    """Another owner's conversation is treated as one that does not exist."""
    c = db.conversations.c
    return (c.id == conversation_id) & c.owner.is_not_distinct_from(owner)


def _title(symptom: str) -> str:
    return " ".join(symptom.split())[:120]
