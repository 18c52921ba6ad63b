"""Evidence: every input the user sends, turned into one flat list of typed facts with provenance."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from ..kb import KnowledgeBase, words
from . import code, curves, limits, symptom
from .curves import curve_facts
from .facts import EvidenceError, Fact, Facts
from .inputs import coerce, contract_facts
from .metrics import parse_metrics, pasted_log
from .symptom import answer_facts, stated_facts, symptom_facts, tried_facts

__all__ = ["SETTINGS", "Evidence", "EvidenceError", "Fact", "Facts", "gather", "produces"]


@dataclass
class Evidence:
    """What one turn's inputs established, plus the parsed history for plotting."""

    facts: list[Fact]
    history: dict[str, list] | None = None


def produces(kb: KnowledgeBase) -> frozenset[str]:
    """Every measured fact the readers may emit (kinds ``curve``, ``symptom`` and ``code``), as each reader declares it."""
    return curves.PRODUCES | symptom.produces(kb) | code.PRODUCES


#: Where the settings a client sends come from: a dataset summary, a training configuration, a data sample.
DATASET, TRAINING, SAMPLE = "the dataset summary you sent", "the training config you sent", "your data sample"
SETTINGS = frozenset({DATASET, TRAINING, SAMPLE})


def _code_facts(kb: KnowledgeBase, text: str) -> list[Fact]:
    """The facts of the Keras code pasted into ``text``, contract values in their canonical spelling.

    A value the contract cannot read (a name that is no identifier) is left out: the code said
    something, but nothing a rule can use.
    """
    found = []
    for fact in code.read_code(kb.keras, text):
        if fact.key in kb.vocabulary:
            try:
                fact = Fact(fact.key, coerce(kb, fact.key, fact.value), fact.source, fact.note)
            except EvidenceError:
                continue
        found.append(fact)
    return found


def _absent(kb: KnowledgeBase, kind: str, found: list[Fact], source: str) -> list[Fact]:
    """Yes/no signs of a fully read input that the parser did not find: known to be false."""
    seen = {f.key for f in found}
    return [Fact(key, False, source) for key in kb.signs(kind) if key not in seen]


#: Where the facts about reading the history come from.
_SENT = "the training log you sent"


def _unread(reason: str) -> list[Fact]:
    """A log from which nothing could be read: the turn is answered from the words, and the reply says why."""
    return [Fact("history_unreadable", True, _SENT, f"could not read the training log: {reason}"),
            Fact("history_partial", False, _SENT), Fact("history_unread", reason, _SENT)]


def gather(kb: KnowledgeBase, *, symptom: str | None = None, text: str | None = None, asked: Sequence[str] = (),
           metrics: Any = None, metrics_filename: str | None = None, dataset: dict | None = None,
           training: dict | None = None, facts: dict | None = None,
           sample: str | bytes | None = None) -> Evidence:
    """Parse every input of one turn; raises EvidenceError naming the first bad one.

    Metrics sent as text (a pasted log, an uploaded file) never fail the turn: what cannot be
    read of them is stated as facts (``history_unreadable``, ``history_partial``, ``history_unread``)
    that the reply reads out. Without metrics, a Keras console log pasted among the words is read
    as the history, whichever channel the words came by.
    """
    found: list[Fact] = []
    history_json = None
    # A later fact about a key replaces an earlier one: the setup said in prose comes before what
    # pasted code states, and both before the mappings the client sends.
    if symptom:
        said = symptom_facts(kb, symptom)
        stated = limits.checked(stated_facts(kb, symptom) + _code_facts(kb, symptom), "symptom")
        found += said + _absent(kb, "symptom", said, "your message") + stated
        if kb.words is not None:  # what the learned text model reads in the words, for the reasoning to weigh
            found.append(Fact(words.FACT, kb.words.probabilities(symptom), "your message"))
    if text:
        answered = answer_facts(kb, text, list(asked))
        read = {fact.key for fact in answered}
        said = [fact for fact in stated_facts(kb, text, source="your answer") if fact.key not in read]
        found += limits.checked(said + answered + _code_facts(kb, text), "text") + tried_facts(kb, text)
    among_words = (metrics is None or metrics == "") and bool(symptom or text)
    if among_words:  # a log pasted among the words is the history when none was sent
        metrics = pasted_log(symptom or text or "")
    if metrics is not None and metrics != "":
        pasted = isinstance(metrics, (str, bytes, bytearray))  # a log or file as the user has it, not a client's JSON
        try:
            history = parse_metrics(metrics, filename=metrics_filename, lenient=pasted)
        except EvidenceError as error:
            if not pasted:
                raise
            if not among_words:  # words that only mention an epoch ("at Epoch 3/10 it turns NaN") sent no log
                found += _unread(error.message)
        else:
            measured = curve_facts(kb, history)
            if history.skipped:
                left_out = "; ".join(history.skipped)
                measured += [Fact("history_partial", True, _SENT, f"left out of the training log: {left_out}"),
                             Fact("history_unread", left_out, _SENT)]
            absent = _absent(kb, "curve", measured, f"the whole {history.format} history")
            found += measured + [fact for fact in absent if curves.told_absent(fact.key, history)]
            history_json = {"epoch": history.epochs, **history.columns}
    if sample is not None:
        from .sample import summarize_sample  # pandas: loaded only by the workers that are sent a data sample

        found += limits.checked(contract_facts(kb, summarize_sample(sample), source=SAMPLE, field="sample"), "sample")
    for field, mapping, source in (("dataset", dataset, DATASET),
                                   ("training", training, TRAINING),
                                   ("facts", facts, "your answer")):
        if mapping:
            found += limits.checked(contract_facts(kb, mapping, source=source, field=field), field)
    return Evidence(found, history_json)
