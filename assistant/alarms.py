"""Alarms: the signs in a run that is still training that are worth interrupting it for.

A live run is diagnosed after every epoch like any uploaded history (same evidence, same
reasoning); these few facts are the ones a person should hear about at once, not when they
next look: the loss turned NaN, it grows, it has not moved since the start, the model is no
better than a guess, or validation loss climbs while training loss falls.
"""
from __future__ import annotations

from dataclasses import dataclass

from .evidence.derive import derive
from .evidence.facts import Facts


@dataclass(frozen=True)
class Alarm:
    #: A yes/no fact that rings the alarm when it is true.
    fact: str
    #: The warning when the fact carries no note of its own (derived facts); ``{name}`` takes a fact's value.
    says: str
    #: Epochs the run must have reached first: the opening epochs of a healthy run can look flat or at chance.
    after: int = 3


ALARMS = (
    Alarm("loss_is_nan", "the loss is no longer a finite number", after=1),
    Alarm("loss_diverges", "the loss is growing instead of falling"),
    Alarm("loss_constant", "the loss has been the same in every epoch"),
    Alarm("loss_flat", "the loss has barely moved since the first epoch"),
    Alarm("accuracy_at_chance", "accuracy is no better than guessing ({chance_accuracy:.0%})"),
    Alarm("val_gap_growing", "validation loss is rising while the training loss falls"),
)


def problems(facts: Facts) -> list[dict[str, str]]:
    """The alarms these facts ring, as ``{"fact", "text"}``; the text quotes the run's numbers where it can."""
    values = facts.values()
    values.update(derive(values))
    epochs = values.get("epochs_run") or 0
    rung = []
    for alarm in ALARMS:
        if values.get(alarm.fact) is True and epochs >= alarm.after:
            fact = facts.fact(alarm.fact)
            rung.append({"fact": alarm.fact, "text": fact.note if fact and fact.note else alarm.says.format(**values)})
    return rung
