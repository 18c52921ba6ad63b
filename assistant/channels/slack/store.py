"""What the Slack bot keeps across requests and restarts: each thread's conversation and who asked in it,
what it answered, and the verdicts of validation runs it still owes a thread."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from ... import db

#: How long a delivery is remembered; Slack retries an event within minutes.
DELIVERY_MEMORY = timedelta(hours=1)
#: How long a direct-message conversation is continued by a top-level message. Not longer than deliveries
#: are remembered, since a "start over" is remembered as one.
RECENT = DELIVERY_MEMORY


class Thread(NamedTuple):
    """A Slack thread: its workspace, its channel and the timestamp of its first message."""

    team: str
    channel: str
    ts: str


class Link(NamedTuple):
    """The conversation a thread holds, and the user who asked there (None in threads from before it was kept)."""

    conversation_id: str
    asker: str | None


def link_of(thread: Thread) -> Link | None:
    """What the thread holds, or None when it holds no conversation."""
    c = db.slack_threads.c
    with db.get_engine().connect() as connection:
        row = connection.execute(
            select(c.conversation_id, c.asker).where(c.team_id == thread.team, c.channel_id == thread.channel,
                                                     c.thread_ts == thread.ts)
        ).first()
    return None if row is None else Link(row.conversation_id, row.asker)


def conversation_in(thread: Thread) -> str | None:
    """The id of the conversation the thread holds, or None when it holds none."""
    found = link_of(thread)
    return None if found is None else found.conversation_id


def link(thread: Thread, conversation_id: str, asker: str | None) -> None:
    """Make the asker's later messages in the thread (and others' that mention the bot) turns of the conversation."""
    with db.get_engine().begin() as connection:
        connection.execute(insert(db.slack_threads).values(
            team_id=thread.team, channel_id=thread.channel, thread_ts=thread.ts,
            conversation_id=conversation_id, created_at=db.now(), asker=asker))


def latest_in_channel(team: str, channel: str) -> Link | None:
    """The conversation of the channel's newest thread, if it had a turn within ``RECENT`` and no
    ``start_over`` came after that turn: what a top-level direct message continues."""
    t, c = db.slack_threads.c, db.conversations.c
    with db.get_engine().connect() as connection:
        row = connection.execute(
            select(t.conversation_id, t.asker, c.updated_at).join(db.conversations, c.id == t.conversation_id)
            .where(t.team_id == team, t.channel_id == channel).order_by(t.created_at.desc()).limit(1)
        ).first()
        if row is None or row.updated_at < db.now() - RECENT:
            return None
        d = db.slack_deliveries.c
        reset = connection.execute(select(d.key).where(d.key.startswith(_fresh(team, channel)),
                                                       d.received_at > row.updated_at).limit(1)).first()
    return None if reset is not None else Link(row.conversation_id, row.asker)


def start_over(team: str, channel: str, ts: str) -> None:
    """The next top-level message in the channel starts a new conversation (kept as long as deliveries are)."""
    first_delivery(f"{_fresh(team, channel)}{ts}")


def _fresh(team: str, channel: str) -> str:
    return f"fresh:{team}:{channel}:"


def feedback_given(conversation_id: str) -> dict[str, str]:
    """The latest verdict stored on each cause's fix in the conversation: a tap that says it again records
    nothing, and a later reply shows it instead of asking again."""
    f = db.feedback.c
    with db.get_engine().connect() as connection:
        rows = connection.execute(select(f.cause_id, f.verdict).where(f.conversation_id == conversation_id)
                                  .order_by(f.id)).all()
    return {row.cause_id: row.verdict for row in rows}


def first_delivery(key: str) -> bool:
    """Record a delivery; False when the same key was recorded before, so it is not answered again.

    The primary key decides, so two web workers that receive the same retry cannot both win.
    """
    try:
        with db.get_engine().begin() as connection:
            connection.execute(insert(db.slack_deliveries).values(key=key[:200], received_at=db.now()))
    except IntegrityError:
        return False
    return True


def forget_old_deliveries() -> None:
    """Drop the deliveries older than Slack retries; the bot's sweep does it, off the path of each event."""
    table = db.slack_deliveries
    with db.get_engine().begin() as connection:
        connection.execute(delete(table).where(table.c.received_at < db.now() - DELIVERY_MEMORY))


class Report(NamedTuple):
    """A validation run whose verdict is owed to the thread it was started from: in place of the message
    ``message_ts`` that shows its progress, or as a new message when there is none."""

    run_id: str
    conversation_id: str
    owner: str
    thread: Thread
    created_at: datetime
    message_ts: str | None


def owe_report(thread: Thread, conversation_id: str, owner: str, run_id: str, *, holder: str,
               lease: timedelta, message_ts: str | None) -> Report:
    """Record that the run's verdict goes to ``thread`` (into ``message_ts``), held by ``holder`` for ``lease``.

    The message is kept with the report so that a process taking it over updates that message too.
    """
    stamp = db.now()
    with db.get_engine().begin() as connection:
        connection.execute(insert(db.slack_run_reports).values(
            run_id=run_id, conversation_id=conversation_id, owner=owner, team_id=thread.team,
            channel_id=thread.channel, thread_ts=thread.ts, created_at=stamp, holder=holder,
            leased_until=stamp + lease, message_ts=message_ts))
    return Report(run_id, conversation_id, owner, thread, stamp, message_ts)


def renew(run_id: str, *, holder: str, lease: timedelta) -> bool:
    """Extend ``holder``'s lease on a report; False when it no longer holds it."""
    c = db.slack_run_reports.c
    with db.get_engine().begin() as connection:
        return connection.execute(update(db.slack_run_reports).where(c.run_id == run_id, c.holder == holder)
                                  .values(leased_until=db.now() + lease)).rowcount == 1


def take_over_lapsed(*, holder: str, lease: timedelta) -> list[Report]:
    """Every report whose lease ran out (its watcher's process stopped), now held by ``holder``.

    One conditional update claims them all, so of several processes sweeping at once one gets each.
    """
    c = db.slack_run_reports.c
    stamp = db.now()
    with db.get_engine().begin() as connection:
        connection.execute(update(db.slack_run_reports).where(c.leased_until < stamp)
                           .values(holder=holder, leased_until=stamp + lease))
        rows = connection.execute(select(db.slack_run_reports).where(c.holder == holder)).mappings().all()
    return [Report(row["run_id"], row["conversation_id"], row["owner"],
                   Thread(row["team_id"], row["channel_id"], row["thread_ts"]), row["created_at"], row["message_ts"])
            for row in rows]


def settle(run_id: str, *, holder: str) -> None:
    """The verdict was posted (or could not be): the report is owed no more."""
    c = db.slack_run_reports.c
    with db.get_engine().begin() as connection:
        connection.execute(delete(db.slack_run_reports).where(c.run_id == run_id, c.holder == holder))
