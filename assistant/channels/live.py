"""Live training runs over the JSON API: each epoch's logs arrive while the model trains, and each is
answered with the diagnosis of the run so far.

Two senders: the notebook client's callback, which starts a conversation with the model's
training facts and posts to ``/conversations/<id>/epochs``; and Keras's own ``RemoteMonitor``,
which only knows a fixed address, so ``/live/<session>`` keeps one conversation per name the
user picks. The routes join the API blueprint, so they share its access rule and error shapes;
the runs themselves are :func:`assistant.conversations.add_epoch`'s business.
"""
from __future__ import annotations

import hashlib
import re
from typing import Any

from flask import g, request

from .. import conversations
from ..errors import ApiError
from .api import FORM_TYPES, json_body, conversation_not_found, validated, bp, parse_json

SESSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def _epoch_logs() -> dict[str, Any]:
    """One epoch's logs: a JSON body, or RemoteMonitor's default form whose field ``data`` holds them as JSON."""
    if request.mimetype in FORM_TYPES:
        logs = parse_json(validated("EpochForm", request.form.to_dict())["data"], "data")
    else:
        logs = json_body()
    logs = validated("EpochLogs", logs)
    return {**logs, "epoch": int(logs["epoch"])}  # JSON may spell it 3.0


def _session_conversation(session: str) -> str:
    """The conversation a named session keeps: the same one for the same caller and name, another for anyone else."""
    if not SESSION.fullmatch(session):
        raise ApiError(400, "bad_input", "a session name is 1 to 64 letters, digits, '.', '_' or '-', "
                                         "starting with a letter or digit")
    digest = hashlib.sha256(f"live\0{g.owner or ''}\0{session}".encode()).hexdigest()
    return f"conv-{digest[:32]}"


@bp.post("/conversations/<conversation_id>/epochs")
def add_epoch(conversation_id: str) -> dict[str, Any]:
    reply = conversations.add_epoch(conversation_id, g.owner, _epoch_logs())
    if reply is None:
        raise conversation_not_found(conversation_id)
    return {"id": conversation_id, "reply": reply}


@bp.post("/live/<session>")
def add_live_epoch(session: str) -> dict[str, Any]:
    conversation_id = _session_conversation(session)
    reply = conversations.add_epoch(conversation_id, g.owner, _epoch_logs(), title=f"Live training run {session}")
    return {"id": conversation_id, "reply": reply}


@bp.get("/live/<session>")
def get_live_session(session: str) -> dict[str, Any]:
    conversation_id = _session_conversation(session)
    reply = conversations.live_reply(conversation_id, g.owner)
    if reply is None:
        raise ApiError(404, "not_found", f"no epochs have reached live session {session} yet")
    return {"id": conversation_id, "reply": reply}
