"""The user's own words → symptom facts and the setup they state; free-text answers → contract facts.

People describe a training run the way they would on a forum: "loss is nan after epoch 2",
"stuck at 50%", "val_loss goes up". Reasoning needs those as facts it can test, each
citing the words it came from, so that a reply can say *why* it suspects a cause.

What the words mean is knowledge, in ``knowledge/phrases.yaml`` (``kb.phrases``): what each
yes/no symptom sounds like, which symptom explains the same words better, the negation words,
what a number measures and what it implies, how a reply names a contract key. This module is
the mechanism: it splits the text into sentences and clauses, drops a phrase that a negation
word among the :data:`NEGATION_WINDOW` words before it cancels ("the loss is not nan"), reads
each number with the subject before it, and quotes the user's words in every fact's note.
"""
from __future__ import annotations

import math
import re
from bisect import bisect_right
from dataclasses import dataclass
from typing import Any, Callable, Collection, Iterable, Iterator

from .facts import EvidenceError, Fact
from ..kb import KnowledgeBase
from ..kb.model import Phrases, Remedies, squash
from ..kb.phrases import MEASURED, NAME_MARK, THOUSANDS
from .inputs import coerce

#: The facts :func:`symptom_facts` reads from numbers and epochs rather than from a phrase.
NUMBER_FACTS = frozenset({"symptom_nan_epoch", "symptom_first_loss", "symptom_max_loss", "symptom_loss_value",
                          "symptom_accuracy", "symptom_train_accuracy", "symptom_val_accuracy", "symptom_gap"})


def produces(kb: KnowledgeBase) -> frozenset[str]:
    """Every fact :func:`symptom_facts` may emit: the symptoms of phrases.yaml, and those read from numbers.

    ``assistant kb check`` refuses a symptom fact of facts.yaml that nothing here produces.
    """
    return frozenset(kb.phrases.order) | NUMBER_FACTS


#: The yes/no symptom whose sentence names the epoch it started in (``symptom_nan_epoch``).
NAN = "symptom_loss_nan"
#: Words before a phrase, in its clause, where a negation word cancels it.
NEGATION_WINDOW = 3
#: A number's note quotes its subject too when it is at most this many characters before it.
QUOTE_REACH = 60
#: Texts longer than this are read only this far (a symptom is a chat message, not a log).
MAX_TEXT = 20_000

#: A link: its words name a page ("keras-loss-nan-fix", "tfjs-training-regression"), not the user's run.
_LINK = re.compile(r"\b(?:https?://|www\.)[^\s)\]>\"']+", re.I)


def _prose(text: str) -> str:
    """The words to read: the first ``MAX_TEXT`` characters, one apostrophe, links blanked out (in place,
    so that every position still points into the message as written)."""
    text = text[:MAX_TEXT].replace("\u2019", "'")
    return _LINK.sub(lambda link: " " * len(link[0]), text)


_SENTENCE = re.compile(r"[.!?](?!\d)|[\n。！？]")  # the full stops of Chinese and Japanese too


def _clause_start(p: Phrases, text: str, position: int) -> int:
    starts = [m.end() for m in p.clause.finditer(text, 0, position)]
    return starts[-1] if starts else 0


def _clause_end(p: Phrases, text: str, position: int) -> int:
    found = p.clause.search(text, position)
    return found.start() if found else len(text)


