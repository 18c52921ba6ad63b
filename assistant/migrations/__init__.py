"""Alembic, driven from the app: the schema's migrations are the files in ``versions/``.

Configured here rather than in an alembic.ini, so an installed package needs nothing from the
checkout. Imported only when a database is behind or a migration is being written: a web worker
on a current database never loads Alembic (see :func:`assistant.db.upgrade_db`).
"""
from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import Script, ScriptDirectory
from sqlalchemy.engine import Connection

#: env.py, the template for new revisions, and versions/.
LOCATION = Path(__file__).parent


def config(connection: Connection | None = None) -> Config:
    """Alembic's settings without an alembic.ini: env.py runs the migrations on ``connection``."""
    settings = Config()
    settings.set_main_option("script_location", str(LOCATION))
    settings.attributes["connection"] = connection
    return settings


def head() -> str | None:
    """The newest revision in versions/, as Alembic computes it."""
    return ScriptDirectory.from_config(config()).get_current_head()


def upgrade(connection: Connection) -> None:
    """Run the migrations the database lacks, inside the caller's transaction."""
    command.upgrade(config(connection), "head")


def new_revision(connection: Connection, message: str) -> Script:
    """Write the migration from the database, which must be at head, to the tables in assistant/db.py.

    Revisions are numbered 0001, 0002, ... so their order shows in the file names.
    """
    number = int(head() or 0) + 1
    script = command.revision(config(connection), message, autogenerate=True, rev_id=f"{number:04d}")
    assert isinstance(script, Script)  # one revision, on one branch
    return script
