"""A Keras callback that diagnoses a run while it trains.

At the start of ``fit`` it opens a conversation with the model's training facts (and the data's
summary, when given); after every epoch it sends the epoch's logs and gets back the diagnosis of
the run so far. The first time the service sees a problem, the notebook gets one warning naming
the top causes, and training stops if that was asked for. A service that cannot be reached only
turns the callback off: training goes on.
"""
from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import keras

from .errors import ClientError, TrainingProblem

if TYPE_CHECKING:
    from .client import Client
    from .display import Diagnosis


class LiveDiagnosis(keras.callbacks.Callback):
    """Made by ``Client.callback()``; after training, ``diagnosis`` holds the service's last reply."""

    def __init__(self, client: Client, symptom: str, *, x: Any = None, y: Any = None,
                 dataset: dict[str, Any] | None = None, stop_training: bool = False) -> None:
        super().__init__()
        self.client = client
        self.symptom = symptom
        self.x = x
        self.y = y
        self.dataset = dataset
        self.stop_training = stop_training
        #: The diagnosis of the run so far: the service's latest reply (None before the first).
        self.diagnosis: Diagnosis | None = None
        #: The conversation of the current run; None while the callback is off.
        self.conversation_id: str | None = None
        self._warned = False

    @property
    def problems(self) -> list[dict[str, str]]:
        """What the service sees going wrong in the run (empty while nothing is)."""
        return self.diagnosis.problems if self.diagnosis is not None else []

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.diagnosis, self.conversation_id, self._warned = None, None, False
        try:
            self.diagnosis = self.client.diagnose(self.symptom, model=self.model, x=self.x, y=self.y,
                                                  dataset=self.dataset)
        except Exception as error:  # an aid to training must never be what ends it
            self._turn_off(error)
            return
        self.conversation_id = self.diagnosis.id

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.conversation_id is None:
            return
        try:
            self.diagnosis = self.client.send_epoch(self.conversation_id, {**_numbers(logs or {}), "epoch": epoch})
        except Exception as error:  # as above
            self._turn_off(error)
            return
        if self.problems and not self._warned:
            self._warned = True
            if self.stop_training:
                self.model.stop_training = True
            warnings.warn(TrainingProblem(self._warning()), stacklevel=2)

    def _warning(self) -> str:
        causes = ", ".join(f"{c['title'].lower()} ({c['confidence']:.0%})" for c in self.diagnosis.causes[:3])
        stopped = " Training stopped." if self.stop_training else ""
        return (f"keras-troubleshooter: {'; '.join(p['text'] for p in self.problems)}. Most likely: {causes}."
                f"{stopped} The callback's .diagnosis has the evidence and the fixes.")

    def _turn_off(self, error: Exception) -> None:
        self.conversation_id = None
        reason = error if isinstance(error, ClientError) else f"unexpected {type(error).__name__}: {error}"
        warnings.warn(f"keras-troubleshooter: no live diagnosis for this run: {reason}", RuntimeWarning, stacklevel=2)


def _numbers(logs: dict[str, Any]) -> dict[str, float]:
    """The logs' numeric values as plain floats (Keras hands over numpy scalars and tensors)."""
    numbers = {}
    for name, value in logs.items():
        try:
            numbers[str(name)] = float(value)
        except (TypeError, ValueError):
            continue  # a non-numeric entry some callback added: not a metric
    return numbers
