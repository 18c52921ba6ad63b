"""The database: one SQLAlchemy engine per app, and the tables conversations live in."""
from __future__ import annotations

import json
import math
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

import click
from flask import Flask, current_app, request
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
    inspect,
    select,
    text,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.types import TypeDecorator

_EXTENSION = "assistant.db"
#: Where the app's start left the schema when it had to migrate it, for ``init-db`` to report.
_STARTED_AT = "assistant.db.started_at"
#: Set while the database has not been reached since the app started (see ``_Unreached``).
_UNREACHED = "assistant.db.unreached"
#: Seconds between attempts to reach a database that was unreachable at the start.
RETRY_SECONDS = 2.0
#: The PostgreSQL advisory lock that migrating holds: any number every worker agrees on.
_INIT_LOCK = 0x4B455241  # "KERA"
#: The newest migration in assistant/migrations/versions. The app's start compares the database
#: with it in plain SQL, so a current database costs no Alembic import; a test keeps it Alembic's head.
SCHEMA_REVISION = "0005"


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
    # The Slack user who asked: their replies in the thread are turns; anyone else's need a mention.
    Column("asker", String(32)),
)

# A validation run started from Slack whose verdict is still to be posted in its thread. The web
# process watching it holds a lease it renews; when the lease runs out (the process stopped),
# another process takes the report over, so a restart never loses the post.
slack_run_reports = Table(
    "slack_run_reports",
    metadata,
    Column("run_id", String(40), primary_key=True),
    Column("conversation_id", ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False),
    Column("owner", String(64), nullable=False),
    Column("team_id", String(32), nullable=False),
    Column("channel_id", String(32), nullable=False),
    Column("thread_ts", String(32), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    # Which watcher holds the report, and until when.
    Column("holder", String(40), nullable=False),
    Column("leased_until", UtcDateTime, nullable=False, index=True),
    # The message that shows the run's progress and becomes its verdict, whichever process posts it.
    Column("message_ts", String(32)),
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
    # Who holds an active run, and until when: the worker training it, which renews the lease while it
    # lives, or the process that queued it until the task is sent (or, for the local pool, while it waits
    # there). A lapsed lease means the holder stopped: the sweep (repro/sweep.py) queues the run again or fails it.
    Column("worker", String(64)),
    Column("leased_until", UtcDateTime),
    # How many times a worker has started the run; a bounded number, then it fails.
    Column("attempts", Integer, nullable=False, server_default="0"),
    Index("ix_reproductions_status_leased_until", "status", "leased_until"),
)


def stored_feedback(connection: Connection) -> list[Any]:
    """Every feedback report with its conversation's title and facts, oldest first: what ``kb fit`` learns from."""
    f, c = feedback.c, conversations.c
    return connection.execute(
        select(f.conversation_id, f.cause_id, f.verdict, f.comment, f.created_at, c.title, c.facts)
        .join(conversations, c.id == f.conversation_id).order_by(f.id)
    ).all()


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


#: Seconds a SQLite connection waits for a lock another holds (the busy timeout, and the switch to WAL).
SQLITE_WAIT_SECONDS = 30


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets readers run beside the writer; the busy timeout makes writers queue instead of failing."""
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_WAIT_SECONDS * 1000}")
    _switch_to_wal(cursor)
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _switch_to_wal(cursor: Any) -> None:
    """Set WAL, trying again while another connection switches the file: SQLite answers "database is
    locked" to that at once, without its busy handler, as when gunicorn's workers start on a new file
    (one of them then answered 503 until its next try)."""
    deadline = time.monotonic() + SQLITE_WAIT_SECONDS
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _one_writer_per_process(engine: Engine) -> None:
    """Let a process's threads take SQLite's write lock one at a time, each from its first write until
    its connection goes back to the pool, after the commit or rollback.

    SQLite's busy handler polls, and a waiter that sleeps between polls can lose the lock to
    newcomers for longer than the busy timeout: with several gunicorn workers of eight threads
    each, some writes failed after 30 s under load. Queued here, a process has one waiter.
    Reentrant, so a thread that writes on a second connection meets SQLite's timeout, not a hang.
    Released at check-in rather than at the engine's ``commit`` event, which fires before the
    database commits: released there, the next thread would meet SQLite's lock still held and poll.
    """
    lock = threading.RLock()

    def take(connection: Any, cursor: Any, statement: str, *_: Any) -> None:
        if "writing" not in connection.info and statement.lstrip()[:6].upper() in ("INSERT", "UPDATE", "DELETE"):
            lock.acquire()
            connection.info["writing"] = True

    def release(dbapi_connection: Any, record: Any) -> None:
        if record is not None and record.info.pop("writing", False):
            lock.release()

    event.listen(engine, "before_cursor_execute", take)
    event.listen(engine.pool, "checkin", release)


def _read_only_is_stale(context: Any) -> None:
    """Drop every pooled connection when SQLite says the database is read-only.

    SQLite opens a file it cannot write read-only and keeps it so: pooled connections went on
    refusing writes for as long as they lived, after the file was writable again. Taken as a
    lost connection, they are replaced, and the next request opens the file afresh.
    """
    if "readonly database" in str(context.original_exception):
        context.is_disconnect = True


def _make_engine(url: str) -> Engine:
    """An engine for ``url`` that stores JSON every backend accepts, and outlives the database's outages."""
    engine = create_engine(url, json_serializer=_dumps, pool_pre_ping=not url.startswith("sqlite"))
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _configure_sqlite)
        event.listen(engine, "handle_error", _read_only_is_stale)
        _one_writer_per_process(engine)
    return engine


