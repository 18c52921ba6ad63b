"""Evidence: every input the user sends, turned into one flat list of typed facts with provenance."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from .curves import curve_facts
from .facts import EvidenceError, Fact, Facts
from .inputs import contract_facts
from .metrics import parse_metrics
from .symptom import answer_facts, symptom_facts
from .vocabulary import signs

__all__ = ["Evidence", "EvidenceError", "Fact", "Facts", "gather"]


@dataclass
class Evidence:
    """What one turn's inputs established, plus the parsed history for plotting."""

    facts: list[Fact]
    history: dict[str, list] | None = None


def _absent(kind: str, found: list[Fact], source: str) -> list[Fact]:
    """Yes/no signs of a fully read input that the parser did not find: known to be false."""
    seen = {f.key for f in found}
    return [Fact(key, False, source) for key in signs(kind) if key not in seen]


def gather(*, symptom: str | None = None, text: str | None = None, asked: Sequence[str] = (),
           metrics: Any = None, metrics_filename: str | None = None, dataset: dict | None = None,
           training: dict | None = None, facts: dict | None = None,
           sample: str | bytes | None = None) -> Evidence:
    """Parse every input of one turn; raises EvidenceError naming the first bad one."""
    found: list[Fact] = []
    history_json = None
    if symptom:
        said = symptom_facts(symptom)
        found += said + _absent("symptom", said, "your message")
    if text:
        found += answer_facts(text, list(asked))
    if metrics is not None and metrics != "":
        history = parse_metrics(metrics, filename=metrics_filename)
        measured = curve_facts(history)
        found += measured + _absent("curve", measured, f"the whole {history.format} history")
        history_json = {"epoch": history.epochs, **history.columns}
    if sample is not None:
        from .sample import summarize_sample  # pandas: loaded only by the workers that are sent a data sample

        found += contract_facts(summarize_sample(sample), source="your data sample", field="sample")
    for field, mapping, source in (("dataset", dataset, "the dataset summary you sent"),
                                   ("training", training, "the training config you sent"),
                                   ("facts", facts, "your answer")):
        if mapping:
            found += contract_facts(mapping, source=source, field=field)
    return Evidence(found, history_json)
