"""Conversations: what one knows so far, how a turn advances it, and how turns are stored.

Channels (the JSON API, later the chat page and Slack) call ``start`` and ``reply_to`` and
never touch the pipeline or the tables themselves.
"""
from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import current_app
from sqlalchemy import ColumnElement, insert, select, update
from sqlalchemy.exc import IntegrityError

from . import db
from .evidence import gather
from .evidence.facts import EvidenceError, Facts
from .reply import compose

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


def answer(conversation: Conversation, inputs: Mapping[str, Any]) -> Turn:
    """Run the user's inputs through the evidence and reply pipeline, on top of what the conversation knows.

    ``inputs`` holds ``gather``'s keyword arguments (symptom or text, metrics, dataset, ...).
    """
    evidence = gather(asked=conversation.asked, **inputs)
    history_length = max(map(len, (evidence.history or {}).values()), default=0)
    if history_length > current_app.config["MAX_EPOCHS"]:
        raise EvidenceError(
            f"the history has {history_length} epochs; at most {current_app.config['MAX_EPOCHS']} are read",
            field="metrics",
        )
    facts = conversation.facts.copy()
    facts.update(evidence.facts)
    declined = set(conversation.declined)
    answered = {fact.key for fact in evidence.facts}
    if set(inputs) == {"text"} and not answered.intersection(conversation.asked):
        declined.update(conversation.asked)  # words alone that answer none of the questions: "I don't know"
    reply = compose(facts, declined=declined)
    user = {key: value for key, value in inputs.items() if key not in ("metrics", "sample")}
    if "sample" in inputs:
        user["sample_bytes"] = len(inputs["sample"])
    if evidence.history is not None:
        user["history"] = evidence.history
    return Turn(user, reply, facts, frozenset(declined))


def save(conversation: Conversation, turn: Turn) -> None:
    """Store the turn, its reply and the new state in one transaction; ``Conflict`` if another turn got in first."""
    stamp = db.now()
    state = {"facts": turn.facts.as_list(), "declined": sorted(turn.declined), "updated_at": stamp}
    rows = [
        {"conversation_id": conversation.id, "seq": conversation.last_seq + n, "role": role, "body": body,
         "created_at": stamp}
        for n, role, body in ((1, "user", turn.user), (2, "assistant", turn.reply))
    ]
    try:
        with db.get_engine().begin() as connection:
            if conversation.last_seq == 0:
                connection.execute(insert(db.conversations).values(
                    id=conversation.id, owner=conversation.owner, title=conversation.title, created_at=stamp,
                    **state))
            else:
                connection.execute(update(db.conversations).where(db.conversations.c.id == conversation.id)
                                   .values(**state))
            connection.execute(insert(db.turns).values(rows))  # one statement: a conflict aborts it cleanly
    except IntegrityError as exc:  # the (conversation_id, seq) key: those numbers were taken meanwhile
        raise Conflict(f"conversation {conversation.id} changed while this turn was answered; send it again") from exc


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
    for _ in range(ATTEMPTS):
        conversation = load(conversation_id, owner)
        if conversation is None:
            return None
        turn = answer(conversation, inputs)
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
    return Conversation(row.id, row.owner, row.title, Facts.from_list(row.facts), frozenset(row.declined), asked,
                        last.seq)


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
