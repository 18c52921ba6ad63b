"""Fixtures: an app on a fresh database, once on SQLite and once on PostgreSQL.

PostgreSQL tests carry the ``postgres`` mark: ``pytest -m "not postgres"`` runs without a
server. ``ASSISTANT_TEST_POSTGRES_URL`` points them at another server than the local one.
"""
from __future__ import annotations

import os
import uuid

import pytest
from sqlalchemy import create_engine, func, select, text

from assistant import db
from tests.helpers import app_factory, serving

POSTGRES_URL = os.environ.get("ASSISTANT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "postgres: needs the PostgreSQL server at ASSISTANT_TEST_POSTGRES_URL")
    config.addinivalue_line("markers", "load: the load test under gunicorn (minutes; CI runs it as a step of its own)")


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings in the developer's shell must not leak into the app under test."""
    for name in list(os.environ):
        if name.startswith("ASSISTANT_") and not name.startswith("ASSISTANT_TEST_"):
            monkeypatch.delenv(name)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path):
    """A URL for an empty database: a SQLite file, or a schema of its own on the PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'assistant.sqlite'}"
        return
    schema = f"test_{uuid.uuid4().hex}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def make_app(database_url):
    """Build apps on the test database (several of them, to check what survives a restart)."""
    with app_factory(DATABASE_URL=database_url) as make:
        yield make


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def served(tmp_path):
    """A fresh app on SQLite served on a loopback port while the test runs: (the app, its base URL)."""
    with app_factory(DATABASE_URL=f"sqlite:///{tmp_path / 'live.sqlite'}") as make:
        app = make()
        with serving(app) as url:
            yield app, url


@pytest.fixture
def redis_url() -> str:
    """The test Redis (``ASSISTANT_TEST_REDIS_URL``, else database 15 on the local server); skips where none answers.

    CI starts one, so there a missing Redis fails the test instead of skipping it.
    """
    import redis  # from celery[redis], an extra: imported only by the tests that ask for Redis

    url = os.environ.get("ASSISTANT_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError:
        if os.environ.get("CI"):
            pytest.fail(f"no Redis at {url}")
        pytest.skip(f"no Redis at ASSISTANT_TEST_REDIS_URL ({url})")
    return url


@pytest.fixture
def row_counts(app):
    """How many rows each table holds, to show that a refused request stored nothing."""

    def count() -> dict[str, int]:
        with app.app_context(), db.get_engine().connect() as connection:
            return {t.name: connection.execute(select(func.count()).select_from(t)).scalar_one()
                    for t in db.metadata.sorted_tables}

    return count
