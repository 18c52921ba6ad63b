"""A Keras callback that diagnoses a run while it trains, and never slows it down.

At the start of ``fit`` it opens a conversation with the model's training facts (and the data's
summary, when given); after every epoch it sends the epoch's logs and gets back the diagnosis of
the run so far. All of that talk with the service happens on a background thread fed by a
bounded queue, so ``on_epoch_end`` only hands the logs over: a slow service makes the callback
drop epochs (it says so once), an unreachable one turns it off, and training goes on either way.
The first time the service sees a problem, the notebook gets one warning naming the top causes,
and training stops if that was asked for.
"""
from __future__ import annotations

import queue
import threading
import time
import warnings
from typing import TYPE_CHECKING, Any

import keras

from .errors import ClientError, TrainingProblem

if TYPE_CHECKING:
    from .client import Client
    from .display import Diagnosis

#: Epochs that may wait for the service before new ones are dropped: enough to ride out one slow
#: answer, few enough that a run never holds a backlog the service could not catch up with.
QUEUE_SIZE = 16
_END = object()  # put after the last epoch: the sender stops once everything before it is sent


class _Sender(threading.Thread):
    """One run's talk with the service: open its conversation, then send each epoch handed over.

    Only this thread calls the service; the training thread reads what it found (the latest
    diagnosis, or the error that turned it off) and does all the warning, so that warnings reach
    the notebook from the thread that trains, where ``warnings.catch_warnings`` sees them.
    """

    def __init__(self, callback: LiveDiagnosis) -> None:
        super().__init__(name="keras-troubleshooter live diagnosis", daemon=True)
        self.callback = callback
        self.epochs: queue.Queue[Any] = queue.Queue(QUEUE_SIZE)
        self.diagnosis: Diagnosis | None = None
        self.conversation_id: str | None = None
        self.error: Exception | None = None  # what turned it off; None while it is on

    def run(self) -> None:
        callback = self.callback
        try:
            self.diagnosis = callback.client.diagnose(callback.symptom, model=callback.model, x=callback.x,
                                                      y=callback.y, dataset=callback.dataset)
            self.conversation_id = self.diagnosis.id
            while (logs := self.epochs.get()) is not _END:
                self.diagnosis = callback.client.send_epoch(self.conversation_id, logs)
                if self.diagnosis.problems and callback.stop_training and callback._sender is self:
                    callback.model.stop_training = True  # a flag Keras reads between steps: safe from here
        except Exception as error:  # an aid to training must never be what ends it
            self.error = error


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
        self._sender: _Sender | None = None
        self._said: set[str] = set()  # what the notebook was told this run: "problem", "off", "dropped"

    @property
    def diagnosis(self) -> Diagnosis | None:
        """The diagnosis of the run so far: the service's latest reply (None before the first)."""
        return self._sender.diagnosis if self._sender is not None else None

    @property
    def conversation_id(self) -> str | None:
        """The conversation of the current run; None while the callback is off (or not yet on)."""
        sender = self._sender
        return sender.conversation_id if sender is not None and sender.error is None else None

    @property
    def problems(self) -> list[dict[str, str]]:
        """What the service sees going wrong in the run (empty while nothing is)."""
        return self.diagnosis.problems if self.diagnosis is not None else []

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._said = set()
        self._sender = _Sender(self)
        self._sender.start()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._tell()
        if self._sender is None or self._sender.error is not None:
            return
        try:
            self._sender.epochs.put_nowait({**_numbers(logs or {}), "epoch": epoch})
        except queue.Full:
            self._say("dropped", f"keras-troubleshooter: the service answers slower than this run trains; epoch "
                                 f"{epoch}'s logs and any others that find {QUEUE_SIZE} still waiting are dropped "
                                 "(training goes on)", RuntimeWarning)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self.wait(self.client.timeout)
        self._tell()

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the epochs handed over to be answered; whether they all were.

        ``fit`` ends with this, so that ``diagnosis`` covers the whole run when the service keeps up.
        """
        sender, deadline = self._sender, time.monotonic() + timeout
        if sender is None or not sender.is_alive():
            return True
        try:
            sender.epochs.put(_END, timeout=timeout)
        except queue.Full:
            return False
        sender.join(max(0.0, deadline - time.monotonic()))
        return not sender.is_alive()

    def _tell(self) -> None:
        """Warn about what the sender found since the last epoch: the service off, or a problem in the run."""
        sender = self._sender
        if sender is None:
            return
        if sender.error is not None:
            error = sender.error
            reason = error if isinstance(error, ClientError) else f"unexpected {type(error).__name__}: {error}"
            self._say("off", f"keras-troubleshooter: no live diagnosis for this run: {reason}", RuntimeWarning)
        diagnosis = sender.diagnosis
        if diagnosis is not None and diagnosis.problems:
            self._say("problem", self._warning(diagnosis), TrainingProblem)

    def _say(self, what: str, message: str, category: type[Warning]) -> None:
        if what not in self._said:
            self._said.add(what)
            warnings.warn(message, category, stacklevel=3)

    def _warning(self, diagnosis: Diagnosis) -> str:
        causes = ", ".join(f"{c['title'].lower()} ({c['confidence']:.0%})" for c in diagnosis.causes[:3])
        stopped = " Training stopped." if self.stop_training else ""
        return (f"keras-troubleshooter: {'; '.join(p['text'] for p in diagnosis.problems)}. Most likely: {causes}."
                f"{stopped} The callback's .diagnosis has the evidence and the fixes.")


def _numbers(logs: dict[str, Any]) -> dict[str, float]:
    """The logs' numeric values as plain floats (Keras hands over numpy scalars and tensors)."""
    numbers = {}
    for name, value in logs.items():
        try:
            numbers[str(name)] = float(value)
        except (TypeError, ValueError):
            continue  # a non-numeric entry some callback added: not a metric
    return numbers
