"""The service's JSON API as a notebook or a script uses it."""
from __future__ import annotations

import dataclasses
import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import TYPE_CHECKING, Any

from .arrays import dataset_summary
from .display import Diagnosis
from .errors import InputError, ServiceError, Unreachable
from .history import metrics_payload
from .model import training_facts

if TYPE_CHECKING:
    from flask import Flask

    from .callback import LiveDiagnosis

API = "/api/v1"
#: The symptom a live run's conversation starts with when the user gives none.
LIVE_SYMPTOM = "Watching this training run for problems as it trains"
#: What feedback says of a cause: fixing it fixed the model, or it did not help.
VERDICTS = ("fixed", "not_helpful")


@dataclasses.dataclass(frozen=True)
class Client:
    """Diagnose a Keras model through the service at ``url``.

    ``token`` is one of the service's API tokens, when it has any; ``timeout`` is how many seconds
    a request may take. ``Client.in_process()`` answers without a server.
    """

    url: str = "http://127.0.0.1:8000"
    token: str | None = None
    timeout: float = 30.0
    #: The app that answers in this process instead of a server (see :meth:`in_process`).
    app: Flask | None = dataclasses.field(default=None, repr=False, compare=False)

    @classmethod
    def in_process(cls, app: Flask | None = None, *, token: str | None = None) -> Client:
        """A client whose requests ``app`` answers in this process; by default a fresh app that stores nothing."""
        if app is None:
            from .. import create_app

            app = create_app({"DATABASE_URL": "sqlite://", "API_TOKENS": []})
        return cls(url="in-process", token=token, app=app)

    def diagnose(self, symptom: str, *, history: Any = None, model: Any = None, x: Any = None, y: Any = None,
                 dataset: dict[str, Any] | None = None, training: dict[str, Any] | None = None) -> Diagnosis:
        """Start a conversation about a model that does not learn.

        ``history``: a Keras ``History``, its ``history`` dict, a pandas DataFrame or a CSVLogger file's
        path. ``model``: the Keras model, whose training facts are read here. ``x``/``y``: the training
        arrays, summarised here (only the summary is sent). ``dataset``/``training``: facts by contract
        key, which win over what was read.
        """
        if not isinstance(symptom, str) or not symptom.strip():
            raise InputError("symptom: say in a few words what goes wrong, e.g. 'the loss is nan after 3 epochs'")
        body = {"symptom": symptom, **_evidence(history, model, x, y, dataset, training)}
        return Diagnosis(self._send("POST", "/conversations", body), self)

    def reply(self, conversation: str | Diagnosis, text: str | None = None, *, facts: dict[str, Any] | None = None,
              history: Any = None, model: Any = None, x: Any = None, y: Any = None,
              dataset: dict[str, Any] | None = None, training: dict[str, Any] | None = None) -> Diagnosis:
        """Continue a conversation: answer its questions in words or as ``facts``, or add evidence."""
        conversation_id = conversation.id if isinstance(conversation, Diagnosis) else conversation
        body = {**({"text": text} if text else {}), **({"facts": facts} if facts else {}),
                **_evidence(history, model, x, y, dataset, training)}
        if not body:
            raise InputError("reply: give an answer, facts or evidence")
        return Diagnosis(self._send("POST", f"/conversations/{conversation_id}/turns", body), self)

    def feedback(self, conversation: str | Diagnosis, cause: str, verdict: str,
                 comment: str | None = None) -> dict[str, Any]:
        """Say whether fixing ``cause`` (any cause id, ranked or not) fixed the model: ``fixed`` or ``not_helpful``.

        The knowledge base learns from it (``assistant kb fit --feedback``). Returns the stored feedback.
        """
        if verdict not in VERDICTS:
            raise InputError(f"verdict: {verdict!r} is not one of {', '.join(VERDICTS)}")
        conversation_id = conversation.id if isinstance(conversation, Diagnosis) else conversation
        body = {"cause": cause, "verdict": verdict, **({"comment": comment} if comment else {})}
        return self._send("POST", f"/conversations/{conversation_id}/feedback", body)

    def send_epoch(self, conversation_id: str, logs: dict[str, Any]) -> Diagnosis:
        """Add one epoch of a live run (Keras's logs with its 0-based ``epoch``); the diagnosis of the run so far."""
        return Diagnosis(self._send("POST", f"/conversations/{conversation_id}/epochs", logs), self)

    def callback(self, symptom: str = LIVE_SYMPTOM, *, x: Any = None, y: Any = None,
                 dataset: dict[str, Any] | None = None, stop_training: bool = False,
                 timeout: float = 5.0) -> LiveDiagnosis:
        """A Keras callback that diagnoses the run while it trains, and warns once when it goes wrong.

        With ``stop_training`` it also stops training then. A service that does not answer within
        ``timeout`` seconds turns the callback off for the run; training itself never stops for it.
        """
        from .callback import LiveDiagnosis  # the one part of the client that needs Keras

        return LiveDiagnosis(dataclasses.replace(self, timeout=timeout), symptom, x=x, y=y, dataset=dataset,
                             stop_training=stop_training)

    def _send(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """One API request; the JSON answer, or the error it carries raised as :class:`ServiceError`."""
        data = None if body is None else json.dumps(body, default=_plain).encode()
        headers = {"Accept": "application/json", **({"Content-Type": "application/json"} if data else {}),
                   **({"Authorization": f"Bearer {self.token}"} if self.token else {})}
        if self.app is not None:
            response = self.app.test_client().open(API + path, method=method, data=data, headers=headers)
            status, raw = response.status_code, response.get_data()
        else:
            status, raw = self._http(method, API + path, data, headers)
        try:
            answer = json.loads(raw)
        except ValueError:
            answer = None
        error = answer.get("error") if isinstance(answer, dict) and status >= 400 else None
        if isinstance(error, dict) and "message" in error:
            raise ServiceError(status, str(error.get("code", "error")), str(error["message"]))
        if status >= 400 or not isinstance(answer, dict):
            raise ServiceError(status, "bad_response", f"{self.url} answered {method} {path} with HTTP {status} "
                                                       "and no JSON: is it a keras-troubleshooter service?")
        return answer

    def _http(self, method: str, path: str, data: bytes | None, headers: dict[str, str]) -> tuple[int, bytes]:
        if urllib.parse.urlsplit(self.url).scheme not in ("http", "https"):
            raise InputError(f"url: {self.url!r} is not a web address like http://127.0.0.1:8000")
        request = urllib.request.Request(self.url.rstrip("/") + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:  # an answer, just not a 2xx one
            with error:
                return error.code, error.read()
        except (OSError, http.client.HTTPException) as error:  # refused, unresolvable, timed out, cut off
            reason = getattr(error, "reason", None) or error
            raise Unreachable(f"could not reach the service at {self.url}: {reason}") from None


def _evidence(history: Any, model: Any, x: Any, y: Any, dataset: dict[str, Any] | None,
              training: dict[str, Any] | None) -> dict[str, Any]:
    """The request fields for what the user passed: read and summarised here, facts they gave winning."""
    evidence: dict[str, Any] = {}
    if history is not None:
        evidence["metrics"] = metrics_payload(history)
    facts = {**(training_facts(model) if model is not None else {}), **(training or {})}
    if facts:
        evidence["training"] = facts
    summary = {**dataset_summary(x, y), **(dataset or {})}
    if summary:
        evidence["dataset"] = summary
    return evidence


def _plain(value: Any) -> Any:
    """JSON for the numpy values a notebook's dicts hold."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise InputError(f"{type(value).__name__} values cannot be sent; use numbers, strings, lists and dicts")
