"""The chat page: one HTML shell whose script talks to the JSON API, so the page holds no logic of its own."""
from __future__ import annotations

from flask import Blueprint, Response, render_template

bp = Blueprint("web", __name__)

#: Everything the page loads comes from this origin; no inline script, no CDN.
CONTENT_SECURITY_POLICY = "default-src 'self'; img-src 'self' data: blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"


@bp.after_request
def _lock_down(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return response


@bp.get("/")
def index() -> str:
    return render_template("chat.html", conversation_id=None)


@bp.get("/c/<conversation_id>")
def conversation(conversation_id: str) -> str:
    """A conversation's shareable address; the script loads it, so an unknown id gets the API's own message."""
    return render_template("chat.html", conversation_id=conversation_id)
