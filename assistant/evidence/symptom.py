"""The user's own words → symptom facts, and free-text answers → contract facts.

People describe a training run the way they would on a forum: "loss is nan after epoch 2",
"stuck at 50%", "val_loss goes up". Reasoning needs those as facts it can test, each
citing the words it came from, so that a reply can say *why* it suspects a cause.

Everything this module recognises is in the tables below, in the order they are used:
:data:`PHRASES` (what each boolean symptom sounds like), :data:`OUTRANKS` (which symptom
explains the same words better), :data:`SUBJECTS` (what a number measures), and
:data:`NUMBER_SYMPTOMS` (what a stated number implies). Phrases are regular expressions
with a few named building blocks, :data:`MACROS`, written ``{name}``. A phrase does not
count when a negation stands just before it in the same clause ("the loss is not nan").
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from .facts import EvidenceError, Fact
from .inputs import VOCABULARY, coerce, squash

#: A negation word: "not", "no", "never", "doesn't", "doesnt", "cannot", …
NEGATION = (r"(?:\b(?:not|no|never|without|nor|cannot)\b|n't\b"
            r"|\b(?:do|does|did|is|are|was|were|has|have|had|ca|wo|would|could|should)nt\b)")

#: A word that turns a sentence around: "loss goes down *but* accuracy stays at 0".
CONTRAST = r"\b(?:but|while|yet|however|though|although|whereas)\b"

#: Building blocks for :data:`PHRASES`, written ``{name}``.
MACROS = {
    # A negated verb: "doesn't", "does not", "won't", "never", "isn't", "not".
    "not": r"(?:\b(?:do|does|did|is|are|was|were|has|have|had|ca|wo|would|could)n'?t"
           r"|\b(?:do|does|did|is|are|was|were|will|can|would|could)\s+not|\bnever|\bcannot|\bnot)\b",
    # Up to 60 characters of one clause, without a negation or a "but": "loss{gap}increases".
    "gap": rf"(?:(?!{NEGATION}|{CONTRAST})(?:[^.;!?\n]|\.(?=\d))){{0,60}}?",
    # Validation (or test) as a prefix of a metric name: "val_", "validation ", "test ".
    "val": r"\b(?:val(?:idation)?|test)[ _-]?",
    # A metric other than the loss.
    "metric": r"\b(?:acc(?:uracy)?|metrics?|mae|f1|auc|precision|r2|score)\b",
    # A metric that does not move.
    "stuck": r"(?:\bstay\w*|\bstuck|\bremain\w*|\bflat|\bconstant|\bthe same|(?:\bzero|\b0(?:\.0+)?%?)(?![.\d]))",
    # The loss going the right way.
    "improving": r"(?:go(?:es|ing)? down|went down|decreas\w*|improv\w*|drop\w*|fall\w*|fell|converg\w*"
                 r"|looks? (?:great|good|fine))",
    # A contrast between two halves of a sentence.
    "but": CONTRAST,
}

#: Symptom key → phrases that show it (case-insensitive regular expressions with {macros}).
#: A boolean symptom is emitted, as True, only when a phrase (or a number, see
#: :data:`NUMBER_SYMPTOMS`) shows it; otherwise it is left out.
PHRASES: dict[str, tuple[str, ...]] = {
    "symptom_loss_nan": (
        r"\bnan(?:s|'s)?\b",
        r"\binf(?:inity|inite)?\b",
    ),
    "symptom_loss_flat": (
        r"{not} (?:go|goes|going|gone|come|comes|coming) down\b",
        r"{not} (?:decreas|drop|chang|improv|mov|budg|learn|train|converg|reduc)\w*",
        r"\b(?:barely|hardly|scarcely) (?:even )?(?:mov|chang|decreas|drop|improv|budg|learn|go(?:es)? down)\w*",
        r"\bflat(?:\s*line[sd]?)?\b",
        r"\bstuck\b",
        r"\bnothing (?:seems to be |is |at all )?(?:learn|mov|chang|happen|improv)\w*",
        r"\bno (?:improvement|progress|learning|change)\b",
        r"\b(?:loss|it|acc(?:uracy)?|model|metrics?)\b{gap}\b(?:stay|remain|hover|sit)\w* "
        r"(?:at|around|about|near|close to|the same|constant)\b",
        r"\bplateau\w* (?:right )?(?:from the (?:start|beginning|first epoch)|immediately|from epoch 1)\b",
    ),
    "symptom_plateau": (
        r"\bplateau\w*(?! (?:right )?(?:from the (?:start|beginning|first epoch)|immediately|from epoch 1))",
        r"\bstop(?:s|ped)? (?:improving|decreasing|going down|learning|getting better)\b",
        r"{not} (?:go|goes|get|gets|going|getting|rise|climb|improve) (?:any )?"
        r"(?:above|over|past|beyond|higher|better|lower|below)\b",
        r"\b(?:levels?|level(?:l)?ed|flattens?|flattened) (?:off|out)\b",
        r"\bsaturat\w*",
        r"\b(?:maxe[sd]|tops|topped|caps|capped) out\b",
    ),
    "symptom_slow": (
        r"\bslow(?:ly)? (?:to )?(?:converg|improv|learn|decreas|go(?:es|ing)? down|drop|progress|fall)\w*",
        r"\b(?:converg|improv|learn|decreas|go(?:es|ing)? down|drop|progress|fall)\w*{gap}\bslow(?:ly)?\b",
        r"\b(?:painfully|extremely|very|really|super|too|so|incredibly|awfully) slow(?:ly)?\b",
        r"\btakes? (?:forever|ages|so long|too long)\b",
    ),
    "symptom_val_worse": (
        r"{val}loss(?:es)?{gap}\b(?:goes up|going up|went up|go(?:es)? higher|increas|ris|grow|climb|worsen"
        r"|gets? worse|getting worse|got worse|explod|diverg|shoot|jump)\w*",
        r"{val}acc\w*{gap}\b(?:decreas|drop|fall|fell|goes down|going down|gets? worse|getting worse|worsen)\w*",
        r"\bover-?fit\w*",
    ),
    "symptom_gap": (
        r"\b(?:big|large|huge|massive|wide|significant) (?:gap|difference)\b",
        r"\bgap between (?:the )?(?:train|training)\b",
        r"{val}\w*{gap}\b(?:lower|worse|low)\b{gap}\b(?:than|compared (?:to|with))\b{gap}\btrain",
        r"\btrain\w*{gap}\b(?:higher|better)\b{gap}\bthan\b{gap}{val}",
        r"\bgenerali[sz]\w* (?:poorly|badly)\b",
        r"{not} generali[sz]\w*",
        r"\bmemori[sz]\w*",
    ),
    "symptom_val_near_zero": (
        r"{val}acc\w*{gap}\b(?:near|close to|almost|basically|practically|essentially|about) (?:zero|0)\b",
    ),
    "symptom_same_class": (
        r"\b(?:always|only|just) (?:predict|output|return|give|classif)\w*",
        r"\b(?:predict|output|return)\w* (?:always|only|just)\b",
        r"\bsame (?:class|prediction|output|label)s?\b",
        r"\b(?:predict|output|return|give)\w*{gap}\b(?:same|identical|constant)\b",
        r"\bconstant (?:prediction|output)s?\b",
        r"\bpredict\w* (?:everything|all (?:\w+ )?as)\b",
        r"\bpredictions? (?:are|is) (?:all )?(?:the same|identical|constant)\b",
    ),
    "symptom_huge_loss": (
        r"\bloss(?:es)?{gap}\b(?:huge|enormous|massive|gigantic|astronomical|through the roof|skyrocket\w*"
        r"|(?:very|extremely|crazy|insanely|absurdly|ridiculously|super|way too|really) (?:high|large|big))\b",
        r"\b(?:huge|enormous|massive|gigantic|astronomical|(?:very|extremely|crazy|insanely|absurdly) "
        r"(?:high|large|big)) loss",
        r"\b(?:seems?|looks?|is) (?:\w+ )?crazy\b",
        r"\bcrazy (?:high|large|big|numbers?|values?)\b",
        r"\bin the (?:thousands|millions|billions)\b",
    ),
    "symptom_negative_loss": (
        r"\bnegative (?:loss|values?)\b",
        r"\bloss(?:es)?{gap}\bnegative\b",
        r"\b(?:below|under|less than) (?:zero|0)(?![.\d])",
    ),
    "symptom_zero_loss": (
        r"\bzero loss\b",
    ),
    "symptom_jumpy": (
        r"\bjump\w* (?:up and down|around|all over)",
        r"\bup and down\b",
        r"\boscillat\w*",
        r"\bnoisy\b(?! (?:labels?|data|inputs?|images?|features?))",
        r"\bunstable\b|\binstabilit\w*",
        r"\bspik\w*",
        r"\bfluctuat\w*",
        r"\berratic\w*",
        r"\ball over the place\b",
        r"\bbounc\w*",
        r"\bzig-?zag\w*",
        r"\bwild(?:ly)? (?:swing|vari)\w*",
    ),
    "symptom_metric_stuck": (
        r"\bloss{gap}\b{improving}\b[^.;!?]{0,120}?{but}{gap}{metric}{gap}(?:{stuck}|{not})",
        r"{metric}{gap}(?:{stuck}|{not} \w+)[^.;!?]{0,120}?{but}{gap}\bloss{gap}\b{improving}",
    ),
    "symptom_recall_zero": (
        r"\b(?:zero|0(?:\.0+)?) recall\b",
        r"\bnever (?:predicts?|outputs?|detects?|finds?|gets?) (?:the |a |any )?"
        r"(?:minority|positive|rare|smaller|other|second) class",
        r"\b(?:minority|positive|rare) class (?:is |gets )?never (?:predicted|detected)",
    ),
    "symptom_poor_results": (
        r"\b(?:poor|bad|terrible|awful|horrible|low|lousy|disappointing|mediocre) "
        r"(?:results?|performance|accuracy|predictions?|scores?)\b",
        r"\b(?:results?|performance|accuracy|predictions?|scores?) (?:is|are|was|were|seems?|looks?) "
        r"(?:really |very |quite |so |pretty )?(?:poor|bad|terrible|awful|horrible|low|lousy|disappointing)\b",
        r"{not} (?:perform|work)\w* (?:well|good)\b",
        r"\bperforms? (?:badly|poorly)\b",
    ),
    "symptom_constant_metrics": (
        r"\b(?:metrics?|numbers|values|loss|accuracy|results|logs?|everything)\b{gap}"
        r"\b(?:identical|exactly the same|unchanged|frozen)\b",
        r"\bthe same (?:values? |numbers? )?(?:every|each|for every|for each|in every|across) epochs?\b",
        r"\bidentical (?:every|each|across|for all|between) epochs?\b",
        r"{not} chang\w* at all\b",
    ),
    "symptom_regression": (
        r"\bregress(?:ion|or)\b",
    ),
}

#: When both match, the first symptom explains the user's words better and the others are dropped.
OUTRANKS: dict[str, tuple[str, ...]] = {
    "symptom_metric_stuck": ("symptom_loss_flat",),   # the loss moves; only the metric is stuck
    "symptom_plateau": ("symptom_loss_flat",),        # it learned, then stopped
    "symptom_slow": ("symptom_loss_flat",),           # it moves, slowly
    "symptom_val_near_zero": ("symptom_loss_flat",),  # "val accuracy stays near zero"
}

#: What a number measures: the nearest of these before it in the same sentence.
#: "other" takes numbers that are not symptoms (lr 0.01, TF 2, CIFAR-10).
SUBJECTS: tuple[tuple[str, str], ...] = (
    ("val_loss", r"(?:val(?:idation)?|test)[ _-]?loss(?:es)?"),
    ("val_accuracy", r"(?:val(?:idation)?|test)[ _-]?acc(?:uracy)?"),
    ("train_accuracy", r"train(?:ing)?[ _-]?acc(?:uracy)?"),
    ("loss", r"(?:train(?:ing)?[ _-]?)?loss(?:es)?|mse"),
    ("accuracy", r"acc(?:uracy)?"),
    ("val", r"val(?:idation)?|test(?:ing)?"),
    ("recall", r"recall"),
    ("other", r"precision|f1|auc|mae|rmse|r2|lr|learning[ _-]?rate|batch[ _-]?size|dropout|momentum"
              r"|tf|tensorflow|keras|python|pytorch|torch|cuda|version|cifar|mnist|imagenet|gpus?"),
)

#: A number as people type it: 0.5, .5, 1.376e+08, 30,000, -323, 52%, "zero".
NUMBER = re.compile(
    r"(?<![\w./])(?P<value>-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:e[-+]?\d+)?|-?\.\d+|zero)"
    r"(?P<percent>\s?%|\s?percent\b)?(?![\w/]|\.\d)",
    re.IGNORECASE,
)
#: Counts and positions, not measurements: "15 epochs", "3 layers", "epoch 2", "step 300".
COUNT_NOUN = re.compile(r"\s*(?:epochs?|layers?|units|neurons|classes|samples|images|rows|features|steps"
                        r"|iterations|batches|params|parameters|times|x)\b", re.IGNORECASE)
POSITION = re.compile(r"\b(?:epoch|step|iteration|batch|layer)\s*#?\s*$", re.IGNORECASE)
#: "below zero", "between 0.3 and 5", "98% vs 40%": bounds and comparisons, not a value of one subject.
BOUND = re.compile(r"\b(?:below|under|less than|lower than|between|vs\.?|versus)\s*$"
                   r"|\bbetween\s+\S+\s+and\s*$", re.IGNORECASE)
VERSUS = re.compile(r"\s*(?:vs\.?|versus)\s", re.IGNORECASE)
#: Loss numbers said to be the first ("at the start", "from X to Y") or the worst one.
FIRST_BEFORE = re.compile(r"\b(?:first|initial(?:ly)?|start\w*|begin\w*)\b|\bfrom\s*$", re.IGNORECASE)
FIRST_AFTER = re.compile(r"^\s*(?:to|->|→)\s*$|\b(?:at (?:the )?(?:start|beginning)|initially|at first)\b",
                         re.IGNORECASE)
WORST = re.compile(r"\b(?:worst|peak\w*|max(?:imum)?|highest|spik\w*)\b", re.IGNORECASE)

#: A loss this large is "huge" whatever words came with it.
HUGE_LOSS = 1e5
#: Validation accuracy at or below this is "near zero".
NEAR_ZERO_ACCURACY = 0.05
#: Training accuracy this far above validation accuracy is a generalisation gap.
ACCURACY_GAP = 0.15

#: Symptom key → (measured quantity, test): a number the user gave implies the symptom.
NUMBER_SYMPTOMS: dict[str, tuple[str, Callable[[float], bool]]] = {
    "symptom_zero_loss": ("loss", lambda v: v == 0),
    "symptom_negative_loss": ("loss", lambda v: v < 0),
    "symptom_huge_loss": ("loss", lambda v: v >= HUGE_LOSS),
    "symptom_recall_zero": ("recall", lambda v: v == 0),
    "symptom_val_near_zero": ("val_accuracy", lambda v: v <= NEAR_ZERO_ACCURACY),
}

#: A number's note quotes its subject too when it is at most this many characters before it.
QUOTE_REACH = 60
#: Texts longer than this are read only this far (a symptom is a chat message, not a log).
MAX_TEXT = 20_000

_FLAGS = re.IGNORECASE
_SENTENCE = re.compile(r"[.!?](?!\d)|\n", _FLAGS)
_CLAUSE = re.compile(r"[,;:()\[\]\n]|[.!?](?!\d)|\s-+\s|\b(?:but|and|while|whereas|(?:even )?though|although"
                     r"|however|yet|because|since|so)\b", _FLAGS)
_NEGATION_WINDOW = 3  # words before a phrase that can negate it


def _expand(phrase: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: MACROS.get(m.group(1), m.group(0)), phrase)


_PATTERNS = {key: [re.compile(_expand(p), _FLAGS) for p in phrases] for key, phrases in PHRASES.items()}
_SUBJECT = re.compile("|".join(rf"\b(?P<{name}>{rx})\b" for name, rx in SUBJECTS), _FLAGS)
_NEGATION_WORD = re.compile(r"^(?:not|no|never|without|nor|cannot|neither|\w+n't"
                            r"|(?:do|does|did|is|are|was|were|has|have|had|ca|wo|would|could|should)nt)$", _FLAGS)


def _clause_start(text: str, position: int) -> int:
    starts = [m.end() for m in _CLAUSE.finditer(text, 0, position)]
    return starts[-1] if starts else 0


def _clause_end(text: str, position: int) -> int:
    found = _CLAUSE.search(text, position)
    return found.start() if found else len(text)


def _quote(text: str, start: int, end: int, limit: int = 90) -> str:
    """The user's clause around ``text[start:end]``, cut to about ``limit`` characters."""
    left = min(_clause_start(text, start), start)
    right = max(_clause_end(text, end), end)
    if right - left > limit:
        room = max(0, (limit - (end - start)) // 2)
        left, right = max(left, start - room), min(right, end + room)
    return " ".join(text[left:right].split())


def _note(text: str, start: int, end: int) -> str:
    return f'you wrote "{_quote(text, start, end)}"'


def _negated(text: str, start: int) -> bool:
    words = text[_clause_start(text, start):start].split()[-_NEGATION_WINDOW:]
    return any(_NEGATION_WORD.match(word.strip("\"'.,!?")) for word in words)


def _phrase_hits(text: str) -> dict[str, tuple[int, int]]:
    """Where each boolean symptom first shows in ``text`` without a negation before it."""
    hits: dict[str, tuple[int, int]] = {}
    for key, patterns in _PATTERNS.items():
        match = next((m for p in patterns for m in p.finditer(text) if not _negated(text, m.start())), None)
        if match:
            hits[key] = match.span()
    return hits


def _drop_outranked(hits: dict[str, tuple[int, int]]) -> None:
    for winner, losers in OUTRANKS.items():
        if winner in hits:
            for loser in losers:
                hits.pop(loser, None)


@dataclass(frozen=True)
class Mention:
    """A number in the user's text, what it measures, and the words that say so."""

    subject: str  # a name from SUBJECTS, or "" when none came before it
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


def _role(text: str, previous: int, number: re.Match, following: int) -> str:
    """Whether a loss number is the first one, the worst one, or simply the loss."""
    before = text[max(previous, _clause_start(text, number.start())):number.start()]
    after = text[number.end():min(following, _clause_end(text, number.end()))]
    if WORST.search(before) or WORST.search(after):
        return "worst"
    if FIRST_BEFORE.search(before) or FIRST_AFTER.search(after):
        return "first"
    return "value"


def _skipped(text: str, start: int, number: re.Match) -> bool:
    preceding = text[start:number.start()]
    return bool(COUNT_NOUN.match(text, number.end()) or VERSUS.match(text, number.end())
                or BOUND.search(preceding) or POSITION.search(preceding))


def _mentions(text: str) -> Iterator[Mention]:
    """Each number with the subject it belongs to; counts, positions and bounds are skipped."""
    for start, end in _spans(text):
        subjects = [(m.start(), m.lastgroup) for m in _SUBJECT.finditer(text, start, end)]
        numbers = list(NUMBER.finditer(text, start, end))
        for i, number in enumerate(numbers):
            raw = number["value"].replace(",", "")
            value = 0.0 if raw.lower() == "zero" else float(raw)
            if _skipped(text, start, number) or not math.isfinite(value):
                continue
            at, subject = next(((at, name) for at, name in reversed(subjects) if at < number.start()),
                               (number.start(), ""))
            previous = numbers[i - 1].end() if i else start
            following = numbers[i + 1].start() if i + 1 < len(numbers) else end
            quoted = max(at, previous) if number.start() - at <= QUOTE_REACH else number.start()
            yield Mention(subject, value, bool(number["percent"]), _role(text, previous, number, following),
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
        elif subject in ("accuracy", "train_accuracy", "val_accuracy", "recall"):
            value = _fraction(m)
        else:
            continue
        if value is not None:
            found.setdefault(subject, []).append((value, m))
    return found


def _number_facts(text: str, measured: dict[str, list[tuple[float, Mention]]], source: str) -> list[Fact]:
    def fact(key: str, value: Any, mention: Mention) -> Fact:
        return Fact(key, value, source, _note(text, *mention.words))

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


def _implied(measured: dict[str, list[tuple[float, Mention]]]) -> dict[str, Mention]:
    """Boolean symptoms that the stated numbers imply, with the number that shows each."""
    implied = {
        key: next(m for v, m in measured[subject] if test(v))
        for key, (subject, test) in NUMBER_SYMPTOMS.items()
        if any(test(v) for v, _ in measured.get(subject, []))
    }
    train, val = measured.get("train_accuracy"), measured.get("val_accuracy")
    if train and val and train[-1][0] - val[-1][0] >= ACCURACY_GAP:
        implied["symptom_gap"] = val[-1][1]
    return implied


_EPOCH = re.compile(r"\bepoch\s*#?\s*(\d+)|\b(\d+)(?:st|nd|rd|th)?\s+epochs?\b", _FLAGS)


def _nan_epoch(text: str, position: int, source: str) -> Fact | None:
    """The epoch named in the sentence where the loss went NaN ("nan after epoch 2" → 2)."""
    start, end = next((s, e) for s, e in _spans(text) if s <= position <= e)
    found = _EPOCH.search(text, start, end)
    if found is None:
        return None
    return Fact("symptom_nan_epoch", int(found[1] or found[2]), source, _note(text, *found.span()))


def symptom_facts(text: str, *, source: str = "your message") -> list[Fact]:
    """Symptom facts (``symptom_*`` keys) found in the user's description of their run."""
    if not isinstance(text, str):
        raise EvidenceError("the symptom must be text", field="symptom")
    text = text[:MAX_TEXT].replace("\u2019", "'")
    hits = _phrase_hits(text)
    measured = _measured(list(_mentions(text)))
    for key, mention in _implied(measured).items():
        hits.setdefault(key, mention.words)
    _drop_outranked(hits)
    facts = [Fact(key, True, source, _note(text, *hits[key])) for key in PHRASES if key in hits]
    epoch = _nan_epoch(text, hits["symptom_loss_nan"][0], source) if "symptom_loss_nan" in hits else None
    return facts + ([epoch] if epoch else []) + _number_facts(text, measured, source)


# --- Answers to the assistant's questions ----------------------------------------------------

#: Replies that say the user does not know: no fact is read from their yes/no or bare values.
DONT_KNOW = re.compile(r"\b(?:(?:do|does)(?:n'?t| not) know|not sure|no idea|dunno|idk|unsure|no clue"
                       r"|can'?t tell|not certain)\b", _FLAGS)
YES = re.compile(r"^\W*(?:yes|yeah|yep|yup|sure|correct|true|y|of course|definitely|i do|we do)\b", _FLAGS)
NO = re.compile(r"^\W*(?:no|nope|nah|false|n|not really|i don't|we don't)\b", _FLAGS)

#: How people name a contract key in a sentence; its value follows ("lr was 0.5", "batch size 32").
KEY_PHRASES: dict[str, str] = {
    "learning_rate": r"learning[ _-]?rate|lr",
    "batch_size": r"batch[ _-]?size|batch(?:es)? of",
    "epochs": r"epochs",
    "momentum": r"momentum",
    "dropout": r"dropout(?: rate)?",
    "l2": r"l2(?: factor| regulari[sz]ation| penalty)?|weight[ _-]?decay",
    "optimizer": r"optimi[sz]er",
    "loss": r"loss(?: function)?",
    "output_activation": r"(?:output|last|final)(?: layer)?(?:'s)? activation",
    "hidden_activation": r"hidden(?: layers?)?(?:'s)? activation",
    "output_units": r"output units",
    "n_hidden_layers": r"hidden layers",
    "kernel_initializer": r"(?:kernel[ _-]?)?initiali[sz]er",
    "validation_split": r"validation[ _-]?split",
    "from_logits": r"from[ _-]?logits",
    "batch_norm": r"batch[ _-]?norm(?:ali[sz]ation)?",
    "shuffle": r"shuffl\w*",
    "input_scaling": r"(?:input |feature )?scaling",
    "n_samples": r"samples|examples",
    "n_features": r"features",
    "n_classes": r"classes",
    "total_params": r"total param(?:eter)?s|param(?:eter)?s in total",
    "trainable_params": r"trainable param(?:eter)?s",
    "sorted_by_label": r"(?:sorted|ordered) by (?:label|class)",
}
_LINK = r"(?:\s*(?:=|:|~|≈|\bis\b|\bwas\b|\bare\b|\bof\b|\bat\b|\bto\b|\bset to\b|\bequals?\b|\babout\b|\baround\b))*"
_THOUSANDS = r"\d{1,3}(?:,\d{3})+"  # 1,234,567
_NAMED = {key: re.compile(rf"\b(?:{phrase})\b{_LINK}\s*"
                          rf"(?P<value>(?:{_THOUSANDS}|[\w.+-]+)%?(?:[ -][\w.+-]+){{0,2}})", _FLAGS)
          for key, phrase in KEY_PHRASES.items()}
_MENTION = {key: re.compile(rf"\b(?:{phrase})\b", _FLAGS) for key, phrase in KEY_PHRASES.items()}
_COUNTED = {key: re.compile(rf"\b(?P<value>{_THOUSANDS}|\d+)\s+(?:{phrase})\b", _FLAGS)
            for key, phrase in KEY_PHRASES.items()}
_WORD = re.compile(r"[\w.+-]+%?")

Found = dict[str, tuple[Any, tuple[int, int]]]


def _spoken(key: str, words: list[str]) -> str | None:
    """The known name or choice that the first one to three ``words`` spell, if any."""
    aliases = VOCABULARY[key].aliases
    return next((aliases[squash(" ".join(words[:n]))] for n in (3, 2, 1)
                 if len(words) >= n and squash(" ".join(words[:n])) in aliases), None)


def _value(key: str, raw: str, *, open_names: bool = False) -> Any:
    """``raw`` read as a value of ``key``, or None; names must be known unless ``open_names``."""
    spec = VOCABULARY[key]
    words = raw.split()
    if spec.type in ("choice", "name"):
        known = _spoken(key, words)
        return known if known or not open_names else _coerced(key, words[0])
    token: Any = words[0].rstrip(".,")
    if re.fullmatch(_THOUSANDS, token):
        token = token.replace(",", "")
    if token.endswith("%") and spec.type == "number":
        try:
            token = float(token[:-1]) / 100
        except ValueError:
            return None
    return _coerced(key, token)


def _coerced(key: str, value: Any) -> Any:
    try:
        return coerce(key, value)
    except EvidenceError:
        return None


def _only(asked: list[str], *types: str) -> str | None:
    """The one asked key of these types, if exactly one was asked."""
    keys = [key for key in asked if VOCABULARY[key].type in types]
    return keys[0] if len(keys) == 1 else None


def _yes_no(text: str, asked: list[str]) -> Found:
    """"yes"/"no" (or a plain or negated mention) answers the one yes/no question asked."""
    key = _only(asked, "boolean")
    if key is None:
        return {}
    if YES.search(text) or NO.search(text):
        return {key: (bool(YES.search(text)), (0, len(text)))}
    mention = _MENTION[key].search(text) if key in _MENTION else None
    return {key: (not _negated(text, mention.start()), mention.span())} if mention else {}


def _bare_name(text: str, asked: list[str]) -> Found:
    """A known name anywhere in the reply ("I use adam") answers the one name question asked."""
    key = _only(asked, "choice", "name")
    words = list(_WORD.finditer(text))
    for i, word in enumerate(words if key else []):
        value = _value(key, " ".join(w[0] for w in words[i:i + 3]), open_names=len(words) == 1)
        if value is not None:
            return {key: (value, word.span())}
    return {}


def _bare_number(text: str, asked: list[str]) -> Found:
    """The only number in the reply ("0.001", "about 50 epochs") answers the one number question."""
    key = _only(asked, "number", "integer")
    if key is None:
        return {}
    counted = _COUNTED[key].search(text) if key in _COUNTED else None
    numbers = [m for m in NUMBER.finditer(text) if m["value"].lower() != "zero"]
    match = counted or (numbers[0] if len(numbers) == 1 else None)
    if match is None:
        return {}
    value = _value(key, match["value"] + ("%" if match.groupdict().get("percent") else ""))
    return {} if value is None else {key: (value, match.span())}


#: Ways a reply answers without naming the key, tried in order.
REPLY_READERS: tuple[Callable[[str, list[str]], Found], ...] = (_yes_no, _bare_name, _bare_number)


def _named(text: str, sure: bool) -> Found:
    """Values given with the key's name: "lr was 0.5", "loss = mse", "no batch norm"."""
    found: Found = {}
    for key, pattern in _NAMED.items():
        for match in pattern.finditer(text):
            value = _value(key, match["value"])
            if value is not None:
                found[key] = (value, (match.start(), match.start("value") + len(match["value"].split()[0])))
                break
        else:
            negated = (m for m in _MENTION[key].finditer(text) if _negated(text, m.start()))
            mention = next(negated, None) if sure and VOCABULARY[key].type == "boolean" else None
            if mention:
                found[key] = (False, mention.span())
    return found


def answer_facts(text: str, asked: list[str], *, source: str = "your answer") -> list[Fact]:
    """Contract facts in a free-text reply to questions about the ``asked`` fact keys.

    Values named with their key ("learning rate = 1e-3") are read whatever was asked; a bare
    "yes", "adam" or "0.5" answers the one asked key it fits. "I don't know" gives nothing.
    """
    if not isinstance(text, str):
        raise EvidenceError("the answer must be text", field="text")
    text = text[:MAX_TEXT].replace("\u2019", "'")
    asked = [key for key in asked if key in VOCABULARY]
    sure = not DONT_KNOW.search(text)
    found: Found = {}
    for reader in REPLY_READERS if sure else ():
        found.update(reader(text, asked))
    found.update(_named(text, sure))
    return [Fact(key, value, source, _note(text, *span)) for key, (value, span) in found.items()]
