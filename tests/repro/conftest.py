"""Apps whose reproduction runs train for real, on a SQLite file (each run costs a TensorFlow start)."""
from __future__ import annotations

import pytest

from assistant import create_app, db


@pytest.fixture
def run_app(tmp_path):
    """Build an app with real reproduction workers; settings override the test defaults."""
    apps = []

    def make(**config):
        app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'runs.sqlite'}",
                          "REPRO_BACKEND": "local", **config})
        apps.append(app)
        return app

    yield make
    for app in apps:
        with app.app_context():
            db.get_engine().dispose()
