"""Reproduction runs over the JSON API: start one, follow it (status or server-sent events), cancel it, see its plot.

The routes join the API blueprint, so they share its access rule and error shapes; the runs
themselves are :mod:`assistant.repro`'s business.
"""
from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from typing import Any

from flask import Response, current_app, g, request, stream_with_context, url_for

from .. import logs, security
from ..errors import ApiError
from ..repro import FINISHED, IncompleteFacts, Reproductions, RunsUnavailable, SpecError, reproductions
from ..web_worker import STOPPING
from . import caps
from .api import FORM_TYPES, bp, conversation_not_found, json_body, parse_json, validated

#: How often the event stream looks at the run, and how often it sends a keep-alive comment.
EVENT_POLL = 0.5
KEEP_ALIVE = 15.0
#: How long an EventSource waits before it opens a stream again that ended before the run (``retry``, in ms).
RECONNECT_MS = 5000
#: Seconds a client is asked to wait before starting a run again while the run queue is unreachable.
RETRY_AFTER = 30


def _runs() -> Reproductions:
    runs = reproductions()
    if runs is None:
        raise ApiError(404, "not_found", "this service does not offer reproduction runs")
    return runs


def _linked(run: dict[str, Any]) -> dict[str, Any]:
    """A run with the addresses a client follows it by."""
    ids = {"conversation_id": run["conversation_id"], "run_id": run["id"]}
    links = {"self": url_for("api.get_reproduction", **ids), "events": url_for("api.reproduction_events", **ids),
             "cancel": url_for("api.cancel_reproduction", **ids)}
    if run.pop("has_plot"):
        links["plot"] = url_for("api.reproduction_plot", **ids)
    return {**run, "links": links}


def _found(run: dict[str, Any] | None, run_id: str) -> dict[str, Any]:
    if run is None:
        raise ApiError(404, "not_found", f"no reproduction run {run_id} in this conversation")
    return _linked(run)


def _request() -> dict[str, Any]:
    """The optional upload: ``model`` (``model.to_json()``, as text or parsed) and ``sample`` CSV rows."""
    if request.mimetype in FORM_TYPES:
        fields: dict[str, Any] = request.form.to_dict()
        for name, upload in request.files.items():
            fields[name] = upload.read().decode("utf-8-sig", errors="replace")
    else:
        fields = json_body() if request.get_data() else {}
    body = validated("ReproductionRequest", fields)
    if isinstance(body.get("model"), str):  # read here too, so that JSON nested too deep is refused like a body
        parse_json(body["model"], "model")
    elif isinstance(body.get("model"), dict):
        body["model"] = json.dumps(body["model"])
    return {"model_json": body.get("model"), "sample": body.get("sample")}


@bp.post("/conversations/<conversation_id>/reproductions")
def start_reproduction(conversation_id: str) -> tuple[dict[str, Any], int, dict[str, str]]:
    runs = _runs()
    try:
        with caps.run_slot(g.owner):
            run = runs.start(conversation_id, g.owner, **_request())
    except IncompleteFacts as missing:
        raise ApiError(422, "missing_facts", f"{missing}; the conversation now asks for them") from None
    except SpecError as refused:
        raise ApiError(400, "bad_input", str(refused)) from None
    except RunsUnavailable:
        raise ApiError(503, "runs_unavailable", "short runs cannot be started right now (their queue is "
                       f"unreachable); try again in {RETRY_AFTER} s", headers={"Retry-After": str(RETRY_AFTER)}) from None
    if run is None:
        raise conversation_not_found(conversation_id)
    run = _linked(run)
    return run, 202, {"Location": run["links"]["self"]}


@bp.get("/conversations/<conversation_id>/reproductions")
def list_reproductions(conversation_id: str) -> dict[str, Any]:
    return {"reproductions": [_linked(run) for run in _runs().list(conversation_id, g.owner)]}


@bp.get("/conversations/<conversation_id>/reproductions/<run_id>")
def get_reproduction(conversation_id: str, run_id: str) -> dict[str, Any]:
    return _found(_runs().get(conversation_id, run_id, g.owner), run_id)


