"""The schema as the app's start and ``init-db`` keep it: created, adopted or migrated, never twice."""
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from alembic import command
from click.testing import CliRunner
from sqlalchemy import create_engine, inspect, text

from assistant import db, migrations
from assistant.cli import main
from tests.helpers import app_factory

ROOT = Path(__file__).resolve().parent.parent
START = "import sys; from assistant import create_app; create_app({'DATABASE_URL': sys.argv[1]})"


def versions(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(text("SELECT version_num FROM alembic_version")).scalars())
    finally:
        engine.dispose()


@pytest.mark.services  # six web-worker processes booting at once, as gunicorn starts them
def test_workers_starting_together_on_an_empty_database_migrate_it_once(database_url):
    workers = [subprocess.Popen([sys.executable, "-c", START, database_url], cwd=ROOT, stderr=subprocess.PIPE, text=True)
               for _ in range(6)]
    for worker in workers:
        _, errors = worker.communicate(timeout=120)
        assert worker.returncode == 0, errors
    assert versions(database_url) == [db.SCHEMA_REVISION]


def test_init_db_reports_what_it_did_and_twice_is_a_no_op(client, runner):
    started = client.post("/api/v1/conversations", json={"symptom": "loss is flat"})
    assert started.status_code == 201
    first, second = runner.invoke(args=["init-db"]), runner.invoke(args=["init-db"])
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    # The app's start migrated the empty database; init-db reports that, then finds nothing to do.
    assert f"upgraded from an empty database to revision {db.SCHEMA_REVISION} (head)" in first.output
    assert f"is at revision {db.SCHEMA_REVISION} (head); nothing to do" in second.output
    assert client.get(f"/api/v1/conversations/{started.json['id']}").status_code == 200


def test_a_database_from_before_migrations_is_adopted_with_its_data(database_url, monkeypatch):
    """What the old init-db made: the first revision's tables without alembic_version, perhaps fewer of them."""
    engine = create_engine(database_url)
    with engine.begin() as connection:
        command.upgrade(migrations.config(connection), "0001")
        connection.execute(text("DROP TABLE alembic_version"))
        connection.execute(text("DROP TABLE reproductions"))  # a release from before reproduction runs
        connection.execute(text(
            "INSERT INTO conversations (id, title, created_at, updated_at, facts, declined)"
            " VALUES ('c1', 'loss is flat', '2024-05-01 12:00:00+00', '2024-05-01 12:00:00+00', '{}', '[]')"))
    monkeypatch.setenv("ASSISTANT_DATABASE_URL", database_url)
    result = CliRunner().invoke(main, ["init-db"])
    assert result.exit_code == 0, result.output
    assert f"upgraded from tables made before migrations to revision {db.SCHEMA_REVISION} (head)" in result.output
    assert versions(database_url) == [db.SCHEMA_REVISION]
    with engine.connect() as connection:
        assert connection.execute(text("SELECT title FROM conversations")).scalars().all() == ["loss is flat"]
        assert inspect(connection).has_table("reproductions")
    engine.dispose()


def test_a_current_database_starts_without_importing_alembic(database_url):
    """Web workers stay light; on an empty database the same probe does see Alembic loaded."""
    probe = textwrap.dedent("""
        import sys
        from assistant import create_app
        create_app({"DATABASE_URL": sys.argv[1]})
        print("alembic" in sys.modules)
    """)

    def alembic_loaded() -> str:
        return subprocess.run([sys.executable, "-c", probe, database_url], cwd=ROOT, check=True, capture_output=True,
                              text=True, timeout=120).stdout.strip()

    assert alembic_loaded() == "True"  # it migrated the empty database
    assert alembic_loaded() == "False"


def test_foreign_keys_are_on_again_after_migrating_sqlite(tmp_path):
    """Migrations run with them off (batch operations copy tables); the pooled connection must not keep that."""
    with app_factory(DATABASE_URL=f"sqlite:///{tmp_path / 'fk.sqlite'}") as make:
        app = make()
        with app.app_context(), db.get_engine().connect() as connection:
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