def _quote(p: Phrases, text: str, start: int, end: int, limit: int = 90) -> str:
    """The user's clause around ``text[start:end]``, cut to about ``limit`` characters."""
    left = min(_clause_start(p, text, start), start)
    right = max(_clause_end(p, text, end), end)
    if right - left > limit:
        room = max(0, (limit - (end - start)) // 2)
        left, right = max(left, start - room), min(right, end + room)
    return " ".join(text[left:right].split())


def _note(p: Phrases, text: str, start: int, end: int) -> str:
    return f'you wrote "{_quote(p, text, start, end)}"'


def _negated(p: Phrases, text: str, start: int, clause_start: int | None = None) -> bool:
    """A negation word just before ``start``, or a doubt anywhere before it, in the same clause."""
    begin = _clause_start(p, text, start) if clause_start is None else clause_start
    words = text[begin:start].split()[-NEGATION_WINDOW:]
    return any(p.negation.match(word.strip("\"'.,!?")) for word in words) or bool(p.doubt.search(text, begin, start))


def _phrase_hits(p: Phrases, text: str, keys: Collection[str] | None = None) -> dict[str, tuple[int, int]]:
    """Where each boolean symptom (of ``keys``, or all) first shows in ``text`` without a negation before it."""
    hits: dict[str, tuple[int, int]] = {}
    for key, patterns in p.symptoms.items() if keys is None else ((k, p.symptoms[k]) for k in keys if k in p.symptoms):
        match = next((m for rx in patterns for m in rx.finditer(text) if not _negated(p, text, m.start())), None)
        if match:
            hits[key] = match.span()
    return hits


def _found(p: Phrases, forms: Iterable[re.Pattern[str]], text: str) -> list[tuple[str, tuple[int, int]]]:
    """Each match of ``forms`` without a negation before it: the symptom of the change it names (the group that
    matched), and its span to the end of its clause."""
    found = []
    for rx in forms:
        for m in rx.finditer(text):
            if not _negated(p, text, m.start()):
                key = next(key for key, value in m.groupdict().items() if value is not None)
                found.append((key, (m.start(), _clause_end(p, text, m.end()))))
    return found


def _remedies(p: Phrases, text: str) -> list[tuple[str, tuple[int, int]]]:
    """Where the text says a change made the run work ("after normalizing it reached 95%"), with the symptom its
    change shows: the settings and numbers there are the changed ones, not those of the run in question."""
    return _found(p, Remedies.able(p.remedies.helped, text), text)


def _within(spans: Iterable[tuple[int, int]], position: int) -> bool:
    return any(start <= position < end for start, end in spans)


def _drop_outranked(p: Phrases, hits: dict[str, tuple[int, int]]) -> None:
    for winner, losers in p.outranks.items():
        if winner in hits:
            for loser in losers:
                hits.pop(loser, None)


@dataclass(frozen=True)
class Mention:
    """A number in the user's text, what it measures, and the words that say so."""

    subject: str  # a subject of phrases.yaml, or "" when none came before it
    value: float
    percent: bool
    role: str  # "first", "worst" or "value"
    words: tuple[int, int]  # from the subject to the number


def _spans(text: str) -> Iterator[tuple[int, int]]:
    start = 0
    for boundary in _SENTENCE.finditer(text):
        yield start, boundary.start()
        start = boundary.end()
    yield start, len(text)


def _role(p: Phrases, text: str, previous: int, number: re.Match, following: int) -> str:
    """Whether a loss number is the first one, the worst one, or simply the loss."""
    before = text[max(previous, _clause_start(p, text, number.start())):number.start()]
    after = text[number.end():min(following, _clause_end(p, text, number.end()))]
    if p.worst.search(before) or p.worst.search(after):
        return "worst"
    if p.first_before.search(before) or p.first_after.search(after):
        return "first"
    return "value"


def _skipped(p: Phrases, text: str, start: int, number: re.Match) -> bool:
    preceding = text[start:number.start()]
    return bool(p.count_noun.match(text, number.end()) or p.versus.match(text, number.end())
                or (p.bound.search(preceding) and not p.floor.search(preceding)) or p.position.search(preceding))


def _mentions(p: Phrases, text: str) -> Iterator[Mention]:
    """Each number with the subject it belongs to; counts, positions and bounds are skipped."""
    for start, end in _spans(text):
        subjects = [(m.start(), m.lastgroup) for m in p.subject.finditer(text, start, end)]
        numbers = list(p.number.finditer(text, start, end))
        for i, number in enumerate(numbers):
            raw = number["value"].replace(",", "")
            value = 0.0 if p.zero.fullmatch(raw) else float(raw)
            if _skipped(p, text, start, number) or not math.isfinite(value):
                continue
            at, subject = next(((at, name) for at, name in reversed(subjects) if at < number.start()),
                               (number.start(), ""))
            named_after = p.subject_after.match(text, number.end(), end)
            if named_after and (subject in ("", "val") or subject.endswith("accuracy")):  # a loss stays a loss
                at, subject = number.start(), named_after.lastgroup
            previous = numbers[i - 1].end() if i else start
            following = numbers[i + 1].start() if i + 1 < len(numbers) else end
            quoted = max(at, previous) if number.start() - at <= QUOTE_REACH else number.start()
            yield Mention(subject, value, bool(number["percent"]), _role(p, text, previous, number, following),
                          (quoted, number.end()))


def _fraction(mention: Mention) -> float | None:
    """An accuracy-like number as a fraction: 52% and 52 and 0.52 all mean 0.52."""
    value = mention.value / 100 if mention.percent or mention.value > 1 else mention.value
    return value if 0 <= value <= 1 else None


def _measured(mentions: list[Mention]) -> dict[str, list[tuple[float, Mention]]]:
    """Numbers by the quantity they measure (loss, accuracy, val_accuracy, …), in text order."""
    found: dict[str, list[tuple[float, Mention]]] = {}
    for m in mentions:
        subject = m.subject
        if subject in ("", "val"):  # a bare "stuck at 50%" is an accuracy
            if not m.percent:
                continue
            subject = "val_accuracy" if subject == "val" else "accuracy"
        if subject == "loss":
            value = None if m.percent else m.value
        elif subject in MEASURED:
            value = _fraction(m)
        else:
            continue
        if value is not None:
            found.setdefault(subject, []).append((value, m))
    return found


def _number_facts(p: Phrases, text: str, measured: dict[str, list[tuple[float, Mention]]],
                  source: str) -> list[Fact]:
    def fact(key: str, value: Any, mention: Mention) -> Fact:
        return Fact(key, value, source, _note(p, text, *mention.words))

    facts: list[Fact] = []
    losses = measured.get("loss", [])
    by_role = {role: [(v, m) for v, m in losses if m.role == role] for role in ("first", "worst", "value")}
    if by_role["first"]:
        facts.append(fact("symptom_first_loss", *by_role["first"][0]))
    if by_role["worst"]:
        facts.append(fact("symptom_max_loss", *max(by_role["worst"], key=lambda vm: vm[0])))
    if by_role["value"]:
        facts.append(fact("symptom_loss_value", *by_role["value"][-1]))
    for subject in ("accuracy", "train_accuracy", "val_accuracy"):
        if measured.get(subject):
            facts.append(fact(f"symptom_{subject}", *measured[subject][-1]))
    return facts


def _implied(p: Phrases, measured: dict[str, list[tuple[float, Mention]]]) -> dict[str, Mention]:
    """Boolean symptoms that the stated numbers imply, with the number that shows each."""
    implied: dict[str, Mention] = {}
    for rule in p.implied:
        numbers = measured.get(rule.subject, [])
        if rule.minus is None:
            shown = next((m for v, m in numbers if rule.holds(v)), None)
        else:
            other = measured.get(rule.minus, [])
            shown = other[-1][1] if numbers and other and rule.holds(numbers[-1][0] - other[-1][0]) else None
        if shown is not None:
            implied[rule.symptom] = shown
    return implied


def _nan_epoch(p: Phrases, text: str, position: int, source: str) -> Fact | None:
    """The epoch named in the sentence where the loss went NaN ("nan after epoch 2" → 2)."""
    start, end = next((s, e) for s, e in _spans(text) if s <= position <= e)
    found = p.epoch.search(text, start, end)
    if found is None:
        return None
    return Fact("symptom_nan_epoch", int(found[1] or found[2]), source, _note(p, text, *found.span()))


def symptom_facts(kb: KnowledgeBase, text: str, *, source: str = "your message") -> list[Fact]:
    """Symptom facts (``symptom_*`` keys) found in the user's description of their run."""
    if not isinstance(text, str):
        raise EvidenceError("the symptom must be text", field="symptom")
    p = kb.phrases
    text = _prose(text)
    hits, remedied = _heard(p, text)
    measured = _measured([m for m in _mentions(p, text) if not _within(remedied, m.words[1] - 1)])
    for key, mention in _implied(p, measured).items():
        hits.setdefault(key, mention.words)
    _drop_outranked(p, hits)
    facts = [Fact(key, True, source, _note(p, text, *hits[key])) for key in p.order if key in hits]
    epoch = _nan_epoch(p, text, hits[NAN][0], source) if NAN in hits else None
    return facts + ([epoch] if epoch else []) + _number_facts(p, text, measured, source)


def _heard(p: Phrases, text: str, keys: Collection[str] | None = None) -> tuple[dict[str, tuple[int, int]],
                                                                                  list[tuple[int, int]]]:
    """The symptoms (of ``keys``, or all) that ``text``'s phrases and remedies show, where; and the spans that say a
    change made the run work, whose settings and numbers are not the run's."""
    hits = _phrase_hits(p, text, keys)
    remedies = _remedies(p, text)
    for key, span in remedies + _found(p, Remedies.able(p.remedies.futile, text), text):
        hits.setdefault(key, span)
    return hits, [span for _, span in remedies]


def tried_facts(kb: KnowledgeBase, text: str, *, source: str = "your answer") -> list[Fact]:
    """What a later message says of a change the user tried ("lowering the lr fixed it", "clipping didn't
    help"): the remedy symptoms it shows, and nothing else of :func:`symptom_facts` (a reply that does not
    describe the run again does not make its other symptoms false), so nothing else is read."""
    p = kb.phrases
    text = _prose(text)
    hits, _ = _heard(p, text, p.remedies.symptoms)
    return [Fact(key, True, source, _note(p, text, *hits[key])) for key in p.order if key in hits]


# --- Answers to the assistant's questions ----------------------------------------------------

_WORD = re.compile(r"[\w.+-]+%?")

Found = dict[str, tuple[Any, tuple[int, int]]]


def _spoken(kb: KnowledgeBase, key: str, words: list[str]) -> str | None:
    """The known name or choice that the first one to three ``words`` spell, if any."""
    aliases = kb.vocabulary[key].aliases
    return next((aliases[squash(" ".join(words[:n]))] for n in (3, 2, 1)
                 if len(words) >= n and squash(" ".join(words[:n])) in aliases), None)


def _value(kb: KnowledgeBase, key: str, raw: str, *, open_names: bool = False) -> Any:
    """``raw`` read as a value of ``key``, or None; names must be known unless ``open_names``."""
    spec = kb.vocabulary[key]
    words = raw.split()
    if spec.type in ("choice", "name"):
        known = _spoken(kb, key, words)
        return known if known or not open_names else _coerced(kb, key, words[0])
    token: Any = words[0].rstrip(".,")
    if re.fullmatch(THOUSANDS, token):
        token = token.replace(",", "")
    if token.endswith("%") and spec.type == "number":
        try:
            token = float(token[:-1]) / 100
        except ValueError:
            return None
    return _coerced(kb, key, token)


def _coerced(kb: KnowledgeBase, key: str, value: Any) -> Any:
    try:
        return coerce(kb, key, value)
    except EvidenceError:
        return None


def _only(kb: KnowledgeBase, asked: list[str], *types: str) -> str | None:
    """The one asked key of these types, if exactly one was asked."""
    keys = [key for key in asked if kb.vocabulary[key].type in types]
    return keys[0] if len(keys) == 1 else None


def _yes_no(kb: KnowledgeBase, text: str, asked: list[str]) -> Found:
    """"yes"/"no" (or a plain or negated mention) answers the one yes/no question asked."""
    p = kb.phrases
    key = _only(kb, asked, "boolean")
    if key is None:
        return {}
    if p.yes.search(text) or p.no.search(text):
        return {key: (bool(p.yes.search(text)), (0, len(text)))}
    mention = p.keys[key].mention.search(text) if key in p.keys else None
    return {key: (not _negated(p, text, mention.start()), mention.span())} if mention else {}


def _bare_name(kb: KnowledgeBase, text: str, asked: list[str]) -> Found:
    """A known name anywhere in the reply ("I use adam") answers the one name question asked."""
    key = _only(kb, asked, "choice", "name")
    words = list(_WORD.finditer(text))
    for i, word in enumerate(words if key else []):
        value = _value(kb, key, " ".join(w[0] for w in words[i:i + 3]), open_names=len(words) == 1)
        if value is not None:
            return {key: (value, word.span())}
    return {}


def _bare_number(kb: KnowledgeBase, text: str, asked: list[str]) -> Found:
    """The only number in the reply ("0.001", "about 50 epochs") answers the one number question."""
    p = kb.phrases
    key = _only(kb, asked, "number", "integer")
    if key is None:
        return {}
    counted = p.keys[key].counted.search(text) if key in p.keys else None
    numbers = [m for m in p.number.finditer(text) if not p.zero.fullmatch(m["value"])]
    match = counted or (numbers[0] if len(numbers) == 1 else None)
    if match is None:
        return {}
    value = _value(kb, key, match["value"] + ("%" if match.groupdict().get("percent") else ""))
    return {} if value is None else {key: (value, match.span())}


#: Ways a reply answers without naming the key, tried in order.
REPLY_READERS: tuple[Callable[[KnowledgeBase, str, list[str]], Found], ...] = (_yes_no, _bare_name, _bare_number)


def _named_values(kb: KnowledgeBase, text: str) -> Iterator[tuple[str, Any, tuple[int, int]]]:
    """Every value given with its key's name ("lr was 0.5"), key by key: the key, the value, the words."""
    for key, phrase in kb.phrases.keys.items():
        for match in phrase.named.finditer(text):
            value = _value(kb, key, match["value"])
            if value is not None:
                yield key, value, (match.start(), match.start("value") + len(match["value"].split()[0]))


def _negated_mentions(kb: KnowledgeBase, text: str) -> Iterator[tuple[str, tuple[int, int]]]:
    """Yes/no keys mentioned with a negation before them ("no batch norm"), key by key."""
    p = kb.phrases
    for key, phrase in p.keys.items():
        if kb.vocabulary[key].type == "boolean":
            for mention in phrase.mention.finditer(text):
                if _negated(p, text, mention.start()):
                    yield key, mention.span()


def _named(kb: KnowledgeBase, text: str, sure: bool) -> Found:
    """Values given with the key's name: "lr was 0.5", "loss = mse", "no batch norm"."""
    found: Found = {}
    for key, value, span in _named_values(kb, text):
        found.setdefault(key, (value, span))
    for key, span in _negated_mentions(kb, text) if sure else ():
        found.setdefault(key, (False, span))
    return found


def answer_facts(kb: KnowledgeBase, text: str, asked: list[str], *, source: str = "your answer") -> list[Fact]:
    """Contract facts in a free-text reply to questions about the ``asked`` fact keys.

    Values named with their key ("learning rate = 1e-3") are read whatever was asked; a bare
    "yes", "adam" or "0.5" answers the one asked key it fits. "I don't know" gives nothing.
    """
    if not isinstance(text, str):
        raise EvidenceError("the answer must be text", field="text")
    text = _prose(text)
    asked = [key for key in asked if key in kb.vocabulary]
    sure = not kb.phrases.dont_know.search(text)
    found: Found = {}
    for reader in REPLY_READERS if sure else ():
        found.update(reader(kb, text, asked))
    found.update(_named(kb, text, sure))
    return [Fact(key, value, source, _note(kb.phrases, text, *span)) for key, (value, span) in found.items()]


# --- The setup said in prose -----------------------------------------------------------------

#: A run of letters and digits: the pieces a Keras name is spelled with ("binary", "cross", "entropy").
_TOKEN = re.compile(r"[^\W_]+")
#: What may stand between the pieces of one name: "binary_crossentropy", "cross-entropy", "mean squared".
_JOIN = re.compile(r"[ _-]{1,2}")
#: The most pieces a Keras name is written with ("sparse categorical cross entropy" has four).
NAME_PIECES = 5
#: A Keras name is not read when the text right before it, this far back on its line, says it is something else.
NAME_REACH = 60
#: How far back (characters) a negation, a hedge or the words before a count are looked for.
REACH = 200


class _Reading:
    """One text read for its setup: its clause and hedge boundaries, found once, and the checks on a place in it."""

    def __init__(self, kb: KnowledgeBase, text: str) -> None:
        self.kb, self.p, self.text = kb, kb.phrases, text
        self._clauses = [m.end() for m in self.p.clause.finditer(text)]
        self._hedge_ends = [m.end() for m in self.p.stated.hedge_ends.finditer(text)]

    @staticmethod
    def _after_last(ends: list[int], position: int) -> int:
        i = bisect_right(ends, position)
        return ends[i - 1] if i else 0

    def clause_start(self, position: int) -> int:
        """Where the clause of ``position`` starts, at most :data:`REACH` characters back."""
        return max(self._after_last(self._clauses, position), position - REACH)

    def negated(self, start: int) -> bool:
        return _negated(self.p, self.text, start, self.clause_start(start))

    def hedged(self, start: int) -> bool:
        """The sentence before ``start`` (since its last "but") says the value was tried or compared, not used."""
        begin = max(self._after_last(self._hedge_ends, start), start - REACH)
        return bool(self.p.stated.hedges.search(self.text, begin, start))

    def doubtful(self, start: int) -> bool:
        return self.negated(start) or self.hedged(start)


Say = Callable[[str, Any, tuple[int, int]], None]


def _said_with_key(r: _Reading, sure: bool, say: Say) -> None:
    """Values given with the key's name, as in answers ("lr was 0.5", "batch size 32", "no batch norm").

    One of several numbers ("lr 0.1, 0.01 and 0.001") is skipped, and so is a number that counts
    something else ("hidden layers of 64 units").
    """
    kb, p, s, text = r.kb, r.p, r.p.stated, r.text
    for key, value, (start, end) in _named_values(kb, text):
        counted = kb.vocabulary[key].type in ("number", "integer") and p.count_noun.match(text, end)
        other_set = key in s.counts and s.not_before.search(text, r.clause_start(start), start)
        if not (r.doubtful(start) or s.several_after.match(text, end) or counted or other_set):
            say(key, value, (start, end))
    for key, span in _negated_mentions(kb, text) if sure else ():
        if not r.hedged(span[0]):
            say(key, False, span)


def _said_counts(r: _Reading, sure: bool, say: Say) -> None:
    """Counts said in prose: "10 classes", "only 300 images", "trained for 3 epochs"."""
    s, text = r.p.stated, r.text
    for key, phrases in s.counts.items():
        for match in (m for rx in phrases for m in rx.finditer(text)):
            at = match.start("count")
            begin = r.clause_start(at)
            if (r.negated(match.start()) or r.hedged(at) or s.not_before.search(text, begin, at)
                    or s.several_before.search(text, begin, at) or s.not_after.match(text, match.end())):
                continue
            word = " ".join(match["count"].lower().split())
            say(key, s.counting[word] if word in s.counting else int(word.replace(",", "")), match.span())


def _said_values(r: _Reading, sure: bool, say: Say) -> None:
    """Values said in words: "binary classification", "raw pixels", "I don't use dropout"."""
    s, text = r.p.stated, r.text
    for key, by_value in s.values.items():
        unless = s.unless.get(key)

        def fits(start: int) -> bool:
            return not (r.doubtful(start) or (unless and unless.search(text, r.clause_start(start), start)))

        hits = {}
        for value, phrases in by_value.items():
            hit = next((m for rx in phrases for m in rx.finditer(text) if fits(m.start())), None)
            if hit:
                hits[value] = hit.span()
        for winner, losers in s.outranks.get(key, {}).items():
            for loser in losers if winner in hits else ():
                hits.pop(loser, None)
        for value, span in hits.items():
            say(key, value, span)


def _keras_names(kb: KnowledgeBase, key: str, text: str) -> dict[int, tuple[int, str]]:
    """Where ``text`` writes a known name of ``key`` (a Keras name), in any spelling: start → (end, name).

    Names are compared squashed (``squash``), so a name is a run of pieces whose letters, joined,
    spell a known alias: the longest run from each piece on wins.
    """
    aliases, prefixes = kb.vocabulary[key].aliases, kb.vocabulary[key].prefixes
    tokens = list(_TOKEN.finditer(text))
    found: dict[int, tuple[int, str]] = {}
    i = 0
    while i < len(tokens):
        spelled, best = "", None
        for n in range(min(NAME_PIECES, len(tokens) - i)):
            if n and not _JOIN.fullmatch(text, tokens[i + n - 1].end(), tokens[i + n].start()):
                break
            spelled += tokens[i + n][0].lower()
            if spelled not in prefixes:
                break
            if spelled in aliases:
                best = n + 1
        start, end = tokens[i].start(), tokens[i + best - 1].end() if best else 0
        if best and not (re.match(r"[\w-]", text[start - 1:start]) or re.match(r"[\w-]", text[end:end + 1])):
            found[start] = (end, aliases[squash(text[start:end])])
            i += best
        else:
            i += 1
    return found


def _said_names(r: _Reading, sure: bool, say: Say) -> None:
    """Keras names said of a setting: "I use Adam", "categorical crossentropy", "sigmoid output"."""
    s, text = r.p.stated, r.text
    for key, phrases in s.names.items():
        names = _keras_names(r.kb, key, text)
        masked, last = [], 0
        for start, (end, _) in sorted(names.items()):
            masked += [text[last:start], NAME_MARK * (end - start)]
            last = end
        masked_text = "".join(masked) + text[last:]
        for match in (m for rx in phrases for m in rx.finditer(masked_text)):
            start, end = match.span("name")
            if names.get(start, (None,))[0] != end:
                continue
            alone = match.span() == (start, end)
            line = max(text.rfind("\n", 0, start) + 1, start - NAME_REACH)
            if ((alone and squash(text[start:end]) in s.ordinary) or r.doubtful(match.start())
                    or s.name_not_after.search(text, line, start)):
                continue
            say(key, names[start][1], match.span())


#: The readers of :func:`stated_facts`, each given the text, whether the user sounds sure, and where to say a value.
STATED_READERS: tuple[Callable[[_Reading, bool, Say], None], ...] = (
    _said_with_key, _said_counts, _said_values, _said_names)


def _defaults(r: _Reading, said: dict[str, list[tuple[Any, tuple[int, int]]]],
              known: dict[str, tuple[Any, tuple[int, int]]]) -> None:
    """A setting said to be at its default ("the default adam lr"): Keras's default for the stated name."""
    kb = r.kb
    for key, default in r.p.stated.defaults.items():
        if key in said or default.of not in known:
            continue
        hit = next((m for rx in default.phrases for m in rx.finditer(r.text) if not r.doubtful(m.start())), None)
        value = kb.keras.get(default.table, known[default.of][0], default.property)
        value = _coerced(kb, key, value) if hit and value is not None else None
        if value is not None:
            known[key] = (value, hit.span())


def stated_facts(kb: KnowledgeBase, text: str, *, source: str = "your message") -> list[Fact]:
    """Contract facts (``kind: input``) the user states in their own words, each quoting them.

    "binary classification", "only 300 images", "trained for 3 epochs", "I use Adam", "lr 1e-5",
    "sigmoid output", "the lr is the default adam one". What each sounds like is in
    ``phrases.yaml`` (``stated:``, and ``answers: keys`` for values said with the key's name).
    A key given two different values in one text ("I tried Adam and SGD") gives no fact: a wrong
    fact misleads more than a missing one.
    """
    if not isinstance(text, str):
        raise EvidenceError("the message must be text", field="symptom")
    text = _prose(text)
    said: dict[str, list[tuple[Any, tuple[int, int]]]] = {}
    remedied = [span for _, span in _remedies(kb.phrases, text)]

    def say(key: str, value: Any, span: tuple[int, int]) -> None:
        value = _coerced(kb, key, value)
        if value is not None and not _within(remedied, span[0]):
            said.setdefault(key, []).append((value, span))

    reading = _Reading(kb, text)
    sure = not kb.phrases.dont_know.search(text)
    for reader in STATED_READERS:
        reader(reading, sure, say)
    for rule in kb.phrases.stated.implied:  # "10 classes" also says the task is multiclass
        for value, span in said.get(rule.fact, ()):
            if rule.holds(value):
                say(rule.key, rule.value, span)
    known = {key: min(found, key=lambda vs: vs[1]) for key, found in said.items()
             if len({repr(value) for value, _ in found}) == 1}
    _defaults(reading, said, known)
    return [Fact(key, value, source, _note(kb.phrases, text, *span))
            for key, (value, span) in sorted(known.items(), key=lambda item: item[1][1])]
