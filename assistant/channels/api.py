"""The JSON API under ``/api/v1``: read and check the request, let conversations answer it, respond."""
from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from urllib.parse import parse_qsl
from typing import Any

from flask import Blueprint, Response, current_app, g, request, url_for
from jsonschema import Draft202012Validator, ValidationError, validators
from jsonschema.exceptions import best_match
from referencing import Registry
from referencing.jsonschema import DRAFT202012
from werkzeug.exceptions import RequestEntityTooLarge

from .. import conversations, kb, security
from ..errors import ApiError, error_response
from ..evidence.metrics import decode_text, looks_binary
from ..repro import reproductions

bp = Blueprint("api", __name__, url_prefix="/api/v1")

_OPENAPI = Path(__file__).with_name("openapi.json")
_OPENAPI_URI = "urn:assistant:openapi"
FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")
_SURROGATE = re.compile("[\ud800-\udfff]")
#: JSON nested deeper than this is refused: no field nests more than a few levels, and deeper ones exhaust the stack.
MAX_JSON_DEPTH = 32
#: Schema keywords that cap what a request may cost: a field over one gets 413 (too large) or 422 (a count too high).
SIZE_LIMITS = {"maxLength": "characters", "maxItems": "items", "maxProperties": "entries"}
#: How much of a refused value a message quotes.
SHOWN = 200
#: The JSON values that hold no text and nest nothing.
_SCALARS = {int, float, bool, type(None)}


def _maximum(validator: Draft202012Validator, maximum: float, instance: Any, schema: dict[str, Any]) -> Any:
    """``maximum`` for numbers and for numbers written as text, as forms and loose clients send them ("2000000")."""
    if isinstance(instance, bool):
        return
    try:
        number = float(instance) if isinstance(instance, (int, float, str)) else None
    except (ValueError, OverflowError):
        return  # not a number: the field's own reading says so
    if number is not None and number > maximum:
        yield ValidationError(f"{instance!r} is more than {maximum:,}")


#: The document's dialect, with ``maximum`` applying to numeric strings too.
Validator = validators.extend(Draft202012Validator, {"maximum": _maximum})


@functools.cache
def openapi_document() -> dict[str, Any]:
    """The hand-written OpenAPI document, read once."""
    return json.loads(_OPENAPI.read_text(encoding="utf-8"))


@functools.cache
def schema_validator(name: str) -> Draft202012Validator:
    """A compiled validator for one of the document's schemas, its ``$ref``s resolved within the document."""
    registry = Registry().with_resource(_OPENAPI_URI, DRAFT202012.create_resource(openapi_document()))
    return Validator({"$ref": f"{_OPENAPI_URI}#/components/schemas/{name}"}, registry=registry)


def _refusal(error: ValidationError) -> ApiError:
    """Name the field and its problem, e.g. ``training: [] is not of type 'object'``; a limit hit names the limit."""
    path = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error.absolute_path).lstrip(".")
    if error.validator in SIZE_LIMITS:
        unit = SIZE_LIMITS[str(error.validator)]
        message = f"{len(error.instance):,} {unit}, more than the {error.validator_value:,} this service reads"
        status, code = 413, "too_large"
    elif error.validator == "maximum":
        message = f"{error.message}, the most this service accepts"
        status, code = 422, "over_limit"
    else:
        message = error.message if len(error.message) <= SHOWN else error.message[:SHOWN] + "…"
        status, code = 400, "bad_input"
    return ApiError(status, code, f"{path}: {message}" if path else message)


def validated(schema: str, body: Any) -> dict[str, Any]:
    """The body, once it matches the OpenAPI schema; shared by every blueprint under /api/v1."""
    error = best_match(schema_validator(schema).iter_errors(body))
    if error is not None:
        raise _refusal(error)
    return body


def parse_json(text: str | bytes, field: str | None = None) -> Any:
    """JSON the client sent, as the body or in a form ``field``; refused with a message saying where it breaks."""
    code, subject = ("bad_input", f"{field}:") if field else ("bad_json", "the body is")
    try:
        value = json.loads(decode_text(text) if isinstance(text, bytes) else text)  # UTF-16 or Latin-1 too
    except ValueError as exc:
        raise ApiError(400, code, f"{subject} not valid JSON: {exc}") from None
    except RecursionError:
        value = None
    else:
        deepest, broken = _shape(value)
        if broken is not None:  # JSON may spell half a UTF-16 pair ("\\ud800"), which no database stores
            where, char = broken
            where = f"{field or ''}{where}".lstrip(".") or "the body"
            raise ApiError(400, code, f"{where}: {char!a} is half of a UTF-16 surrogate pair, not text; send the "
                                      "whole character") from None
        if deepest <= MAX_JSON_DEPTH:
            return value
    raise ApiError(400, code, f"{subject} nested more than {MAX_JSON_DEPTH} levels deep")


def _shape(value: Any) -> tuple[int, tuple[str, str] | None]:
    """How deeply a parsed JSON value nests (counted without recursion, only as far as the limit), and where the
    first lone surrogate is, in a key or a string: its path (``.training.optimizer``) and the character."""
    deepest, stack = 0, [(value, 1, None)]
    while stack and deepest <= MAX_JSON_DEPTH:
        item, depth, trail = stack.pop()
        if isinstance(item, str):
            if broken := _SURROGATE.search(item):
                return deepest, (_path(trail), broken[0])
            continue
        if isinstance(item, list) and set(map(type, item)) <= _SCALARS:  # a metric's values: nothing to walk into
            deepest = max(deepest, depth)
            continue
        pairs = item.items() if isinstance(item, dict) else enumerate(item) if isinstance(item, list) else None
        if pairs is not None:
            deepest = max(deepest, depth)
            for key, child in pairs:
                if isinstance(key, str):
                    stack.append((key, depth + 1, (trail, key)))
                if isinstance(child, (dict, list, str)):
                    stack.append((child, depth + 1, (trail, key)))
    return deepest, None


