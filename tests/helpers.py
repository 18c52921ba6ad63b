"""Assertions shared by the test modules."""
from __future__ import annotations

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
