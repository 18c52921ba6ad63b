"""The schema as the app's start and ``init-db`` keep it: created, adopted or migrated, never twice."""
import sqlite3
import subprocess
import sys
import threading
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
        assert "cannot be reached" not in errors  # none waits for a later request to find the database
    assert versions(database_url) == [db.SCHEMA_REVISION]


def test_connections_opening_a_new_sqlite_file_together_all_switch_it_to_wal(tmp_path):
    """SQLite refuses a concurrent switch to WAL at once ("database is locked"), busy timeout or not,
    between processes (gunicorn's workers) as between threads: four connections set up at once met
    that in about one round in ten before the switch was tried again."""
    for round_ in range(80):
        path, ready, answers = tmp_path / f"{round_}.sqlite", threading.Barrier(4), []

        def connect() -> None:
            connection = sqlite3.connect(path, check_same_thread=False)
            ready.wait()
            try:
                db._configure_sqlite(connection, None)  # what the engine does with each new connection
                answers.append(connection.execute("PRAGMA journal_mode").fetchone()[0])
            except sqlite3.OperationalError as error:
                answers.append(str(error))
            finally:
                connection.close()

        threads = [threading.Thread(target=connect) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert answers == ["wal"] * 4


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


# --- outages: 503 with Retry-After while the database cannot be reached or written, recovery without a restart

TURN = {"symptom": "loss is nan after epoch 3"}


def test_a_database_unreachable_at_start_answers_503_then_serves_once_it_is_there(tmp_path, monkeypatch):
    monkeypatch.setattr(db, "RETRY_SECONDS", 0.0)
    folder = tmp_path / "not-yet"
    with app_factory(DATABASE_URL=f"sqlite:///{folder / 'assistant.sqlite'}") as make:
        client = make().test_client()  # starts, rather than failing as the database cannot be opened
        refused = client.post("/api/v1/conversations", json=TURN)
        assert refused.status_code == 503 and refused.headers["Retry-After"] == "5"
        assert refused.get_json()["error"]["code"] == "database_unavailable"
        assert client.get("/healthz").status_code == 200 and client.get("/readyz").status_code == 503
        folder.mkdir()  # the database can be reached now: same process, no restart
        assert client.post("/api/v1/conversations", json=TURN).status_code == 201
        assert client.get("/readyz").get_json()["status"] == "ready"


@pytest.mark.postgres
@pytest.mark.services
def test_postgres_unreachable_at_start_is_not_ready_and_names_no_host():
    with app_factory(DATABASE_URL="postgresql+psycopg://nobody@127.0.0.1:1/secretdb") as make:
        client = make().test_client()
        assert client.get("/api/v1/conversations").status_code == 503
        response = client.get("/readyz")
        assert response.status_code == 503 and "127.0.0.1" not in response.get_data(as_text=True)


@pytest.mark.skipif(sys.platform != "linux", reason="chattr: an immutable file, which even root cannot write")
def test_a_sqlite_file_read_only_for_a_while_is_written_again_as_soon_as_it_can_be(tmp_path):
    path = tmp_path / "assistant.sqlite"
    with app_factory(DATABASE_URL=f"sqlite:///{path}") as make:
        app = make()
        client = app.test_client()
        assert client.post("/api/v1/conversations", json=TURN).status_code == 201
        with app.app_context():
            db.get_engine().dispose()  # the next connections open the file as it is now
        files = [str(file) for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm"))
                 if file.exists()]
        if subprocess.run(["chattr", "+i", *files], capture_output=True).returncode != 0:
            pytest.skip("chattr +i needs root (CAP_LINUX_IMMUTABLE) and a file system that has the flag")
        try:
            for _ in range(3):
                refused = client.post("/api/v1/conversations", json=TURN)
                assert refused.status_code == 503 and refused.headers["Retry-After"] == "5"
            assert client.get("/readyz").status_code == 503
        finally:
            subprocess.run(["chattr", "-i", *files], check=True)
        assert client.post("/api/v1/conversations", json=TURN).status_code == 201  # at once, no restart
        assert client.get("/readyz").status_code == 200
