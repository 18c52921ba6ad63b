"""Fixtures: an app on a fresh database, once on SQLite and once on PostgreSQL; the marks of the test lanes.

PostgreSQL tests carry the ``postgres`` and ``services`` marks: ``pytest -m "not postgres"`` runs
without a server. ``ASSISTANT_TEST_POSTGRES_URL`` points them at another server than the local one.
The marks are registered, with their meaning, in pyproject.toml. Tests that ask for a fixture of
``FIXTURE_MARKS`` get its marks here; the fast lane (``-m "not tf and not browser and not services
and not load"``, README.md) fails if TensorFlow was imported all the same.
"""
from __future__ import annotations

import os
import sys
import uuid

import pytest
from sqlalchemy import create_engine, func, select, text

from assistant import db
from tests.helpers import app_factory, serving

POSTGRES_URL = os.environ.get("ASSISTANT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


#: Fixtures that make every test asking for them (directly or through another fixture) need more.
FIXTURE_MARKS = {
    "redis_url": ("services",),  # the Redis server
    "run_app": ("tf",),  # tests/repro: reproduction runs that train in worker processes
    "followed": ("tf",),  # tests/channels/test_runs.py: a run started over the API, trained to the end
}
#: Top-level modules a test outside the ``tf`` lane must never import.
HEAVY = ("tensorflow", "keras")


@pytest.hookimpl(tryfirst=True)  # before -m deselects by mark
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for fixture in sorted(set(getattr(item, "fixturenames", ())) & FIXTURE_MARKS.keys()):
            for mark in FIXTURE_MARKS[fixture]:
                item.add_marker(mark)


def _heavy_loaded() -> list[str]:
    return [name for name in HEAVY if name in sys.modules]


#: What of HEAVY was loaded once collection ended: a test module that imports it at the top.
_LOADED_AT_COLLECTION = pytest.StashKey[list]()


def pytest_collection_finish(session: pytest.Session) -> None:
    session.config.stash[_LOADED_AT_COLLECTION] = _heavy_loaded()


#: The share of each fuzzer's inputs (tests/evidence/test_fuzz.py, tests/channels/test_openapi_fuzz.py)
#: that a run leaving out the tf tests, such as the fast lane, tries; every other run, and any run
#: with ``CI`` set, tries all of them.
QUICK_FUZZ_SHARE = 0.1
_LEAVES_OUT_TF = pytest.StashKey[bool]()


def pytest_deselected(items: list[pytest.Item]) -> None:
    if any(item.get_closest_marker("tf") for item in items):
        items[0].config.stash[_LEAVES_OUT_TF] = True


@pytest.fixture(scope="session")
def fuzz_share(pytestconfig: pytest.Config) -> float:
    """How much of its full budget of generated inputs a fuzzer runs: 1, or QUICK_FUZZ_SHARE in the fast lane."""
    if os.environ.get("CI") or not pytestconfig.stash.get(_LEAVES_OUT_TF, False):
        return 1.0
    return QUICK_FUZZ_SHARE


@pytest.fixture(autouse=True)
def _tf_only_where_marked(request: pytest.FixtureRequest):
    """A test without the ``tf`` mark that imports TensorFlow or Keras fails, naming itself."""
    before = _heavy_loaded()
    yield
    imported = [name for name in _heavy_loaded() if name not in before]
    if imported and request.node.get_closest_marker("tf") is None:
        pytest.fail(f"imported {', '.join(imported)} without the tf mark: mark it tf (pyproject.toml's markers)",
                    pytrace=False)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """With no ``tf`` test selected (the fast lane), nothing may have imported TensorFlow, collection included."""
    if any(item.get_closest_marker("tf") for item in session.items) or not session.items:
        return
    loaded = _heavy_loaded()
    if not loaded:
        return
    at_collection = session.config.stash.get(_LOADED_AT_COLLECTION, [])
    where = ("while collecting: a test module imports it at the top (use tests.helpers.lazy_module)"
             if at_collection else "during the run")
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    message = f"no tf test was selected, yet {', '.join(loaded)} was imported {where}"
    if reporter is not None:
        reporter.ensure_newline()
        reporter.write_line(f"ERROR: {message}", red=True, bold=True)
    else:
        print(f"ERROR: {message}", file=sys.stderr)
    if session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings in the developer's shell must not leak into the app under test.

    Apps do not sweep for lost runs in a thread of their own unless a test asks (``REPRO_SWEEP=True``):
    a sweep thread outlives its test and logs, every few seconds, that the test's database is gone.
    """
    for name in list(os.environ):
        if name.startswith("ASSISTANT_") and not name.startswith("ASSISTANT_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ASSISTANT_REPRO_SWEEP", "false")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.services])])
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


@pytest.fixture
def kb_copy(tmp_path) -> "Path":
    """A scratch copy of the knowledge base (knowledge/) to break on purpose."""
    import shutil
    from pathlib import Path

    from assistant.kb import DEFAULT_DIR

    return Path(shutil.copytree(DEFAULT_DIR, tmp_path / "knowledge"))