def get_engine() -> Engine:
    """The current app's engine."""
    return current_app.extensions[_EXTENSION]


def schema_revision(connection: Connection) -> str | None:
    """The revision the database is at, read without Alembic; None where no migration has run."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one_or_none()


@contextmanager
def _schema_lock(engine: Engine) -> Iterator[Connection]:
    """A transaction that one process at a time holds, so that workers starting together migrate once."""
    with engine.connect() as connection:
        if connection.dialect.name != "sqlite":
            with connection.begin():
                if connection.dialect.name == "postgresql":
                    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _INIT_LOCK})
                yield connection
            return
        # Batch migrations copy a table and drop the old one, which with foreign keys on would delete
        # the rows that refer to it. SQLite changes the setting only outside a transaction.
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")  # SQLite's write lock, now rather than at the first write
            yield connection
            connection.commit()
        finally:
            connection.rollback()
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")


def upgrade_db() -> str:
    """Migrate the schema to the newest revision, creating it in an empty database; data is kept.

    Returns where it started: a revision, ``"empty"``, or ``"unversioned"`` for tables that
    ``init-db`` made before migrations existed (the first migration adds only what they lack).
    """
    with _schema_lock(get_engine()) as connection:
        found = schema_revision(connection)
        if found == SCHEMA_REVISION:
            return found
        from . import migrations  # Alembic and its templates: loaded only when there is work

        started = found or ("unversioned" if inspect(connection).has_table("conversations") else "empty")
        migrations.upgrade(connection)
        return started


@click.command("init-db")
@with_appcontext
def init_db_command() -> None:
    """Create the schema, or migrate it to this release's revision; data is kept."""
    found = upgrade_db()
    found = current_app.extensions.pop(_STARTED_AT, found)  # the app's start may have migrated already
    url = get_engine().url.render_as_string(hide_password=True)
    if found == SCHEMA_REVISION:
        click.echo(f"Database at {url} is at revision {SCHEMA_REVISION} (head); nothing to do.")
        return
    start = {"empty": "an empty database", "unversioned": "tables made before migrations"}.get(found)
    click.echo(f"Database at {url} upgraded from {start or f'revision {found}'} to revision {SCHEMA_REVISION} (head).")


@click.command("new-migration")
@click.argument("message")
@with_appcontext
def new_migration_command(message: str) -> None:
    """Write the migration from the database's schema to the tables in assistant/db.py (review it)."""
    from . import migrations

    with get_engine().connect() as connection:
        script = migrations.new_revision(connection, message)
    click.echo(f"Wrote {script.path}. Review it, then set SCHEMA_REVISION = \"{script.revision}\" in assistant/db.py.")


def _bring_up(app: Flask) -> None:
    """Check the schema's revision, and migrate an empty or older one; OperationalError while unreachable."""
    with app.app_context():
        with get_engine().connect() as connection:
            current = schema_revision(connection) == SCHEMA_REVISION
        if not current:
            app.extensions[_STARTED_AT] = upgrade_db()


class _Unreached:
    """A database the app could not reach at its start: brought up by the first request after it answers.

    Tried at most every ``RETRY_SECONDS``, so that requests during an outage fail at once instead
    of each waiting on a connection attempt.
    """

    def __init__(self, failure: OperationalError) -> None:
        self.lock = threading.Lock()
        self.failure, self.failed_at = failure, time.monotonic()

    def bring_up(self, app: Flask) -> None:
        with self.lock:
            if _UNREACHED not in app.extensions:
                return
            if time.monotonic() - self.failed_at < RETRY_SECONDS:
                raise self.failure
            try:
                _bring_up(app)
            except OperationalError as failure:
                self.failure, self.failed_at = failure, time.monotonic()
                raise
            del app.extensions[_UNREACHED]
            app.logger.info("the database answers again; the schema is at revision %s", SCHEMA_REVISION)


def ensure_reached() -> None:
    """Raise OperationalError (answered 503) while a database that was unreachable at start still is."""
    unreached = current_app.extensions.get(_UNREACHED)
    if unreached is not None:
        unreached.bring_up(current_app._get_current_object())


def init_app(app: Flask) -> None:
    """Give the app its engine and the database commands, and bring an empty or older schema up to date.

    So the embedded default needs no setup step: a fresh SQLite file gets its tables here. A web
    worker on a current database pays one query for this, and never imports Alembic. A database
    that cannot be reached does not stop the start: the app answers 503 (and ``/readyz`` says
    not ready) until it can, rather than the workers exiting and gunicorn with them.
    """
    app.extensions[_EXTENSION] = _make_engine(app.config["DATABASE_URL"])
    try:
        _bring_up(app)
    except OperationalError as failure:
        app.logger.warning("the database cannot be reached; answering 503 until it can", exc_info=True)
        app.extensions[_UNREACHED] = _Unreached(failure)
    app.before_request(_reached)
    app.cli.add_command(init_db_command)
    app.cli.add_command(new_migration_command)


def _reached() -> None:
    if request.blueprint != "ops":  # the probes say for themselves
        ensure_reached()
