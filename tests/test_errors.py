import logging

import pytest

from assistant.errors import ApiError
from assistant.evidence.facts import EvidenceError
from tests.helpers import assert_error


@pytest.fixture
def failing_app(app):
    """The app with routes that fail in each way a view can."""

    def raise_(error):
        def view():
            raise error
        return view

    app.add_url_rule("/fail/api", "fail_api", raise_(ApiError(418, "teapot", "short and stout", headers={"X-A": "1"})))
    app.add_url_rule("/fail/evidence", "fail_evidence", raise_(EvidenceError("not a number", field="metrics")))
    app.add_url_rule("/fail/evidence-named", "fail_evidence_named",
                     raise_(EvidenceError("facts.batch_size: expected a whole number", field="facts.batch_size")))
    app.add_url_rule("/fail/bug", "fail_bug", raise_(ZeroDivisionError("secret internals")))
    return app


def test_unknown_route(client):
    message = assert_error(client.get("/api/v1/nowhere"), 404, "not_found")
    assert "/api/v1/nowhere" in message


def test_wrong_method(client):
    response = client.delete("/api/v1/conversations")
    message = assert_error(response, 405, "method_not_allowed")
    assert "DELETE" in message
    assert "POST" in response.headers["Allow"]


def test_too_large(client):
    response = client.post("/api/v1/conversations", data=b"x" * (11 * 1024 * 1024), content_type="application/json")
    message = assert_error(response, 413, "request_entity_too_large")
    assert str(10 * 1024 * 1024) in message


def test_api_error(failing_app):
    response = failing_app.test_client().get("/fail/api")
    assert assert_error(response, 418, "teapot") == "short and stout"
    assert response.headers["X-A"] == "1"


def test_evidence_error_names_the_field(failing_app):
    client = failing_app.test_client()
    assert assert_error(client.get("/fail/evidence"), 400, "bad_input") == "metrics: not a number"
    message = assert_error(client.get("/fail/evidence-named"), 400, "bad_input")
    assert message == "facts.batch_size: expected a whole number"


def test_unexpected_error_is_logged_not_shown(failing_app, caplog):
    with caplog.at_level(logging.ERROR):
        response = failing_app.test_client().get("/fail/bug")
    message = assert_error(response, 500, "internal_error")
    assert "secret" not in response.get_data(as_text=True)
    assert "ZeroDivisionError" not in message
    assert "ZeroDivisionError" in caplog.text  # the traceback stays on the server
