"""Every error leaves as ``{"error": {"code", "message"}}`` JSON, so clients never parse HTML or see a traceback."""
from __future__ import annotations

from collections.abc import Mapping

from flask import Flask, Response, current_app, jsonify, request
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound, RequestEntityTooLarge, TooManyRequests

from .evidence.facts import EvidenceError, OverLimit

#: Seconds a client is asked to wait while the database is unavailable.
DATABASE_RETRY_AFTER = 5


class ApiError(Exception):
    """A refusal the client can act on: an HTTP status, a stable code, and a sentence for a person."""

    def __init__(self, status: int, code: str, message: str, *, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def error_response(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> Response:
    """The one shape every error body has."""
    response = jsonify(error={"code": code, "message": message})
    response.status_code = status
    response.headers.update(headers or {})
    response.own_retry_after = response.headers.get("Retry-After")  # type: ignore[attr-defined]
    return response


def _keep_retry_after(response: Response) -> Response:
    """Flask-Limiter sets every API response's Retry-After to when its window resets, 200s included; only a
    refusal tells the client to wait. One that says when (a busy database, a cap) keeps its own figure, the
    rate limit's own 429 the limiter's, and any other answer none. Runs after the limiter's hook."""
    own = getattr(response, "own_retry_after", None)
    if own is not None:
        response.headers["Retry-After"] = own
    elif response.status_code != 429:
        response.headers.pop("Retry-After", None)
    return response


def _api_error(error: ApiError) -> Response:
    return error_response(error.status, error.code, error.message, error.headers)


def _evidence_error(error: EvidenceError) -> Response:
    if isinstance(error, OverLimit):
        return error_response(error.status, "too_large" if error.status == 413 else "over_limit", error.described())
    return error_response(400, "bad_input", error.described())


def _http_error(error: HTTPException) -> Response:
    # Keep werkzeug's headers (Allow on a 405), replace its HTML body with a message naming the request.
    if isinstance(error, NotFound):
        message = f"nothing is served at {request.path}"
    elif isinstance(error, MethodNotAllowed):
        message = f"{request.method} is not allowed on {request.path}; use {', '.join(error.valid_methods or ())}"
    elif isinstance(error, RequestEntityTooLarge):
        limit = current_app.config["MAX_CONTENT_LENGTH"]
        message = "the request is too large" + (f"; this service accepts at most {limit} bytes" if limit else "")
    elif isinstance(error, TooManyRequests):  # the rate limit's description is the limit, e.g. "3000 per 1 minute"
        message = f"too many requests; this service takes {error.description} from each caller, try again shortly"
    else:
        message = error.description or error.name
    code = error.name.lower().replace(" ", "_")
    headers = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}
    return error_response(error.code or 500, code, message, headers)


def _database_error(error: DBAPIError) -> Response:
    """A database that does not answer, or cannot write, is a wait for the client: 503 with Retry-After."""
    if not isinstance(error, (OperationalError, InterfaceError)) and not error.connection_invalidated:
        return _unexpected(error)
    current_app.logger.warning("database unavailable on %s %s: %s", request.method, request.path,
                               str(error.orig or error).splitlines()[0][:300])
    return error_response(503, "database_unavailable", "the database cannot be reached or written just now; "
                          f"try again in {DATABASE_RETRY_AFTER} s", {"Retry-After": str(DATABASE_RETRY_AFTER)})


def _unexpected(error: Exception) -> Response:
    current_app.logger.exception("unhandled error on %s %s", request.method, request.path)
    return error_response(500, "internal_error", "something went wrong on our side; the details were logged")


def init_app(app: Flask) -> None:
    """Register the handlers that turn every failure into the JSON error shape."""
    app.register_error_handler(ApiError, _api_error)
    app.register_error_handler(EvidenceError, _evidence_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(DBAPIError, _database_error)
    app.register_error_handler(Exception, _unexpected)
    app.after_request(_keep_retry_after)  # registered before security's limiter, so it runs after it
