"""``assistant kb report``: what feedback says about each cause, for a maintainer about to edit weights by hand.

Per cause, how often feedback confirmed it ("fixed") and rejected it ("not helpful"); and, for
the conversations whose top cause (as the knowledge base ranks their facts now) was rejected, which
supporting rules held there: the evidence that led the ranking astray.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Sequence

from ..evidence.facts import Facts
from ..reasoning import engine
from .feedback import Report
from .model import KnowledgeBase


@dataclass
class Summary:
    """Feedback counted per cause, and the rules that held where the top cause was rejected."""

    confirmed: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    #: Rejected top cause → conversations.
    rejected_at_top: Counter[str] = field(default_factory=Counter)
    #: Rejected top cause → (cause, position, sentence or condition) of a supporting rule that held → conversations.
    held: dict[str, Counter[tuple[str, int, str]]] = field(default_factory=dict)
    unknown: int = 0


def summarise(kb: KnowledgeBase, reports: Sequence[Report]) -> Summary:
    """Count the reports, diagnosing each conversation a rejected report was given on once."""
    summary = Summary()
    where = {id(rule): (cause.id, n, rule.says or json.dumps(rule.when)) for cause in kb.causes.values()
             for n, rule in enumerate(cause.supports)}
    seen: set[tuple[str, str]] = set()
    for report in reports:
        if report.cause not in kb.causes:
            summary.unknown += 1
            continue
        (summary.confirmed if report.fixed else summary.rejected)[report.cause] += 1
        if report.fixed or (report.conversation, report.cause) in seen:
            continue
        seen.add((report.conversation, report.cause))
        values = engine._all_values(kb, Facts.from_list(report.facts))
        scoring = engine._Scoring.of(kb, values)
        found = scoring.scores(kb)
        top = min(found, key=lambda cause: (-found[cause], cause))
        if top != report.cause:
            continue
        summary.rejected_at_top[top] += 1
        counted = summary.held.setdefault(top, Counter())
        counted.update(where[id(rule)] for (_, _, rule, _), hit in zip(kb.rules, scoring.hits)
                       if hit and id(rule) in where)
    return summary


def lines(summary: Summary) -> list[str]:
    """The report as a maintainer reads it."""
    causes = sorted(summary.confirmed.keys() | summary.rejected.keys(),
                    key=lambda c: (-summary.rejected[c] - summary.confirmed[c], c))
    out = [f"{'cause':<32} {'fixed':>6} {'not helpful':>12} {'rejected first':>15}"]
    out += [f"{c:<32} {summary.confirmed[c]:>6} {summary.rejected[c]:>12} {summary.rejected_at_top[c]:>15}"
            for c in causes]
    if summary.unknown:
        out.append(f"({summary.unknown} report(s) name a cause this knowledge base does not have)")
    for top, count in summary.rejected_at_top.most_common():
        out += ["", f"{top} ranked first and rejected in {count} conversation(s); the supporting rules that held there:"]
        out += [f"  {n:>4}  {cause} supports[{index}]: {said}"
                for (cause, index, said), n in sorted(summary.held[top].items(), key=lambda i: (-i[1], i[0]))]
    if not causes:
        out.append("no feedback stored")
    return out