@bp.delete("/conversations/<conversation_id>/reproductions/<run_id>")
@bp.post("/conversations/<conversation_id>/reproductions/<run_id>/cancel")
def cancel_reproduction(conversation_id: str, run_id: str) -> dict[str, Any]:
    """Cancel a queued or running run; one that has ended already is left as it is."""
    return _found(_runs().cancel(conversation_id, run_id, g.owner), run_id)


@bp.get("/conversations/<conversation_id>/reproductions/<run_id>/plot.png")
def reproduction_plot(conversation_id: str, run_id: str) -> Response:
    runs = _runs()
    _found(runs.get(conversation_id, run_id, g.owner), run_id)
    picture = runs.plot(conversation_id, run_id, g.owner)
    if picture is None:
        raise ApiError(404, "not_found", f"reproduction run {run_id} has no plot (yet)")
    return Response(picture, mimetype="image/png", headers={"Cache-Control": "private, max-age=86400"})


@bp.get("/conversations/<conversation_id>/reproductions/<run_id>/events")
def reproduction_events(conversation_id: str, run_id: str) -> Response:
    """Server-sent events: ``progress`` while the run changes, then one ``done``, ``failed`` or ``cancelled``.

    An open stream holds a web thread, so a caller may hold only a few (:mod:`.caps`), and a stream
    ends after ``STREAM_IDLE_SECONDS`` without a change, after ``STREAM_SECONDS`` in all, or as soon as
    its worker process begins to stop; it then ends with a ``reconnect`` event (and ``retry``) rather
    than being cut, and a client follows on by opening it again, as an EventSource does by itself.
    Each event carries the whole run, and its ``id`` names the run's state: a stream opened with
    ``Last-Event-ID`` sends the run only once it differs from that state, and a finished run whose
    end the client has seen is answered ``204``, which stops an EventSource from opening it again.
    The request's log line is written when the stream ends, and says how (:func:`assistant.logs.stream_outcome`).
    """
    runs, owner, config = _runs(), g.owner, current_app.config
    run = _found(runs.get(conversation_id, run_id, owner), run_id)
    last = request.headers.get("Last-Event-ID")
    if run["status"] in FINISHED and last == _state_id(run):
        return Response(status=204)
    slots, caller = caps.streams(), security.caller()
    slots.take(caller)
    outcome = logs.stream_outcome()
    ends, idle = time.monotonic() + config["STREAM_SECONDS"], config["STREAM_IDLE_SECONDS"]

    def stream() -> Iterator[str]:
        seen, changed, spoke = last, time.monotonic(), time.monotonic()
        yield f"retry: {RECONNECT_MS}\n\n"  # at once: the headers go with the first bytes, even when nothing changed
        while True:
            run = _found(runs.get(conversation_id, run_id, owner), run_id)
            state, now = _state_id(run), time.monotonic()
            if state != seen:
                seen, changed, spoke = state, now, now
                name = run["status"] if run["status"] in FINISHED else "progress"
                yield f"id: {state}\nevent: {name}\ndata: {json.dumps(run)}\n\n"
            ended = ("completed" if run["status"] in FINISHED else "shutdown" if STOPPING.is_set()
                     else "idle" if now - changed > idle else "limit" if now > ends else None)
            if ended is not None:
                if ended != "completed":
                    yield f"event: reconnect\nretry: {RECONNECT_MS}\ndata: {json.dumps({'reason': ended})}\n\n"
                outcome["ended"] = ended  # only once the last event was taken: a client gone before it is "closed"
                return
            if now - spoke > KEEP_ALIVE:
                spoke = now
                yield ": still running\n\n"
            STOPPING.wait(EVENT_POLL)

    response = Response(stream_with_context(stream()), mimetype="text/event-stream",
                        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    response.call_on_close(lambda: slots.give_back(caller))
    return response


def _state_id(run: dict[str, Any]) -> str:
    """An event's id: what the client has seen of the run, its status and progress (the rest changes with them)."""
    state = json.dumps([run["status"], run["progress"]], sort_keys=True)
    return hashlib.sha256(state.encode()).hexdigest()[:16]
