"""The database: one SQLAlchemy engine per app, and the tables conversations live in."""
from __future__ import annotations

import json
import math
import threading
from datetime import datetime, timezone
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from sqlalchemy import (
    JSON,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    text,
)
from sqlalchemy.engine import Engine
from sqlalchemy.schema import CreateIndex, CreateTable
from sqlalchemy.types import TypeDecorator

_EXTENSION = "assistant.db"
#: The PostgreSQL advisory lock that table creation holds: any number every worker agrees on.
_INIT_LOCK = 0x4B455241  # "KERA"


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend, although SQLite stores no offset."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value


class PlainText(TypeDecorator[str]):
    """Text without NUL characters, which PostgreSQL's text type refuses and no person means to send."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else value.replace("\x00", "")


metadata = MetaData()

conversations = Table(
    "conversations",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("owner", String(64)),
    Column("title", PlainText, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("facts", JSON, nullable=False),
    Column("declined", JSON, nullable=False),
    Index("ix_conversations_owner_updated", "owner", "updated_at"),
)

turns = Table(
    "turns",
    metadata,
    Column("conversation_id", ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True),
    # Part of the primary key: two writers that both take the next number cannot both succeed.
    Column("seq", Integer, primary_key=True),
    Column("role", String(16), CheckConstraint("role IN ('user', 'assistant')"), nullable=False),
    Column("body", JSON, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

feedback = Table(
    "feedback",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("conversation_id", ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("cause_id", String(100), nullable=False),
    Column("verdict", String(16), CheckConstraint("verdict IN ('fixed', 'not_helpful')"), nullable=False),
    Column("comment", PlainText),
    Column("created_at", UtcDateTime, nullable=False),
)

# The epochs of a live training run, as Keras logged them (its 0-based ``epoch`` included): each
# new one is diagnosed together with those before it.
live_epochs = Table(
    "live_epochs",
    metadata,
    Column("conversation_id", ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True),
    Column("epoch", Integer, primary_key=True),
    Column("logs", JSON, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

# A Slack thread is one conversation: every message in it is the next turn.
slack_threads = Table(
    "slack_threads",
    metadata,
    Column("team_id", String(32), primary_key=True),
    Column("channel_id", String(32), primary_key=True),
    Column("thread_ts", String(32), primary_key=True),
    Column("conversation_id", ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

# What Slack delivered already, by event id or message: it retries unacknowledged events and
# sends one message as both app_mention and message; each is answered once.
slack_deliveries = Table(
    "slack_deliveries",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("received_at", UtcDateTime, nullable=False, index=True),
)


# A reproduction run: short training experiments that test a conversation's leading causes.
# Workers on any machine report here, so any web process can answer for any run.
reproductions = Table(
    "reproductions",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("conversation_id", ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("owner", String(64)),
    Column("status", String(16),
           CheckConstraint("status IN ('queued', 'running', 'done', 'failed', 'cancelled')"), nullable=False),
    Column("backend", String(16), nullable=False),
    Column("plan", JSON, nullable=False),
    Column("progress", JSON, nullable=False),
    Column("result", JSON),
    Column("error", PlainText),
    Column("plot", LargeBinary),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("started_at", UtcDateTime),
    Column("finished_at", UtcDateTime),
)


def now() -> datetime:
    """The timestamp every stored row carries."""
    return datetime.now(timezone.utc)


def _json_safe(value: Any) -> Any:
    """Spell non-finite floats as the strings the contract treats as equal, because PostgreSQL's JSON refuses NaN."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    return value


def _dumps(value: Any) -> str:
    """JSON without NaN literals; the walk that respells them runs only for values that hold one."""
    try:
        return json.dumps(value, allow_nan=False)
    except ValueError:
        return json.dumps(_json_safe(value), allow_nan=False)


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets readers run beside the writer; the busy timeout makes writers queue instead of failing."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _one_writer_per_process(engine: Engine) -> None:
    """Let a process's threads take SQLite's write lock one at a time, each from its first write to its commit.

    SQLite's busy handler polls, and a waiter that sleeps between polls can lose the lock to
    newcomers for longer than the busy timeout: with several gunicorn workers of eight threads
    each, some writes failed after 30 s under load. Queued here, a process has one waiter.
    Reentrant, so a thread that writes on a second connection meets SQLite's timeout, not a hang.
    """
    lock = threading.RLock()

    def take(connection: Any, cursor: Any, statement: str, *_: Any) -> None:
        if "writing" not in connection.info and statement.lstrip()[:6].upper() in ("INSERT", "UPDATE", "DELETE"):
            lock.acquire()
            connection.info["writing"] = True

    def release(connection: Any) -> None:
        if connection.info.pop("writing", False):
            lock.release()

    event.listen(engine, "before_cursor_execute", take)
    event.listen(engine, "commit", release)
    event.listen(engine, "rollback", release)


def _make_engine(url: str) -> Engine:
    """An engine for ``url`` that stores JSON every backend accepts."""
    engine = create_engine(url, json_serializer=_dumps)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _configure_sqlite)
        _one_writer_per_process(engine)
    return engine


def get_engine() -> Engine:
    """The current app's engine."""
    return current_app.extensions[_EXTENSION]


def init_db() -> None:
    """Create the tables that do not exist yet, once, even when several workers start together; data is kept."""
    with get_engine().begin() as connection:
        if connection.dialect.name == "postgresql":  # its IF NOT EXISTS can still race; queue the workers instead
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _INIT_LOCK})
        for table in metadata.sorted_tables:
            connection.execute(CreateTable(table, if_not_exists=True))
            for index in table.indexes:
                connection.execute(CreateIndex(index, if_not_exists=True))


@click.command("init-db")
@with_appcontext
def init_db_command() -> None:
    """Create the database tables that do not exist yet."""
    init_db()
    click.echo(f"Initialized the database at {get_engine().url.render_as_string(hide_password=True)}.")


def init_app(app: Flask) -> None:
    """Give the app its engine and tables, and the ``init-db`` command."""
    app.extensions[_EXTENSION] = _make_engine(app.config["DATABASE_URL"])
    with app.app_context():
        init_db()
    app.cli.add_command(init_db_command)
