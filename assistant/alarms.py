"""Alarms: the signs in a run that is still training that are worth interrupting it for.

A live run is diagnosed after every epoch like any uploaded history (same evidence, same
reasoning); the knowledge base's ``alarms.yaml`` names the few facts a person should hear
about at once, not when they next look.
"""
from __future__ import annotations

from functools import partial
from typing import Any, Mapping

from .evidence.facts import Facts
from .kb import KnowledgeBase
from .kb.check import sentence_problems


def warning(says: str, values: Mapping[str, Any]) -> str:
    """An alarm's ``says`` filled with the run's values (``{name}``, ``{name:.0%}``)."""
    return says.format(**values)


def problems(kb: KnowledgeBase, facts: Facts, values: Mapping[str, Any]) -> list[dict[str, str]]:
    """The alarms the facts ring, as ``{"fact", "text"}``; the text quotes the run's numbers where it can.

    ``values`` are the facts with those derived from them, as the turn's diagnosis worked them out.
    """
    epochs = values.get("epochs_run") or 0
    rung = []
    for alarm in kb.alarms:
        if values.get(alarm.fact) is True and epochs >= alarm.after:
            fact = facts.fact(alarm.fact)
            rung.append({"fact": alarm.fact, "text": fact.note if fact and fact.note else warning(alarm.says, values)})
    return rung


def check(kb: KnowledgeBase) -> list[str]:
    """Every alarm's ``says`` that names no fact or does not render (``alarms.yaml``, with its line)."""
    return [problem for i, alarm in enumerate(kb.alarms)
            for problem in sentence_problems(kb, partial(kb.places.where, "alarms.yaml", "alarms", i, "says"),
                                             alarm.says, warning)]
