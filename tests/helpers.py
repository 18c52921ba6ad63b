"""Assertions and servers shared by the test modules."""
from __future__ import annotations

import importlib
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from werkzeug.serving import make_server
from werkzeug.test import TestResponse

if TYPE_CHECKING:
    from assistant.evidence.facts import Facts
    from assistant.kb import KnowledgeBase

ROOT = Path(__file__).resolve().parents[1]
#: The ``shared/`` folder (public evaluation cases, the contract): in the checkout, else beside it; None without one.
SHARED = next((path for path in (ROOT / "shared", ROOT.parent / "shared") if path.is_dir()), None)
#: The public evaluation cases, ``shared/cases``; None where they are not checked out.
CASES = SHARED / "cases" if SHARED is not None and (SHARED / "cases").is_dir() else None


class lazy_module:  # noqa: N801 - it stands in for a module
    """A module imported on first attribute access: ``keras = lazy_module("keras")``.

    A test module that needs TensorFlow uses it instead of ``import keras`` at the top, so that
    collecting the module, and deselecting it with ``-m "not tf"``, does not load TensorFlow.
    """

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str):
        if attribute.startswith("_"):  # pytest probing what a module-level name is, while collecting
            raise AttributeError(attribute)
        return getattr(importlib.import_module(self._name), attribute)


@cache
def shipped_kb() -> KnowledgeBase:
    """The knowledge base in knowledge/, checked as the app checks it at start."""
    from assistant.kb import DEFAULT_DIR
    from assistant.knowledge import load_checked

    return load_checked(DEFAULT_DIR)


def reply_for(facts: Facts, *, declined=()) -> dict:
    """The reply a conversation with these facts gets, made as every turn makes it."""
    from assistant.reasoning.engine import diagnose
    from assistant.reply import render

    return render(shipped_kb(), diagnose(shipped_kb(), facts, declined=declined))


def assert_error(response: TestResponse, status: int, code: str) -> str:
    """The response is the JSON error shape with this status and code; returns its message."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return body["error"]["message"]


def assert_fits(schema: str, body) -> None:
    """The body fits the named schema of the API's own OpenAPI document."""
    from assistant.channels.api import schema_validator

    errors = [error.message for error in schema_validator(schema).iter_errors(body)]
    assert not errors, errors


def facts_from(**inputs) -> Facts:
    """The facts of a new conversation after one turn with these inputs (``gather``'s keyword arguments)."""
    from assistant.evidence import gather
    from assistant.evidence.facts import Facts

    facts = Facts()
    facts.update(gather(shipped_kb(), **inputs).facts)
    return facts


@contextmanager
def serving(app) -> Iterator[str]:
    """Serve a WSGI app on a free loopback port while the block runs; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    # Polled often, so that shutting it down takes milliseconds, not the default half second.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()


@contextmanager
def refused_url() -> Iterator[str]:
    """An http URL on 127.0.0.1 whose port stays bound, and not listening, while the block runs: connecting is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


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


@contextmanager
def app_factory(**defaults):
    """Build test apps with these settings, disposing their database engines afterwards.

    They do not sweep for lost runs (a thread per app) unless a test asks, with ``REPRO_SWEEP=True``.
    """
    from assistant import create_app, db

    apps = []

    def make(**config):
        app = create_app({"TESTING": True, "REPRO_SWEEP": False, **defaults, **config})
        apps.append(app)
        return app

    try:
        yield make
    finally:
        for app in apps:
            with app.app_context():
                db.get_engine().dispose()


def knowledge_problems(directory: Path) -> list[str]:
    """What ``assistant kb check --directory`` reports for a knowledge base: its problems, one a line (exit code 1)."""
    from click.testing import CliRunner

    from assistant.knowledge import kb_command

    result = CliRunner().invoke(kb_command, ["check", "--directory", str(directory)])
    assert result.exit_code == 1, result.output
    return [line.removeprefix("Error: ") for line in result.output.splitlines()]


def line_named(directory: Path, problem: str) -> str:
    """The line of the knowledge file that a problem names ("causes/x.yaml:23: ..."), stripped."""
    file, line, _ = problem.split(":", 2)
    return (directory / file).read_text(encoding="utf-8").splitlines()[int(line) - 1].strip()
