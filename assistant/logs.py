"""Logs as JSON lines, one of them per request, each carrying the request's id so that one request's
lines can be found together across machines.

The id is the client's or proxy's ``X-Request-ID`` when it sends a tame one, else a fresh one; the
response carries it back. gunicorn's settings (:mod:`assistant.serving`) send every log line
through :class:`JsonFormatter`; the app itself leaves the logging setup to whoever runs it.
"""
from __future__ import annotations

import json
import logging
import re
import time
import uuid
from datetime import datetime, timezone
from typing import Any

from flask import Flask, Response, g, has_request_context, request

HEADER = "X-Request-ID"
#: A request id from outside is kept when it looks like this; anything else could forge log lines.
_SENT_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

log = logging.getLogger("assistant.requests")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, the ``fields`` extra, and any traceback."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if has_request_context() and "request_id" in g:
            entry["request_id"] = g.request_id
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def elapsed() -> float:
    """Seconds since the current request began."""
    return time.perf_counter() - g.request_started


def _begin() -> None:
    sent = request.headers.get(HEADER, "")
    g.request_id = sent if _SENT_ID.fullmatch(sent) else uuid.uuid4().hex
    g.request_started = time.perf_counter()


def stream_outcome() -> dict[str, str]:
    """Hold the current request's log line until its streamed response closes, and return where the stream
    writes how it ended (``ended``: ``completed``, ``idle``, ``limit``, ``shutdown``; ``closed`` until it says,
    so a client gone or a write failed first reads so). A line written at the start says 200 for a stream
    that is later cut, and times it to its headers."""
    g.stream_outcome = {"ended": "closed"}
    return g.stream_outcome


def _end(response: Response) -> Response:
    """Hand the id back and log the request, a stream once it has ended (:func:`stream_outcome`)."""
    response.headers[HEADER] = g.request_id
    if request.blueprint == "ops":  # probes and scrapes every few seconds from every balancer would drown the rest
        return response
    fields = {"method": request.method, "path": request.path, "status": response.status_code,
              "remote_addr": request.remote_addr}
    outcome = g.get("stream_outcome")
    if outcome is None:
        _log(fields, elapsed())
    else:  # the request's context is gone at the close: keep what the line needs
        fields["request_id"], started = g.request_id, g.request_started
        response.call_on_close(lambda: _log({**fields, "stream_ended": outcome["ended"]},
                                            time.perf_counter() - started))
    return response


def _log(fields: dict[str, Any], seconds: float) -> None:
    ended = f" ({fields['stream_ended']})" if "stream_ended" in fields else ""
    log.info("%s %s %s%s", fields["method"], fields["path"], fields["status"], ended,
             extra={"fields": {**fields, "duration_ms": round(seconds * 1000, 2)}})


def init_app(app: Flask) -> None:
    """Give every request an id and a log line; registered first, so that every later hook may log with the id."""
    app.before_request(_begin)
    app.after_request(_end)
