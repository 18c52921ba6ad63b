"""What the Slack bot keeps across requests and restarts: each thread's conversation, and what it answered."""
from __future__ import annotations

from datetime import timedelta
from typing import NamedTuple

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError

from ... import db

#: How long a delivery is remembered; Slack retries an event within minutes.
DELIVERY_MEMORY = timedelta(hours=1)


class Thread(NamedTuple):
    """A Slack thread: its workspace, its channel and the timestamp of its first message."""

    team: str
    channel: str
    ts: str


def conversation_in(thread: Thread) -> str | None:
    """The id of the conversation the thread holds, or None when it holds none."""
    c = db.slack_threads.c
    with db.get_engine().connect() as connection:
        return connection.execute(
            select(c.conversation_id).where(c.team_id == thread.team, c.channel_id == thread.channel,
                                            c.thread_ts == thread.ts)
        ).scalar_one_or_none()


def link(thread: Thread, conversation_id: str) -> None:
    """Make every later message in the thread a turn of the conversation."""
    with db.get_engine().begin() as connection:
        connection.execute(insert(db.slack_threads).values(
            team_id=thread.team, channel_id=thread.channel, thread_ts=thread.ts,
            conversation_id=conversation_id, created_at=db.now()))


def first_delivery(key: str) -> bool:
    """Record a delivery; False when the same key was recorded before, so it is not answered again.

    The primary key decides, so two web workers that receive the same retry cannot both win.
    """
    stamp = db.now()
    table = db.slack_deliveries
    try:
        with db.get_engine().begin() as connection:
            connection.execute(delete(table).where(table.c.received_at < stamp - DELIVERY_MEMORY))
            connection.execute(insert(table).values(key=key[:200], received_at=stamp))
    except IntegrityError:
        return False
    return True
