"""Assertions and servers shared by the test modules."""
from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from werkzeug.serving import make_server
from werkzeug.test import TestResponse


def assert_error(response: TestResponse, status: int, code: str) -> str:
    """The response is the JSON error shape with this status and code; returns its message."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return body["error"]["message"]


@contextmanager
def serving(app) -> Iterator[str]:
    """Serve a WSGI app on a free loopback port while the block runs; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()


class ParkedRuns:
    """A reproduction backend that leaves runs queued: the API plans and stores them, and nothing trains."""

    name = "local"

    def submit(self, run_id: str) -> None:
        pass


def park_runs(app):
    """Swap the app's reproduction backend for :class:`ParkedRuns`; returns the app."""
    from assistant import repro

    app.extensions[repro.EXTENSION].backend = ParkedRuns()
    return app


def redis_url() -> str | None:
    """The test Redis (``ASSISTANT_TEST_REDIS_URL``, else database 15 on the local server), or None where none answers.

    CI starts one, so there a missing Redis fails the test instead of skipping it.
    """
    import pytest
    import redis

    url = os.environ.get("ASSISTANT_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError:
        if os.environ.get("CI"):
            pytest.fail(f"no Redis at {url}")
        return None
    return url


@contextmanager
def app_factory(**defaults):
    """Build test apps with these settings, disposing their database engines afterwards."""
    from assistant import create_app, db

    apps = []

    def make(**config):
        app = create_app({"TESTING": True, **defaults, **config})
        apps.append(app)
        return app

    try:
        yield make
    finally:
        for app in apps:
            with app.app_context():
                db.get_engine().dispose()
