"""The migrations in assistant/migrations: they build exactly the tables in assistant/db.py.

A change to db.py's tables without a migration fails here.
"""
import shutil

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from click.testing import CliRunner
from sqlalchemy import Column, ForeignKey, Integer, MetaData, Table, create_engine, inspect

from assistant import db, migrations
from assistant.cli import main


def schema_differences(engine, metadata: MetaData) -> list:
    with engine.connect() as connection:
        return compare_metadata(MigrationContext.configure(connection), metadata)


def test_the_migrations_build_the_tables_in_db_py(app):
    with app.app_context():
        assert schema_differences(db.get_engine(), db.metadata) == []


def test_the_schema_revision_is_alembics_head():
    assert db.SCHEMA_REVISION == migrations.head()


def test_the_first_migration_can_be_undone(app):
    with app.app_context(), db.get_engine().begin() as connection:
        command.downgrade(migrations.config(connection), "base")
        assert inspect(connection).get_table_names() == ["alembic_version"]


@pytest.fixture
def scratch_migrations(tmp_path, monkeypatch):
    """A copy of the migrations folder to write new revisions into, instead of the package's own."""
    location = tmp_path / "migrations"
    shutil.copytree(migrations.LOCATION, location, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(migrations, "LOCATION", location)
    return location


def test_new_migration_writes_what_db_py_adds(scratch_migrations, tmp_path, monkeypatch):
    changed = MetaData()
    for table in db.metadata.sorted_tables:
        table.to_metadata(changed)
    Table("notes", changed, Column("id", Integer, primary_key=True),
          Column("conversation_id", ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False),
          Column("body", db.PlainText, nullable=False), Column("created_at", db.UtcDateTime, nullable=False))
    monkeypatch.setattr(db, "metadata", changed)
    url = f"sqlite:///{tmp_path / 'dev.sqlite'}"
    monkeypatch.setenv("ASSISTANT_DATABASE_URL", url)

    result = CliRunner().invoke(main, ["new-migration", "add notes"])
    assert result.exit_code == 0, result.output
    following = f"{int(db.SCHEMA_REVISION) + 1:04d}"
    assert f'SCHEMA_REVISION = "{following}"' in result.output
    written = (scratch_migrations / "versions" / f"{following}_add_notes.py").read_text()
    assert "op.create_table('notes'" in written and f"down_revision = '{db.SCHEMA_REVISION}'" in written
    assert "assistant" not in written  # the app's column types are written as the types they store

    engine = create_engine(url)
    with engine.begin() as connection:
        command.upgrade(migrations.config(connection), "head")
    assert schema_differences(engine, changed) == []
    engine.dispose()