def _path(trail: tuple[Any, str | int] | None) -> str:
    """``.training.optimizer`` or ``[3]`` from the links a walk left; a lone surrogate in a key is shown escaped."""
    parts = []
    while trail is not None:
        trail, key = trail
        parts.append(f"[{key}]" if isinstance(key, int) else "." + key.encode("utf-8", "backslashreplace").decode())
    return "".join(reversed(parts))


def json_body() -> Any:
    """The request's JSON, parsed here so that a malformed body gets a message saying where it breaks."""
    if not request.is_json:
        raise ApiError(415, "unsupported_media_type", "send the body as JSON with Content-Type: application/json")
    data = request.get_data()
    if request.content_length is None and len(data) >= (current_app.config["MAX_CONTENT_LENGTH"] or len(data) + 1):
        raise RequestEntityTooLarge()  # a chunked body, cut off at the limit: not the JSON that was sent
    return parse_json(data)


def _form_body() -> tuple[dict[str, Any], dict[str, Any]]:
    """Form fields, any of which may be an uploaded file: the fields to validate, and the uploads that bypass it.

    ``dataset`` and ``training`` hold JSON text; a ``sample`` file goes to the parsers as bytes. Text is
    read whatever its encoding (UTF-8, UTF-16 as PowerShell's ``>`` writes it, Latin-1), in files and
    in URL-encoded fields alike; only binary data is refused.
    """
    fields: dict[str, Any] = _urlencoded_fields() if request.mimetype == FORM_TYPES[1] else request.form.to_dict()
    uploads: dict[str, Any] = {}
    for name, upload in request.files.items():
        content = upload.read()
        if name == "sample":
            uploads["sample"] = content
            continue
        fields[name] = decode_text(content)
        if name == "metrics":  # what cannot be read of a log, the reply says
            if upload.filename:
                uploads["metrics_filename"] = upload.filename
        elif looks_binary(fields[name]):
            raise ApiError(400, "bad_input", f"{name}: the uploaded file is not text")
    for name in ("dataset", "training"):
        if name in fields:
            fields[name] = parse_json(fields[name], name)
    return fields, uploads


def _urlencoded_fields() -> dict[str, str]:
    """A URL-encoded form's fields, each decoded from its bytes: ``pr%E9cision`` from a Latin-1 terminal is
    "précision", where reading every field as UTF-8 made it "pr\ufffdcision"."""
    # Latin-1 maps each byte to one character and back, so every field's bytes come through as sent.
    pairs = parse_qsl(request.get_data().decode("latin-1"), keep_blank_values=True, encoding="latin-1")
    return {key: decode_text(value.encode("latin-1")) for key, value in pairs}


def conversation_not_found(conversation_id: str) -> ApiError:
    """The one answer for a missing conversation and for another owner's: they must look alike."""
    return ApiError(404, "not_found", f"no conversation {conversation_id}")


@bp.before_request
def _authenticate() -> None:
    """Require one of the configured tokens, and note whose conversations the caller may see."""
    g.owner = None if request.endpoint == "api.openapi" else security.authenticate()


@bp.errorhandler(conversations.Conflict)
def _conflict(error: conversations.Conflict) -> Response:
    return error_response(409, "conflict", str(error))


@bp.get("/openapi.json")
def openapi() -> dict[str, Any]:
    return openapi_document()


@bp.post("/conversations")
def start_conversation() -> tuple[dict[str, Any], int]:
    if request.mimetype in FORM_TYPES:
        fields, uploads = _form_body()
    else:
        fields, uploads = json_body(), {}
    inputs = {**validated("StartRequest", fields), **uploads}
    conversation_id, reply = conversations.start(g.owner, inputs)
    return {"id": conversation_id, "reply": reply}, 201


@bp.get("/conversations")
def list_conversations() -> dict[str, Any]:
    return {"conversations": conversations.recent(g.owner)}


@bp.get("/conversations/<conversation_id>")
def get_conversation(conversation_id: str) -> dict[str, Any]:
    found = conversations.transcript(conversation_id, g.owner)
    if found is None:
        raise conversation_not_found(conversation_id)
    if reproductions() is not None:  # where the "Validate with a short run" button posts
        found["reproductions"] = url_for("api.list_reproductions", conversation_id=conversation_id)
    return found


@bp.post("/conversations/<conversation_id>/turns")
def add_turn(conversation_id: str) -> dict[str, Any]:
    inputs = validated("TurnRequest", json_body())
    reply = conversations.reply_to(conversation_id, g.owner, inputs)
    if reply is None:
        raise conversation_not_found(conversation_id)
    return {"id": conversation_id, "reply": reply}


@bp.get("/conversations/<conversation_id>/causes/<cause_id>")
def get_cause(conversation_id: str, cause_id: str) -> dict[str, Any]:
    if cause_id not in kb.current().causes:
        raise ApiError(404, "not_found", f"no cause {cause_id}")
    found = conversations.cause(conversation_id, g.owner, cause_id)
    if found is None:
        raise conversation_not_found(conversation_id)
    return found


@bp.post("/conversations/<conversation_id>/feedback")
def add_feedback(conversation_id: str) -> tuple[dict[str, Any], int]:
    body = validated("FeedbackRequest", json_body())
    if body["cause"] not in kb.current().causes:  # any cause the assistant knows, ranked in a reply or not
        raise ApiError(400, "bad_input", f"cause: no cause {body['cause']!r}")
    stored = conversations.add_feedback(conversation_id, g.owner, **body)
    if stored is None:
        raise conversation_not_found(conversation_id)
    return stored, 201
