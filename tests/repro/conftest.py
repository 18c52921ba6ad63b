"""Apps whose reproduction runs train for real, on a SQLite file (each run costs a TensorFlow start)."""
from __future__ import annotations

import pytest

from tests.helpers import app_factory


@pytest.fixture
def run_app(tmp_path):
    """Build an app with real reproduction workers; settings override the test defaults."""
    with app_factory(DATABASE_URL=f"sqlite:///{tmp_path / 'runs.sqlite'}", REPRO_BACKEND="local") as make:
        yield make
