"""Facts from the Keras code and ``model.summary()`` tables people paste, read and never run.

People paste their model among their own words: a fenced block, lines without fences, one call
in a sentence, a fragment with a syntax error, a ``...`` where they cut something out, Python 2
prints, Keras 1 argument names. :func:`find_code` keeps the parts that parse, one statement group
at a time; :class:`_Reader` walks their syntax trees with :mod:`ast` (nothing is evaluated,
imported or executed) and keeps what the code states about the training setup;
:func:`read_summary` reads the table ``model.summary()`` prints in Keras 1, 2 and 3.

Every Keras name (layer classes and their kinds, the argument names of each Keras generation,
scalers, the math that goes non-finite) comes from ``knowledge/keras.yaml``: this module is the
mechanism only. Values are kept as written (``"SGD"``, ``0.1``, a custom loss function's name);
the contract's canonical spellings are applied after. Where the code does not say, no fact is
made: a wrong fact misleads the diagnosis more than a missing one.
"""
from __future__ import annotations

import ast
import math
import re
import textwrap
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

from ..kb import syntax
from ..kb.model import Keras
from .facts import Fact

SOURCE = "your code"
SUMMARY_SOURCE = "your model.summary()"

#: Longest text read, and longest statement group: a paste is never this long, a hostile body may be.
MAX_TEXT = 200_000
MAX_GROUP = 80
#: Longest call read inside a sentence.
MAX_INLINE = 2_000
#: Longest quote of the user's code in a note.
MAX_QUOTE = 80

#: Layer kinds (``layers:`` in keras.yaml) that may follow the output layer without changing what it emits.
AFTER_OUTPUT = frozenset({"activation", "dropout", "flatten", "pooling", "batch_norm"})
#: The argument names of Keras's loss signature, for custom losses the compile call does not show.
LOSS_PARAMETERS = ("y_true", "y_pred")
#: Every fact of kind ``code`` (facts.yaml) that :func:`read_code` may emit, declared next to the code
#: that reads them, so ``assistant kb check`` refuses a code fact that nothing reads.
PRODUCES = frozenset({
    "code_frozen_layers", "code_trainable_after_compile", "code_custom_loss", "code_unsafe_math",
    "code_shuffles_x_and_y_apart", "code_recurrent_layers", "code_conv_layers", "code_embedding",
    "code_accuracy_metric", "code_preprocessing_differs", "code_pretrained_base", "code_skips_preprocess_input",
})


def squash(name: str) -> str:
    """A name as keras.yaml compares it: case, ``_``, ``-`` and spaces do not count."""
    return re.sub(r"[\s_\-]", "", name.lower())


def read_code(keras: Keras, text: str) -> list[Fact]:
    """Facts the Keras code and the ``model.summary()`` table in ``text`` state; [] when there are none."""
    if not isinstance(text, str) or not text.strip():
        return []
    text = normalise(text[:MAX_TEXT])
    names = _names(keras)
    summary, spans = _summary(names, text)
    lines = text.split("\n")
    for start, end in spans:  # the table is read on its own: its rows are no code
        lines[start:end] = [""] * (end - start)
    facts = _Reader(names, find_code("\n".join(lines))).facts()
    said = {f.key: f for f in summary}
    # The printed table is what Keras built: where it and the code disagree, it wins.
    facts = [f for f in facts if f.key not in said or said[f.key].value == f.value]
    known = {f.key for f in facts}
    return facts + [f for f in summary if f.key not in known]


def read_summary(keras: Keras, text: str) -> list[Fact]:
    """Facts from the last ``model.summary()`` table in ``text``: parameter counts and the layers it lists."""
    if not isinstance(text, str) or not text.strip():
        return []
    return _summary(_names(keras), normalise(text[:MAX_TEXT]))[0]


# --- Keras's names, as the reader looks them up ---------------------------------------------------

class _Names:
    """keras.yaml's tables indexed by squashed spelling, built once per knowledge base."""

    def __init__(self, keras: Keras) -> None:
        tables = keras.tables
        self.layers = self._index(tables["layers"])
        self.optimizers = self._index(tables["optimizers"])
        self.losses = self._index(tables["losses"])
        self.activations = self._index(tables["activations"])
        self.initializers = self._index(tables["initializers"])
        self.metrics = self._index(tables["metrics"])
        self.regularizers = self._index(tables["regularizers"])
        self.math = self._index(tables["math"])
        self.calls = self._index(tables["calls"])
        self.arguments: dict[str, Mapping[str, Any]] = {squash(k): v for k, v in tables["arguments"].items()}
        self.positions: dict[tuple[str, int], list[Mapping[str, Any]]] = {}
        for entry in tables["arguments"].values():
            for context, index in (entry.get("at") or {}).items():
                self.positions.setdefault((context, int(index)), []).append(entry)
        self.scaling_calls: dict[str, str] = {}
        self.divisors: dict[float, str] = {}
        self.spread: dict[str, str] = {}
        self.states: dict[str, str] = {}
        for label, entry in tables["preprocessing"].items():
            self.scaling_calls.update({squash(c): label for c in entry.get("calls", ())})
            self.divisors.update({float(d): label for d in entry.get("divisors", ())})
            self.spread.update({squash(w): label for w in entry.get("spread", ())})
            if entry.get("states"):
                self.states[label] = entry["states"]
        self.roles = {squash(k): v["role"] for k, v in tables["array_names"].items()}
        self.standardize = next((label for label, state in self.states.items() if state == "standardize"), None)

    @staticmethod
    def _index(table: Mapping[str, Mapping[str, Any]]) -> dict[str, tuple[str, Mapping[str, Any]]]:
        index = {}
        for key, entry in table.items():
            for spelling in (key, entry.get("class") or key, *entry.get("aliases", ())):
                index.setdefault(squash(spelling), (key, entry))
        return index

    def argument(self, name: str | None, context: str, kind_of_layer: bool) -> Mapping[str, Any] | None:
        entry = self.arguments.get(squash(name or ""))
        if entry is None:
            return None
        where = entry.get("in", ())
        return entry if context in where or (kind_of_layer and "layer" in where) else None


#: The indexes of the last few knowledge bases (a process has one; tests load several).
_NAMES: dict[int, tuple[Keras, _Names]] = {}


def _names(keras: Keras) -> _Names:
    cached = _NAMES.get(id(keras))
    if cached is None or cached[0] is not keras:
        if len(_NAMES) >= 8:
            _NAMES.pop(next(iter(_NAMES)))
        cached = _NAMES[id(keras)] = (keras, _Names(keras))
    return cached[1]


# --- finding code in free text --------------------------------------------------------------------

_TYPOGRAPHY = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u00a0": " ",
                             "\u2026": "...", "\u200b": None, "\ufeff": None, "\x00": None, "\r": None,
                             "\u2212": "-"})
_PROMPT = re.compile(r"^(\s*)(?:>>>|\.\.\.(?=\s)|In \[\d*\]:|Out\[\d*\]:)\s?")
_PRINT2 = re.compile(r"^(\s*)print(?:\s+(?![\s(=.,\[])|(?=[\"']))(.*?)\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_ELIDED_ARG = (re.compile(r",\s*\.\.\.(?=\s*[)\]}])"), re.compile(r"(?<=[(\[{])\s*\.\.\.\s*,"))
_INLINE_CALL = re.compile(r"(?<![\w.])[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*\(")
_INLINE_TRAINABLE = re.compile(r"(?<![\w.])[A-Za-z_][\w.\[\]:\-]*\.trainable\s*=\s*(?:True|False)\b")
_BACKTICKS = re.compile(r"`([^`\n]+)`")


def normalise(text: str) -> str:
    """Text as pasted, with the typography chat clients and forums add turned back into ASCII."""
    return text.translate(_TYPOGRAPHY).replace("\t", "    ")


@dataclass
class Piece:
    """One group of statements that parsed: its source (the syntax tree's offsets refer to it)."""

    src: str
    tree: ast.Module
    #: Pieces of one block come from one contiguous stretch of code (a fenced block, a run of lines).
    block: int
    #: A keyword fragment such as `lr=0.01` written inline, not a statement.
    loose: bool = False


@dataclass
class Code:
    """The code found in a text: pieces in reading order, and which blocks lost lines on the way."""

    pieces: list[Piece] = field(default_factory=list)
    #: Blocks where a line was cut out (``...``) or did not parse: seen only in part.
    partial: set[int] = field(default_factory=set)
    blocks: int = 0

    def new_block(self) -> int:
        self.blocks += 1
        return self.blocks


def find_code(text: str) -> Code:
    """The Python in ``text``: fenced blocks, runs of code lines, and calls written inside sentences."""
    code = Code()
    lines = text.split("\n")
    fenced: list[str] = []
    loose: list[str] = []
    inside = False
    for line in lines:
        if _FENCE.match(line):
            if inside:
                _read_lines(code, fenced, fenced=True)
                fenced = []
            else:
                _read_lines(code, loose, fenced=False)
                loose = []
            inside = not inside
            continue
        (fenced if inside else loose).append(line)
    _read_lines(code, fenced if inside else loose, fenced=inside)
    return code


def _read_lines(code: Code, lines: list[str], fenced: bool) -> None:
    """Every statement group of a stretch of lines that parses; lines that do not may hold inline code.

    Inside a fence a line that does not parse means part of the block was not understood; outside,
    it is prose, and the code after it is another stretch.
    """
    block = code.new_block()
    dropped: list[str] = []
    cleaned = [_clean(line) for line in lines]
    i, n = 0, len(cleaned)
    while i < n:
        line = cleaned[i]
        if not line.strip():
            i += 1
            continue
        if line.lstrip().startswith("#"):
            if "..." in line:
                code.partial.add(block)
            i += 1
            continue
        end = _group_end(cleaned, i)
        parsed = _parse("\n".join(cleaned[i:end]))
        if parsed is None:
            # An unclosed call cut off by prose, or a block header whose body lost its indentation.
            parsed, end = _salvage(cleaned, i, end)
        if parsed is None:
            dropped.append(lines[i])
            if fenced:
                code.partial.add(block)
            i += 1
            continue
        if dropped:
            _inline(code, dropped)
            dropped = []
            if not fenced:
                block = code.new_block()
        src, tree, repaired = parsed
        code.pieces.append(Piece(src, tree, block))
        if repaired or any(isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant) and s.value.value is ...
                           for s in tree.body):
            code.partial.add(block)
        i = end
    _inline(code, dropped)


def _clean(line: str) -> str:
    """A line without its console prompt or notebook magic."""
    line = _PROMPT.sub(r"\1", line.rstrip())
    if line.lstrip().startswith(("%", "!")):
        return ""
    return line


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _scan(line: str, triple: str | None) -> tuple[list[str], str | None, bool]:
    """Brackets a line opens (net, innermost last), the triple quote still open, and a closing backslash."""
    stack: list[str] = []
    i, n = 0, len(line)
    quote: str | None = None
    while i < n:
        c = line[i]
        if triple:
            if line.startswith(triple, i):
                triple, i = None, i + 3
                continue
            i += 1
            continue
        if quote:
            if c == "\\":
                i += 2
                continue
            if c == quote:
                quote = None
            i += 1
            continue
        if c == "#":
            break
        if line.startswith('"""', i) or line.startswith("'''", i):
            triple, i = line[i:i + 3], i + 3
            continue
        if c in "'\"":
            quote = c
        elif c in "([{":
            stack.append(c)
        elif c in ")]}":
            if stack:
                stack.pop()
            else:
                stack.append(c)  # a closer this line does not open: the group started earlier
        i += 1
    return stack, triple, line.rstrip().endswith("\\")


def _group_end(lines: list[str], start: int) -> int:
    """End (exclusive) of the statement group that starts at ``start``: open brackets, a block's body."""
    depth = 0
    triple: str | None = None
    j = start
    while j < len(lines) and j - start < MAX_GROUP:
        stack, triple, continued = _scan(lines[j], triple)
        depth = max(0, depth + sum(1 if c in "([{" else -1 for c in stack))
        j += 1
        if depth or triple or continued:
            continue
        break
    head = lines[start].split("#")[0].rstrip()
    if head.endswith(":") or (j - start > 1 and lines[j - 1].split("#")[0].rstrip().endswith(":")):
        base = _indent(lines[start])
        k = j
        while k < len(lines) and k - start < MAX_GROUP * 4:
            if lines[k].strip():
                if _indent(lines[k]) <= base:
                    break
                j = k + 1
            k += 1
    return j


def _parse(src: str) -> tuple[str, ast.Module, bool] | None:
    """The source and its tree, after the repairs a paste commonly needs; None when it will not parse."""
    src = textwrap.dedent(src)
    if not src.strip():
        return None
    attempts = [(src, False)]
    fixed = "\n".join(_PRINT2.sub(r"\1print(\2)", line) for line in src.split("\n"))
    if fixed != src:
        attempts.append((fixed, False))
    elided = fixed
    for pattern in _ELIDED_ARG:
        elided = pattern.sub("", elided)
    if elided != fixed:
        attempts.append((elided, True))
    closed = _close(elided)
    if closed != elided:
        attempts.append((closed, True))
    for candidate, repaired in attempts:
        try:
            return candidate, syntax.parse(candidate), repaired
        except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
            continue
    return None


def _close(src: str) -> str:
    """The source with the brackets it leaves open closed, and a trailing comma dropped."""
    stack: list[str] = []
    triple = None
    for line in src.split("\n"):
        opened, triple, _ = _scan(line, triple)
        for c in opened:
            if c in "([{":
                stack.append(c)
            elif stack:
                stack.pop()
    if not stack or triple:
        return src
    closing = "".join({"(": ")", "[": "]", "{": "}"}[c] for c in reversed(stack))
    return re.sub(r"[,\s\\]*$", "", src) + closing


def _salvage(lines: list[str], start: int, end: int) -> tuple[tuple[str, ast.Module, bool] | None, int]:
    """A group that did not parse whole: its first line closed, or a block header with its body unindented."""
    first = lines[start]
    if first.split("#")[0].rstrip().endswith(":") and start + 1 < len(lines) and lines[start + 1].strip():
        body = lines[start + 1]
        parsed = _parse(first + "\n" + " " * (_indent(first) + 4) + body.lstrip())
        if parsed is not None and _indent(body) <= _indent(first):
            return parsed, start + 2
    parsed = _parse(first)
    if parsed is not None:
        return (parsed[0], parsed[1], True), start + 1
    return None, end


def _inline(code: Code, lines: list[str]) -> None:
    """Code written inside sentences: backtick spans, calls such as model.compile(...), `x.trainable = False`."""
    for line in lines:
        spans = [m.group(1) for m in _BACKTICKS.finditer(line)]
        rest = _BACKTICKS.sub(" ", line)
        for span in spans:
            parsed = _parse(span)
            if parsed is not None and not _only_names(parsed[1]):
                code.pieces.append(Piece(parsed[0], parsed[1], code.new_block(), loose=_keywords_only(parsed[1])))
                continue
            if re.match(r"^\s*[A-Za-z_]\w*\s*=", span):  # `loss='mse', optimizer='adam'`: keywords
                parsed = _parse(f"_({span})")
                if parsed is not None:
                    code.pieces.append(Piece(parsed[0], parsed[1], code.new_block(), loose=True))
                    continue
            rest += " " + span
        for candidate in _calls_in(rest):
            parsed = _parse(candidate)
            if parsed is not None:
                code.pieces.append(Piece(parsed[0], parsed[1], code.new_block()))


def _only_names(tree: ast.Module) -> bool:
    """A span such as `adam` or `loss`: a word set in code type, no code."""
    return all(isinstance(s, ast.Expr) and isinstance(s.value, (ast.Name, ast.Constant, ast.Attribute))
               for s in tree.body)


def _keywords_only(tree: ast.Module) -> bool:
    """A span such as `lr=0.01`: one argument written on its own."""
    return (len(tree.body) == 1 and isinstance(tree.body[0], ast.Assign) and len(tree.body[0].targets) == 1
            and isinstance(tree.body[0].targets[0], ast.Name))


def _calls_in(text: str) -> Iterator[str]:
    """Each call with balanced brackets written in a sentence, and each `x.trainable = False`."""
    for match in _INLINE_TRAINABLE.finditer(text):
        yield match.group(0)
    for match in _INLINE_CALL.finditer(text):
        depth, quote, i = 0, None, match.end() - 1
        while i < min(len(text), match.start() + MAX_INLINE):
            c = text[i]
            if quote:
                if c == quote:
                    quote = None
            elif c in "'\"":
                quote = c
            elif c in "([{":
                depth += 1
            elif c in ")]}":
                depth -= 1
                if depth == 0:
                    yield text[match.start():i + 1]
                    break
            i += 1


# --- reading the syntax trees ---------------------------------------------------------------------

@dataclass(eq=False)
class _Layer:
    """A layer the code builds: its class as keras.yaml knows it, and where it is written."""

    key: str
    entry: Mapping[str, Any]
    call: ast.Call
    piece: Piece
    inner: "_Layer | None" = None

    @property
    def kind(self) -> str:
        return self.inner.kind if self.inner is not None else self.entry["kind"]

    @property
    def own(self) -> "_Layer":
        """The layer that does the work: the wrapped one for Bidirectional and TimeDistributed."""
        return self.inner.own if self.inner is not None else self


@dataclass(eq=False)
class _Model:
    """A model the code builds, with its members in order (None: something the reader does not know)."""

    members: list[Any]
    block: int
    #: Built from its first line (Sequential() or Model(inputs, outputs)) rather than seen only in `model.add`.
    created: bool
    #: Every member is known and the model's code was seen whole.
    complete: bool = True
    inputs: list[_Layer] = field(default_factory=list)
    outputs: int = 1
    #: The blocks its layers were added in, and when the last was added.
    blocks: set[int] = field(default_factory=set)
    last: int = 0


@dataclass
class _Node:
    """A tensor of the functional API: the layer that made it and the tensors it came from."""

    layer: Any
    parents: list[int]
    complete: bool
    input: _Layer | None = None


@dataclass
class _Event:
    """A call that matters (compile, fit, evaluate, a shuffle) with where it was written."""

    pos: int
    piece: Piece
    call: ast.Call
    receiver: str | None = None
    model: _Model | None = None
    data: Any = None


@dataclass(frozen=True)
class _Prep:
    """What was done to some data before it reached the model: label → the code that did it."""

    labels: Mapping[str, str]
    #: Every source of the data was seen: nothing else can have been done to it.
    complete: bool

    def merged(self, *others: "_Prep") -> "_Prep":
        labels = dict(self.labels)
        for other in others:
            for label, note in other.labels.items():
                labels.setdefault(label, note)
        return _Prep(labels, self.complete and all(o.complete for o in others))

    def adding(self, label: str | None, note: str) -> "_Prep":
        return self if label is None or label in self.labels else _Prep({**self.labels, label: note}, self.complete)


NOTHING = _Prep({}, True)
UNKNOWN = _Prep({}, False)


@dataclass
class _Found:
    """A fact value the code states, with the words that cite it."""

    value: Any
    note: str


class _Reader:
    """Walks the pieces in reading order, keeping names, models, tensors and calls; then states facts."""

    def __init__(self, names: _Names, code: Code) -> None:
        self.names = names
        self.code = code
        self.pos = 0
        self.values: dict[str, tuple[ast.expr, Piece]] = {}
        self.models: dict[str, _Model] = {}
        self.all_models: list[tuple[int, _Model]] = []
        self.objects: dict[str, _Layer] = {}
        self.tensors: dict[str, int] = {}
        self.nodes: list[_Node] = []
        self.defs: dict[str, tuple[ast.FunctionDef, Piece]] = {}
        self.returns: dict[str, str] = {}
        self.classes: set[str] = set()
        self.compiles: list[_Event] = []
        self.fits: list[_Event] = []
        self.evaluations: list[_Event] = []
        self.shuffles: list[_Event] = []
        self.seeds: list[int] = []
        self.together: set[frozenset[str]] = set()
        #: Each `x.trainable = ...` (assigned) and `trainable=False` argument: key, value, quote, position, piece.
        self.trainable: list[tuple[str, bool, str, int, Piece, bool]] = []
        self.pretrained: list[_Layer] = []
        self.lambdas: list[tuple[ast.AST, Piece, str]] = []
        self.prep: dict[str, _Prep] = {}
        self.piece = _NOWHERE
        self.loose: list[tuple[str, ast.expr, Piece]] = []
        self._seen: set[int] = set()
        self.arguments = {name for name in _all_names(code) if squash(name) in names.arguments}
        #: Names the code uses as values (not only as `name.attr`): data, never a module such as np or mnist.
        self.data_names = _data_names(code)
        for piece in code.pieces:
            self.piece = piece
            for stmt, loop, function in _statements(piece.tree.body):
                self.pos += 1
                try:
                    self._statement(stmt, loop, function, piece)
                except (RecursionError, ValueError, TypeError, AttributeError, KeyError, IndexError,
                        ZeroDivisionError, OverflowError):
                    continue  # one statement the reader cannot follow costs only its own facts

    # -- the walk ---------------------------------------------------------------------------------

    def _statement(self, stmt: ast.stmt, loop: ast.For | None, function: str | None, piece: Piece) -> None:
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
            self.defs[stmt.name] = (stmt, piece)
            return
        if isinstance(stmt, ast.ClassDef):
            self.classes.add(stmt.name)
            return
        if isinstance(stmt, ast.Return) and function and isinstance(stmt.value, ast.Name):
            self.returns[function] = stmt.value.id
        self._calls(stmt, piece, looped=loop is not None)
        if piece.loose and isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Name) \
                and stmt.targets[0].id in self.arguments:
            self.loose.append((stmt.targets[0].id, stmt.value, piece))
            return
        if piece.loose and isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
            self.loose += [(k.arg, k.value, piece) for k in stmt.value.keywords if k.arg]
            return
        if isinstance(stmt, ast.Assign | ast.AnnAssign) and stmt.value is not None:
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            for target in targets:
                self._assign(target, stmt.value, piece, stmt, loop)
        elif isinstance(stmt, ast.AugAssign) and isinstance(stmt.target, ast.Name):
            self._augment(stmt, piece)

    def _assign(self, target: ast.expr, value: ast.expr, piece: Piece, stmt: ast.stmt, loop: ast.For | None) -> None:
        if isinstance(target, ast.Attribute) and target.attr == "trainable":
            flag = value.value if isinstance(value, ast.Constant) and isinstance(value.value, bool) else None
            if flag is not None:
                key = _text(piece, target.value)
                quote = _quote(piece, stmt)
                if loop is not None:
                    key = f"{key} in {_text(piece, loop.iter)}"
                    quote = f"for {_text(piece, loop.target)} in {_text(piece, loop.iter)}: {quote}"
                self.trainable.append((key, flag, quote, self.pos, piece, True))
            return
        if isinstance(target, ast.Tuple | ast.List):
            if isinstance(value, ast.Tuple | ast.List) and len(value.elts) == len(target.elts):
                for element, part in zip(target.elts, value.elts):
                    self._assign(element, part, piece, stmt, loop)
                return
            prep = self._prep(value, _quote(piece, stmt))
            for element in ast.walk(target):
                if isinstance(element, ast.Name):
                    self._bind(element.id, None, piece)
                    self.prep[element.id] = prep
            return
        if not isinstance(target, ast.Name):
            return
        name = target.id
        self._shuffled_by_assignment(name, value, piece)
        self._bind(name, value, piece)
        self.prep[name] = self._prep(value, _quote(piece, stmt))

    def _bind(self, name: str, value: ast.expr | None, piece: Piece) -> None:
        """What a name holds now: a model, a layer object, a tensor, or a value to resolve later."""
        model = layer = node = None
        if isinstance(value, ast.Call):
            model = self._model(value, piece)
            layer = self._layer(value, piece) if model is None else None
            if layer is not None and layer.kind == "input":
                node, layer = self._node(None, [], input=layer), None
        elif isinstance(value, ast.Name):
            model = self.models.get(value.id)
        if value is not None and model is None and layer is None and node is None:
            node = self._tensor(value, piece)  # before the name is rebound: x = Dense(64)(x)
        for table in (self.values, self.models, self.objects, self.tensors):
            table.pop(name, None)  # type: ignore[attr-defined]
        if value is None:
            return
        self.values[name] = (value, piece)
        if model is not None:
            self.models[name] = model
        elif layer is not None:
            self.objects[name] = layer
        elif node is not None:
            self.tensors[name] = node

    def _augment(self, stmt: ast.AugAssign, piece: Piece) -> None:
        name = stmt.target.id  # type: ignore[attr-defined]
        label = self._scaling_of_division(stmt.op, stmt.value)
        if label is not None:
            self.prep[name] = self.prep.get(name, UNKNOWN).adding(label, _quote(piece, stmt))

    def _calls(self, stmt: ast.stmt, piece: Piece, looped: bool = False) -> None:
        """The calls in a statement that the facts need: compile, fit, evaluate, add, shuffles, seeds."""
        for node in _walk_calls(stmt):
            if id(node) in self._seen:
                continue
            self._seen.add(id(node))
            does = self._does(node)
            names = [a.id for a in node.args if isinstance(a, ast.Name)]
            for i, a in enumerate(names):
                for b in names[i + 1:]:
                    self.together.add(frozenset((a, b)))
            layer = self._layer(node, piece, record=True)
            if layer is not None:
                continue
            receiver = node.func.value if isinstance(node.func, ast.Attribute) else None
            text = _text(piece, receiver) if receiver is not None else None
            if does == "add" and text is not None and len(node.args) == 1 and isinstance(stmt, ast.Expr) \
                    and stmt.value is node:  # model.add(...) returns nothing; layers.add([a, b]) is a merge
                model = self.models.get(text)
                if model is None:
                    model = self.models[text] = _Model([], piece.block, created=False, complete=False)
                    self.all_models.append((self.pos, model))
                member = self._member(node.args[0], piece)
                model.members.append(member)
                model.blocks.add(piece.block)
                model.last = self.pos
                if member is None or piece.block != model.block or piece.block in self.code.partial:
                    model.complete = False
            elif does == "compile" and text is not None:
                self.compiles.append(_Event(self.pos, piece, node, text, self.models.get(text)))
            elif does == "fit" and (text is None or text in self.models or self._fit_like(node)
                                    or any(e.receiver == text for e in self.compiles)):
                event = _Event(self.pos, piece, node, text, self.models.get(text) if text else None)
                arguments = self._arguments(node, "fit")
                x = arguments.get("x")
                validation = arguments.get("validation_data")
                if isinstance(validation, ast.Tuple | ast.List):
                    for a, b in zip(validation.elts, validation.elts[1:]):
                        if isinstance(a, ast.Name) and isinstance(b, ast.Name):
                            self.together.add(frozenset((a.id, b.id)))
                    validation = validation.elts[0] if validation.elts else None
                event.data = {"x": x, "x_prep": self._prep(x, _quote(piece, x)) if x is not None else None,
                              "val": validation, "val_prep": self._prep(validation, _quote(piece, validation)),
                              "looped": looped}
                self.fits.append(event)
            elif does == "evaluate" and text is not None:
                x = self._arguments(node, "evaluate").get("x")
                if x is not None:
                    self.evaluations.append(_Event(self.pos, piece, node, text, data=(x, self._prep(x, _quote(piece, x)))))
            elif does == "shuffle" and len(node.args) == 1 and not node.keywords and isinstance(stmt, ast.Expr):
                self._shuffle(node.args[0], node, piece)
            elif does == "seed":
                self.seeds.append(self.pos)

    def _does(self, call: ast.Call) -> str | None:
        if not isinstance(call.func, ast.Name | ast.Attribute):
            return None
        name = _last(call.func)
        if not name:
            return None
        if isinstance(call.func, ast.Name) and (name in self.values or name in self.defs):
            return None
        found = self.names.calls.get(squash(name))
        if found is None:
            return None
        does = found[1]["does"]
        if does in ("sequential", "model") and not name[:1].isupper():
            return None
        return does

    def _fit_like(self, call: ast.Call) -> bool:
        """A fit call with Keras's training arguments, on a model the reader did not see built."""
        return any(self.names.argument(k.arg, "fit", False) is not None and k.arg not in ("x", "y")
                   for k in call.keywords)

    # -- layers, models, tensors ------------------------------------------------------------------

    def _layer(self, call: ast.Call, piece: Piece, record: bool = False) -> _Layer | None:
        """The layer a constructor call builds, or None when the call is no Keras layer class."""
        if not isinstance(call.func, ast.Name | ast.Attribute):
            return None
        name = _last(call.func)
        if not name or not name[:1].isupper():
            return None
        if isinstance(call.func, ast.Name) and name in self.values:
            return None
        found = self.names.layers.get(squash(name))
        if found is None:
            return None
        key, entry = found
        inner = None
        if entry["kind"] == "wrapper":
            wrapped = next(iter(call.args), None) or next((k.value for k in call.keywords if k.arg == "layer"), None)
            if isinstance(wrapped, ast.Call):
                inner = self._layer(wrapped, piece)
            elif isinstance(wrapped, ast.Name):
                inner = self.objects.get(wrapped.id)
            if inner is None:
                return None
        layer = _Layer(key, entry, call, piece, inner)
        if record:
            self._record(layer)
        return layer

    def _record(self, layer: _Layer) -> None:
        """What a layer says on its own, wherever it is: a pretrained base, trainable=False."""
        if layer.kind == "pretrained":
            self.pretrained.append(layer)
        trainable = self._arguments(layer.call, layer.entry["kind"], layer=True).get("trainable")
        if isinstance(trainable, ast.Constant) and trainable.value is False:
            self.trainable.append((f"{id(layer.call)}", False, _brief(layer.piece, layer.call, keep=(trainable,)),
                                   self.pos, layer.piece, False))

    def _member(self, expr: ast.expr, piece: Piece) -> Any:
        """What model.add() or a Sequential list is given: a layer, a nested model, or None if unknown."""
        if isinstance(expr, ast.Call):
            model = self._model(expr, piece)
            if model is not None:
                return model
            return self._layer(expr, piece)
        if isinstance(expr, ast.Name):
            return self.objects.get(expr.id) or self.models.get(expr.id)
        return None

    def _model(self, call: ast.Call, piece: Piece) -> _Model | None:
        """The model a Sequential(...), Model(inputs, outputs) or model-building function call makes."""
        does = self._does(call)
        if does == "sequential":
            given = next(iter(call.args), None) or next((k.value for k in call.keywords if k.arg == "layers"), None)
            members = [self._member(e, piece) for e in given.elts] if isinstance(given, ast.List | ast.Tuple) else []
            model = _Model(members, piece.block, created=True,
                           complete=all(m is not None for m in members) and piece.block not in self.code.partial)
            self.all_models.append((self.pos, model))
            return model
        if does == "model":
            outputs = self._arguments(call, "model").get("outputs")
            if outputs is None:
                return None
            heads = outputs.elts if isinstance(outputs, ast.List | ast.Tuple) else [outputs]
            ids = [self._tensor(h, piece) for h in heads]
            if not ids or any(i is None for i in ids):
                return None
            model = self._functional(ids, piece)  # type: ignore[arg-type]
            self.all_models.append((self.pos, model))
            return model
        name = _last(call.func)
        if isinstance(call.func, ast.Name) and name in self.returns and self.returns[name] in self.models:
            return self.models[self.returns[name]]
        return None

    def _functional(self, heads: list[int], piece: Piece) -> _Model:
        seen: set[int] = set()
        stack = list(heads)
        complete = True
        while stack:
            i = stack.pop()
            if i in seen:
                continue
            seen.add(i)
            node = self.nodes[i]
            complete = complete and node.complete
            stack.extend(node.parents)
        ordered = sorted(seen)
        members = [self.nodes[i].layer for i in ordered if self.nodes[i].input is None]
        inputs = [self.nodes[i].input for i in ordered if self.nodes[i].input is not None]
        complete = complete and all(m is not None for m in members) and piece.block not in self.code.partial
        return _Model(members, piece.block, created=True, complete=complete, inputs=inputs,  # type: ignore[arg-type]
                      outputs=len(heads))

    def _node(self, layer: Any, parents: list[int | None], input: _Layer | None = None) -> int:
        known = [p for p in parents if p is not None]
        complete = input is not None or (layer is not None and bool(known) and len(known) == len(parents)
                                         and all(self.nodes[p].complete for p in known))
        self.nodes.append(_Node(layer, known, complete, input))
        return len(self.nodes) - 1

    def _tensors_in(self, args: list[ast.expr], piece: Piece) -> list[int | None]:
        found: list[int | None] = []
        for a in args:
            if isinstance(a, ast.List | ast.Tuple):
                found += self._tensors_in(list(a.elts), piece)
            elif isinstance(a, ast.Name | ast.Call | ast.Attribute):
                found.append(self._tensor(a, piece))
        return found

    def _tensor(self, expr: ast.expr, piece: Piece) -> int | None:
        """The functional-API tensor an expression is, or None when it is none (or unknown)."""
        if isinstance(expr, ast.Name):
            return self.tensors.get(expr.id)
        if isinstance(expr, ast.Attribute) and expr.attr in ("output", "outputs") and isinstance(expr.value, ast.Name):
            source = self.objects.get(expr.value.id) or self.models.get(expr.value.id)
            if source is not None:
                return self._node(source, [None])
            return None
        if not isinstance(expr, ast.Call):
            return None
        func = expr.func
        if isinstance(func, ast.Call):
            layer = self._layer(func, piece) or self._model(func, piece)
            if layer is None:
                return None
            return self._node(layer, self._tensors_in(list(expr.args), piece))
        name = _last(func)
        if isinstance(func, ast.Name) and (func.id in self.objects or func.id in self.models):
            layer = self.objects.get(func.id) or self.models.get(func.id)
            return self._node(layer, self._tensors_in(list(expr.args), piece))
        layer = self._layer(expr, piece)
        if layer is not None and layer.kind == "input":
            return self._node(None, [], input=layer)
        parents = self._tensors_in(list(expr.args), piece)
        if any(p is not None for p in parents):
            # A merge written as a function (concatenate([a, b])) or an op on tensors (tf.nn.relu(x)).
            found = self.names.layers.get(squash(name or ""))
            merge = _Layer(found[0], found[1], expr, piece) if found and found[1]["kind"] == "other" else None
            return self._node(merge, parents)
        return None

    # -- values -----------------------------------------------------------------------------------

    def _resolve(self, expr: ast.expr | None, piece: Piece, depth: int = 0) -> tuple[ast.expr | None, Piece]:
        """The expression a name stands for, followed through assignments the code shows."""
        while isinstance(expr, ast.Name) and expr.id in self.values and depth < 8:
            expr, piece = self.values[expr.id]
            depth += 1
        return expr, piece

    def _number(self, expr: ast.expr | None, piece: Piece, depth: int = 0) -> float | int | None:
        """The number an expression of literals (1./255, 1e-3, 10 ** -4, a named constant) is."""
        expr, piece = self._resolve(expr, piece)
        if expr is None or depth > 12:
            return None
        if isinstance(expr, ast.Constant):
            value = expr.value
            return value if isinstance(value, int | float) and not isinstance(value, bool) else None
        if isinstance(expr, ast.UnaryOp) and isinstance(expr.op, ast.USub | ast.UAdd):
            inner = self._number(expr.operand, piece, depth + 1)
            return None if inner is None else (-inner if isinstance(expr.op, ast.USub) else inner)
        if isinstance(expr, ast.BinOp):
            left, right = self._number(expr.left, piece, depth + 1), self._number(expr.right, piece, depth + 1)
            if left is None or right is None:
                return None
            try:
                if isinstance(expr.op, ast.Add):
                    return left + right
                if isinstance(expr.op, ast.Sub):
                    return left - right
                if isinstance(expr.op, ast.Mult):
                    return left * right
                if isinstance(expr.op, ast.Div):
                    return left / right
                if isinstance(expr.op, ast.Pow) and abs(right) <= 30 and abs(left) <= 1e6:
                    return left ** right
            except (ZeroDivisionError, OverflowError):
                return None
        return None

    def _constant(self, expr: ast.expr | None, piece: Piece) -> Any:
        expr, piece = self._resolve(expr, piece)
        if isinstance(expr, ast.Constant):
            return expr.value
        number = self._number(expr, piece)
        if number is not None:
            return number
        if isinstance(expr, ast.Tuple | ast.List):
            return tuple(self._constant(e, piece) for e in expr.elts)
        return None

    def _arguments(self, call: ast.Call, context: str, layer: bool = False) -> dict[str, ast.expr]:
        """Each argument of a call that keras.yaml's `arguments:` knows, by what it means; keywords win."""
        found: dict[str, ast.expr] = {}
        for i, arg in enumerate(call.args):
            if isinstance(arg, ast.Starred):
                break
            for entry in self.names.positions.get((context, i), ()):
                found.setdefault(entry["means"], arg)
        for keyword in call.keywords:
            entry = self.names.argument(keyword.arg, context, layer)
            if entry is not None:
                found[entry["means"]] = keyword.value
        return found

    def _keyword_text(self, call: ast.Call, piece: Piece, value: ast.expr) -> str:
        """How the user wrote one argument: `lr=0.1`, or the bare value when it was positional."""
        for keyword in call.keywords:
            if keyword.value is value:
                return f"{keyword.arg}={_text(piece, value)}"
        return _text(piece, value)

    # -- scaling and preprocessing ----------------------------------------------------------------

    def _scaling_of_division(self, op: ast.operator, divisor: ast.expr) -> str | None:
        """The scaling a division (or a multiplication by a reciprocal) applies: /255 → minmax, /std → standardize."""
        value = self._number(divisor, _NOWHERE)
        if value is not None and value:
            target = value if isinstance(op, ast.Div) else (1 / value if isinstance(op, ast.Mult) else None)
            if target is not None:
                return next((label for d, label in self.names.divisors.items() if math.isclose(target, d)), None)
            return None
        if isinstance(op, ast.Div):
            for word in _words_in(divisor):
                if word in self.names.spread:
                    return self.names.spread[word]
        return None

    def _prep(self, expr: ast.expr | None, note: str, params: frozenset[str] = frozenset(),
              depth: int = 0) -> _Prep:
        """What was done to the data an expression holds, as far as the code shows it."""
        if expr is None or depth > 20:
            return UNKNOWN
        if isinstance(expr, ast.Constant):
            return NOTHING
        if isinstance(expr, ast.Name):
            if expr.id in params:
                return NOTHING
            return self.prep.get(expr.id, UNKNOWN)  # a name the code never assigned: unknown
        if isinstance(expr, ast.Attribute | ast.Subscript | ast.Starred):
            return self._prep(expr.value, note, params, depth + 1)
        if isinstance(expr, ast.BinOp):
            prep = self._prep(expr.left, note, params, depth + 1).merged(self._prep(expr.right, note, params, depth + 1))
            label = self._scaling_of_division(expr.op, expr.right)
            if label is None and isinstance(expr.op, ast.Mult):
                label = self._scaling_of_division(expr.op, expr.left)
            return prep.adding(label, note)
        if isinstance(expr, ast.Lambda):
            names = frozenset(a.arg for a in expr.args.args) | params
            return self._prep(expr.body, note, names, depth + 1)
        if isinstance(expr, ast.Tuple | ast.List):
            return NOTHING.merged(*(self._prep(e, note, params, depth + 1) for e in expr.elts))
        if isinstance(expr, ast.Call):
            return self._prep_call(expr, note, params, depth)
        return UNKNOWN

    def _prep_call(self, call: ast.Call, note: str, params: frozenset[str], depth: int) -> _Prep:
        name = _last(call.func) or ""
        parts: list[_Prep] = []
        if isinstance(call.func, ast.Attribute):
            receiver = call.func.value
            # A method of a module (np.load, mnist.load_data) adds nothing; of a variable, what it holds.
            if isinstance(receiver, ast.Name) and receiver.id not in self.prep and receiver.id not in params \
                    and receiver.id not in self.data_names:
                parts.append(NOTHING)
            else:
                parts.append(self._prep(receiver, note, params, depth + 1))
        elif name in self.defs:
            function = self.defs[name][0]
            returned = [n.value for n in ast.walk(function) if isinstance(n, ast.Return) and n.value is not None]
            inside = frozenset(a.arg for a in function.args.args) | params
            parts += [self._prep(r, note, inside, depth + 1) for r in returned] or [UNKNOWN]
        elif isinstance(call.func, ast.Name) and call.func.id in self.prep:
            parts.append(self.prep[call.func.id])  # a preprocessing layer called on the data
        parts += [self._prep(a, note, params, depth + 1) for a in call.args]
        parts += [self._prep(k.value, note, params, depth + 1) for k in call.keywords
                  if isinstance(k.value, ast.Name | ast.Call | ast.Lambda | ast.Attribute | ast.Subscript)
                  and k.arg != "preprocessing_function"]
        prep = NOTHING.merged(*parts).adding(self.names.scaling_calls.get(squash(name)), note)
        if self._does(call) == "generator":
            for meaning, value in self._arguments(call, "generator").items():
                label = None
                if meaning == "rescale":
                    factor = self._number(value, _NOWHERE)
                    label = next((lab for d, lab in self.names.divisors.items()
                                  if factor and math.isclose(1 / factor, d)), None)
                elif meaning == "standardize" and isinstance(value, ast.Constant) and value.value is True:
                    label = self.names.standardize
                elif meaning == "preprocessing_function":
                    label = self.names.scaling_calls.get(squash(_last(value) or ""))
                prep = prep.adding(label, _brief(self.piece, call, keep=(value,)))
        return prep

    # -- shuffles ---------------------------------------------------------------------------------

    def _shuffle(self, target: ast.expr, call: ast.Call, piece: Piece) -> None:
        if isinstance(target, ast.Name):
            self.shuffles.append(_Event(self.pos, piece, call, target.id, data=_quote(piece, call)))

    def _shuffled_by_assignment(self, name: str, value: ast.expr, piece: Piece) -> None:
        """`x = tf.random.shuffle(x)` or `x = x[np.random.permutation(len(x))]`: one array shuffled alone."""
        if isinstance(value, ast.Call) and self._does(value) == "shuffle" and len(value.args) == 1 \
                and not value.keywords and isinstance(value.args[0], ast.Name) and value.args[0].id == name:
            self.shuffles.append(_Event(self.pos, piece, value, name, data=f"{name} = {_quote(piece, value)}"))
        elif isinstance(value, ast.Subscript) and isinstance(value.value, ast.Name) and value.value.id == name \
                and isinstance(value.slice, ast.Call) and self._does(value.slice) == "permutation":
            self.shuffles.append(_Event(self.pos, piece, value.slice, name,
                                        data=f"{name} = {_quote(piece, value)}"))

    # -- the facts --------------------------------------------------------------------------------

    def facts(self) -> list[Fact]:
        try:
            return self._facts()
        except RecursionError:  # code nested deeper than any model: nothing to say about it
            return []

    def _facts(self) -> list[Fact]:
        found: dict[str, _Found] = {}
        model = self._main_model()
        compile_ = self._latest(self.compiles, model)
        fit = self._latest(self.fits, model)
        if compile_ is not None:
            found.update(self._compiled(compile_))
        if fit is not None:
            found.update(self._fitted(fit))
        if model is not None:
            found.update(self._architecture(model))
        found.update(self._loose(found))
        found.update(self._scaling(model, fit))
        found.update(self._code_facts(found))
        return [Fact(key, f.value, SOURCE, f.note) for key, f in found.items()]

    def _main_model(self) -> _Model | None:
        """The model the facts are about: the last one trained, else compiled, else built."""
        for events in (self.fits, self.compiles):
            models = [e.model for e in events if e.model is not None and e.model.members]
            if models:
                return models[-1]
        built = [m for _, m in self.all_models if m.members]
        return built[-1] if built else None

    @staticmethod
    def _latest(events: list[_Event], model: _Model | None) -> _Event | None:
        own = [e for e in events if model is not None and e.model is model]
        return (own or events or [None])[-1]

    def _compiled(self, event: _Event) -> dict[str, _Found]:
        found: dict[str, _Found] = {}
        call, piece = event.call, event.piece
        arguments = self._arguments(call, "compile")
        if "optimizer" in arguments:
            found.update(self._optimizer(call, piece, arguments["optimizer"]))
        if "loss" in arguments:
            found.update(self._loss(call, piece, arguments["loss"]))
        metrics = arguments.get("metrics")
        written = self._keyword_text(call, piece, metrics) if metrics is not None else None
        resolved, where = self._resolve(metrics, piece)
        if isinstance(resolved, ast.Dict):
            resolved = ast.List(elts=list(resolved.values))
        if isinstance(resolved, ast.List | ast.Tuple):
            names = [self._constant(e, where) if isinstance(e, ast.Constant) else _last(e) for e in resolved.elts]
            accuracy = any(isinstance(n, str) and self.names.metrics.get(squash(n), ("", {}))[1].get("family")
                           == "accuracy" for n in names)
            found["code_accuracy_metric"] = _Found(accuracy, f"you wrote {written}")
        elif metrics is None:
            found["code_accuracy_metric"] = _Found(False, f"you wrote {event.receiver}.compile(...) with no metrics")
        return found

    def _optimizer(self, call: ast.Call, piece: Piece, given: ast.expr, defaults: bool = True) -> dict[str, _Found]:
        found: dict[str, _Found] = {}
        expr, where = self._resolve(given, piece)
        if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
            name, quoted, built = expr.value, self._keyword_text(call, piece, given), None
        elif isinstance(expr, ast.Call):
            name, quoted, built = _last(expr.func), _brief(where, expr), expr
        elif isinstance(expr, ast.Attribute | ast.Name):
            name, quoted, built = _last(expr), self._keyword_text(call, piece, given), None
        else:
            return found
        known = self.names.optimizers.get(squash(name or ""))
        if known is None:
            return found
        found["optimizer"] = _Found(name, f"you wrote {quoted}")
        if built is not None:
            arguments = self._arguments(built, "optimizer")
            for key in ("learning_rate", "momentum"):
                value = self._number(arguments.get(key), where)
                if value is not None and value >= 0:
                    found[key] = _Found(value, f"you wrote {_brief(where, built, keep=(arguments[key],))}")
        if defaults and "momentum" not in found and known[1].get("momentum"):
            found["momentum"] = _Found(0.0, f"you wrote {quoted}, with no momentum")
        return found

    def _loss(self, call: ast.Call, piece: Piece, given: ast.expr, defaults: bool = True) -> dict[str, _Found]:
        found: dict[str, _Found] = {}
        expr, where = self._resolve(given, piece)
        quoted = self._keyword_text(call, piece, given)
        if isinstance(expr, ast.Lambda):
            self.lambdas.append((expr, where, "your loss"))
            return {"code_custom_loss": _Found(True, f"you wrote {quoted}")}
        name = expr.value if isinstance(expr, ast.Constant) and isinstance(expr.value, str) else _last(expr)
        if not name:
            return found
        if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name):
            function = expr.func.id
        else:
            function = expr.id if isinstance(expr, ast.Name) else None
        if function is not None and (function in self.defs or function in self.classes):
            if function in self.defs:
                self.lambdas.append((self.defs[function][0], self.defs[function][1], function))
            found["loss"] = _Found(function, f"you wrote {quoted}, your own function")
            found["code_custom_loss"] = _Found(True, f"you wrote {quoted}")
            return found
        known = self.names.losses.get(squash(name))
        if known is None:
            return found
        found["loss"] = _Found(name, f"you wrote {quoted}")
        found["code_custom_loss"] = _Found(False, f"you wrote {quoted}")
        if known[1]["family"] == "cross_entropy":
            logits = self._arguments(expr, "loss").get("from_logits") if isinstance(expr, ast.Call) else None
            if isinstance(logits, ast.Constant) and isinstance(logits.value, bool):
                found["from_logits"] = _Found(logits.value, f"you wrote {_brief(where, expr, keep=(logits,))}")
            elif logits is None and defaults:
                found["from_logits"] = _Found(False, f"you wrote {quoted}, without from_logits=True")
        return found

    def _fitted(self, event: _Event) -> dict[str, _Found]:
        found: dict[str, _Found] = {}
        call, piece = event.call, event.piece
        arguments = self._arguments(call, "fit")
        for key in ("epochs", "batch_size"):
            value = self._number(arguments.get(key), piece)
            if value is not None and value == int(value) and value >= 1:
                found[key] = _Found(int(value), self._cite(call, piece, arguments[key]))
        if "batch_size" not in found and isinstance(event.data["x"], ast.Name):
            made, where = self._resolve(event.data["x"], piece)
            if isinstance(made, ast.Call) and self._does(made) == "flow":
                size = self._arguments(made, "flow").get("batch_size")
                value = self._number(size, where)
                if value is not None and value == int(value) and value >= 1:
                    found["batch_size"] = _Found(int(value), self._cite(made, where, size))
        rows = self._literal_rows(event.data["x"], piece)
        if rows is not None:
            found["n_samples"] = rows
        if "epochs" not in found and "epochs" not in arguments and self._defaults_apply(event):
            default = self.names.arguments.get("epochs", {}).get("default")
            if default is not None:
                found["epochs"] = _Found(int(default), f"you called {_brief(piece, call)} without epochs, "
                                                       f"so Keras trains {int(default)} epoch")
        split = self._number(arguments.get("validation_split"), piece)
        if split is not None and 0 <= split < 1:
            found["validation_split"] = _Found(float(split), self._cite(call, piece, arguments["validation_split"]))
        shuffle = arguments.get("shuffle")
        if isinstance(shuffle, ast.Constant) and isinstance(shuffle.value, bool):
            found["shuffle"] = _Found(shuffle.value, self._cite(call, piece, shuffle))
        return found

    def _literal_rows(self, x: ast.expr | None, piece: Piece) -> _Found | None:
        """How many examples a fit call trains on, when its inputs are written out in the code: x = [1, 2, 3]."""
        made, where = self._resolve(x, piece)
        if isinstance(made, ast.Call) and len(made.args) == 1 and _last(made.func) in ("array", "asarray", "constant"):
            made = made.args[0]
        if not isinstance(made, ast.List | ast.Tuple) or len(made.elts) < 2 or not all(map(_numbers, made.elts)):
            return None  # a list of arrays is a multi-input model's inputs, not examples
        return _Found(len(made.elts), f"your inputs are written out: {_quote(where, made)}")

    @staticmethod
    def _defaults_apply(event: _Event) -> bool:
        """Whether an argument left out of a fit call takes Keras's default: not when the call runs in a
        loop (each call trains on), passes ``**kwargs`` or gives its arguments by position, nor to a
        ``fit()`` named in prose without its data."""
        call = event.call
        return (event.data["x"] is not None and not event.data["looped"] and len(call.args) <= 2
                and all(k.arg is not None for k in call.keywords))

    def _cite(self, call: ast.Call, piece: Piece, value: ast.expr) -> str:
        """`you wrote epochs=3`, and the name's value when the argument was a name (`epochs=EPOCHS`, EPOCHS = 50)."""
        note = f"you wrote {self._keyword_text(call, piece, value)}"
        if isinstance(value, ast.Name):
            resolved, where = self._resolve(value, piece)
            if resolved is not value and resolved is not None:
                note += f", and {value.id} = {_text(where, resolved)}"
        return note

    def _loose(self, found: dict[str, _Found]) -> dict[str, _Found]:
        """Arguments written on their own inline (`lr=0.01`), for what the calls did not already say."""
        loose: dict[str, _Found] = {}
        for name, value, piece in self.loose:
            entry = self.names.arguments.get(squash(name))
            if entry is None or entry["means"] in found or entry["means"] in loose:
                continue
            means, quoted = entry["means"], f"you wrote {name}={_text(piece, value)}"
            if means in ("optimizer", "loss"):
                fake = ast.Call(func=ast.Name("compile"), args=[], keywords=[ast.keyword(name, value)])
                read = self._optimizer if means == "optimizer" else self._loss
                facts = read(fake, piece, value, defaults=False)
                loose.update({k: v for k, v in facts.items() if k not in found})
                continue
            number = self._number(value, piece)
            if means in ("learning_rate", "momentum", "validation_split") and number is not None and number >= 0:
                loose[means] = _Found(number, quoted)
            elif means in ("epochs", "batch_size") and number is not None and number == int(number) and number >= 1:
                loose[means] = _Found(int(number), quoted)
            elif means in ("shuffle", "from_logits") and isinstance(value, ast.Constant) \
                    and isinstance(value.value, bool):
                loose[means] = _Found(value.value, quoted)
        return loose

    # -- the model's layers -----------------------------------------------------------------------

    def _flatten(self, model: _Model, depth: int = 0) -> tuple[list[_Layer | None], bool]:
        """A model's layers, nested models opened in place; and whether all of it was seen."""
        layers: list[_Layer | None] = []
        complete = model.complete and model.created and depth < 8
        for member in model.members:
            if isinstance(member, _Model):
                inner, whole = self._flatten(member, depth + 1)
                layers += inner
                complete = complete and whole
            else:
                layers.append(member)
                complete = complete and member is not None and member.kind != "pretrained"
        return layers, complete

    def _activation_name(self, expr: ast.expr | None, piece: Piece) -> str | None:
        """An activation as written (`'relu'`, `tf.nn.relu`, `LeakyReLU()`, None), if keras.yaml knows it."""
        expr, piece = self._resolve(expr, piece)
        if expr is None:
            return None
        if isinstance(expr, ast.Constant):
            name = "linear" if expr.value is None else expr.value
        elif isinstance(expr, ast.Call):
            layer = self._layer(expr, piece)
            name = layer.entry.get("applies") if layer is not None else None
        else:
            name = _last(expr)
        return name if isinstance(name, str) and squash(name) in self.names.activations else None

    def _applied(self, layer: _Layer) -> tuple[str | None, ast.expr | None]:
        """The activation an activation layer applies, and the argument that says it."""
        if layer.entry.get("applies"):
            return layer.entry["applies"], None
        given = self._arguments(layer.call, "activation").get("activation")
        return self._activation_name(given, layer.piece), given

    def _activation(self, layers: list[_Layer | None], i: int) -> tuple[str | None, str]:
        """The activation a weighted layer's output goes through, and the note that cites it."""
        layer = layers[i].own  # type: ignore[union-attr]
        given = self._arguments(layer.call, layer.entry["kind"], layer=True).get("activation")
        own = self._activation_name(given, layer.piece) if given is not None else None
        if given is not None and own is None:
            return None, ""
        if own is None or squash(own) == "linear":
            for after in layers[i + 1:]:
                if after is None or after.entry.get("weighted"):
                    break
                if after.kind == "activation":
                    name, argument = self._applied(after)
                    if name is None:
                        return None, ""
                    first = _brief(layer.piece, layer.call, keep=(given,) if given is not None else ())
                    return name, f"you wrote {first} then {_brief(after.piece, after.call)}"
        if own is not None:
            return own, f"you wrote {_brief(layer.piece, layer.call, keep=(given,))}"
        default = layer.entry.get("default_activation")
        if default is None:
            return None, ""
        return default, f"you wrote {_brief(layer.piece, layer.call)} with no activation"

    def _architecture(self, model: _Model) -> dict[str, _Found]:
        found: dict[str, _Found] = {}
        layers, whole = self._flatten(model)
        known = [layer for layer in layers if layer is not None]
        weighted = [i for i, layer in enumerate(layers) if layer is not None and layer.own.entry.get("weighted")]
        output = weighted[-1] if weighted else None
        if output is not None and model.outputs == 1 and all(
                layer is not None and layer.kind in AFTER_OUTPUT for layer in layers[output + 1:]):
            last = layers[output].own  # type: ignore[union-attr]
            activation, note = self._activation(layers, output)
            if activation is not None:
                found["output_activation"] = _Found(activation, note)
            if last.entry["kind"] in ("dense", "recurrent") and layers[output].inner is None:  # type: ignore[union-attr]
                units = self._arguments(last.call, last.entry["kind"], layer=True).get("units")
                value = self._number(units, last.piece)
                if value is not None and value == int(value) and value >= 1:
                    found["output_units"] = _Found(int(value), f"you wrote {_brief(last.piece, last.call, keep=(units,))}")
            hidden = weighted[:-1]
            activations = [(self._activation(layers, i), i) for i in hidden]
            named = [(name, note) for (name, note), _ in activations if name is not None]
            if named and len(named) == len(hidden):
                top, _ = Counter(name for name, _ in named).most_common(1)[0]
                found["hidden_activation"] = _Found(top, next(note for name, note in named if name == top))
            if whole:
                found["n_hidden_layers"] = _Found(len(hidden), f"you wrote {len(hidden)} hidden layer"
                                                  f"{'' if len(hidden) == 1 else 's'} before "
                                                  f"{_brief(last.piece, last.call)}")
        initializers = []
        for i in weighted:
            layer = layers[i].own  # type: ignore[union-attr]
            given = self._arguments(layer.call, layer.entry["kind"], layer=True).get("kernel_initializer")
            name = self._initializer_name(given, layer.piece)
            if name is not None:
                initializers.append((name, f"you wrote {self._keyword_text(layer.call, layer.piece, given)}"))
        if initializers:
            top, _ = Counter(name for name, _ in initializers).most_common(1)[0]
            found["kernel_initializer"] = _Found(top, next(note for name, note in initializers if name == top))
        found.update(self._regularisation(known, whole))
        if not self._ends_in_sight(model):
            for key in ("output_activation", "output_units", "hidden_activation", "n_hidden_layers"):
                found.pop(key, None)
        found.update(self._kinds(known, whole))
        found.update(self._features(model, layers))
        return found

    def _ends_in_sight(self, model: _Model) -> bool:
        """Whether the last layer seen is the model's last: not where a `...` may have cut more layers off.

        A model added to in a block that lost lines counts as ended where it is compiled or trained after.
        """
        if model.inputs or not model.blocks & self.code.partial:
            return True
        return any(e.model is model and e.pos > model.last for e in (*self.compiles, *self.fits))

    def _initializer_name(self, expr: ast.expr | None, piece: Piece) -> str | None:
        expr, piece = self._resolve(expr, piece)
        if expr is None:
            return None
        if isinstance(expr, ast.Constant):  # a string is an initializer's name by Keras's own rules
            return expr.value if isinstance(expr.value, str) and expr.value.strip() else None
        name = _last(expr.func if isinstance(expr, ast.Call) else expr)
        return name if isinstance(name, str) and squash(name) in self.names.initializers else None

    def _regularisation(self, layers: list[_Layer], whole: bool) -> dict[str, _Found]:
        found: dict[str, _Found] = {}
        rates = []
        for layer in layers:
            if layer.kind == "dropout":
                rate = self._arguments(layer.call, "dropout", layer=True).get("rate")
                value = self._number(rate, layer.piece)
                if value is not None and value >= 0:  # Keras 2 capped a rate of 1 or more at 1: every unit dropped
                    rates.append((min(float(value), 1.0), f"you wrote {_brief(layer.piece, layer.call, keep=(rate,))}"))
        if rates:
            found["dropout"] = _Found(*max(rates, key=lambda r: r[0]))
        elif whole:
            found["dropout"] = _Found(0.0, "your model code has no Dropout layer")
        factors = []
        for layer in layers:
            own = layer.own
            given = self._arguments(own.call, own.entry["kind"], layer=True).get("regularizer")
            if given is not None:
                factor = self._l2(given, own.piece)
                if factor is not None:
                    factors.append((factor, f"you wrote {self._keyword_text(own.call, own.piece, given)}"))
        if factors:
            found["l2"] = _Found(*max(factors, key=lambda f: f[0]))
        elif whole:
            found["l2"] = _Found(0.0, "your model code has no kernel_regularizer")
        found.update(_present(layers, "batch_norm", "batch_norm", "BatchNormalization", whole))
        return found

    def _l2(self, expr: ast.expr, piece: Piece) -> float | None:
        """The L2 factor a regularizer argument sets: l2(0.01), L2(l2=1e-4), l1_l2(0, 0.01), 'l2'."""
        expr, piece = self._resolve(expr, piece)
        if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
            entry = self.names.regularizers.get(squash(expr.value))
            return None if entry is None else float(entry[1].get("factor_default", 0.0))
        if not isinstance(expr, ast.Call):
            return None
        entry = self.names.regularizers.get(squash(_last(expr.func) or ""))
        if entry is None:
            return None
        spec = entry[1]
        for keyword in expr.keywords:
            if keyword.arg in spec.get("factor_named", ()):
                value = self._number(keyword.value, piece)
                return None if value is None else float(value)
        at = spec.get("factor_at")
        if at is not None and len(expr.args) > at:
            value = self._number(expr.args[at], piece)
            return None if value is None else float(value)
        if "factor_at" in spec or "factor_named" in spec:
            return float(spec["factor_default"]) if "factor_default" in spec else None
        return 0.0

    def _kinds(self, layers: list[_Layer], whole: bool) -> dict[str, _Found]:
        found: dict[str, _Found] = {}
        for key, kind, noun in (("code_recurrent_layers", "recurrent", "recurrent"),
                                ("code_conv_layers", "conv", "convolutional")):
            these = [layer.own for layer in layers if layer.kind == kind]
            if these:
                names = ", ".join(_text(t.piece, t.call.func) for t in these[:3]) + (", …" if len(these) > 3 else "")
                found[key] = _Found(len(these), f"you wrote {len(these)} {noun} layer"
                                                f"{'' if len(these) == 1 else 's'}: {names}")
            elif whole:
                found[key] = _Found(0, f"your model code has no {noun} layer")
        found.update(_present(layers, "embedding", "code_embedding", "Embedding", whole))
        return found

    def _features(self, model: _Model, layers: list[_Layer | None]) -> dict[str, _Found]:
        """n_features from the shape of a flat input: input_dim=8, input_shape=(784,), Input(shape=(20,))."""
        if not model.created or not model.members or not isinstance(model.members[0], _Layer):
            return {}  # the first layer is not in sight, or the input feeds a model the code does not show
        if model.inputs:
            if len(model.inputs) != 1:
                return {}
            first: _Layer | None = model.inputs[0]
        else:
            first = layers[0] if layers else None
            if isinstance(first, _Layer) and first.kind == "wrapper":
                return {}
        if first is None or first.kind not in ("input", "dense"):
            return {}
        arguments = self._arguments(first.call, first.kind, layer=True)
        for means in ("input_dim", "input_shape", "batch_input_shape"):
            given = arguments.get(means)
            if given is None:
                continue
            value = self._constant(given, first.piece)
            if means == "input_dim":
                size = value
            elif isinstance(value, tuple) and len(value) == (2 if means == "batch_input_shape" else 1):
                size = value[-1]
            else:
                return {}
            if isinstance(size, int) and not isinstance(size, bool) and size >= 1:
                return {"n_features": _Found(size, f"you wrote {self._cite_argument(first, given)}")}
            return {}
        return {}

    def _cite_argument(self, layer: _Layer, given: ast.expr) -> str:
        if layer.kind == "input":
            return _brief(layer.piece, layer.call, keep=(given,))
        return self._keyword_text(layer.call, layer.piece, given)

    # -- input scaling and preprocessing ----------------------------------------------------------

    def _scaling(self, model: _Model | None, fit: _Event | None) -> dict[str, _Found]:
        found: dict[str, _Found] = {}
        in_model: dict[str, str] = {}
        if model is not None:
            for layer in self._flatten(model)[0]:
                label = self.names.scaling_calls.get(squash(layer.key)) if layer is not None else None
                if label is not None:
                    in_model.setdefault(label, _quote(layer.piece, layer.call))
        train = fit.data["x_prep"] if fit is not None else None
        if train is not None:
            labels = {**train.labels, **in_model}
        else:
            # No fit call, or one given no data: what was done to any input array.
            labels = dict(in_model)
            for name, prep in self.prep.items():
                for label, note in prep.labels.items():
                    if not self._names_labels(name):
                        labels.setdefault(label, note)
        states = {self.names.states[label]: note for label, note in labels.items() if label in self.names.states}
        if len(states) == 1:
            (state, note), = states.items()
            found["input_scaling"] = _Found(state, f"you wrote {note}")
        if fit is not None and train is not None and train.labels:
            found.update(self._preprocessing_differs(fit, dict(train.labels)))
        return found

    def _names_labels(self, name: str) -> bool:
        """Whether a variable's name says it holds labels (y, y_train, train_labels)."""
        return any(self.names.roles.get(word) == "labels" for word in _tokens(name))

    def _preprocessing_differs(self, fit: _Event, train: dict[str, str]) -> dict[str, _Found]:
        held_out = []
        if fit.data["val"] is not None:
            held_out.append((fit.data["val"], fit.data["val_prep"], fit.piece))
        receivers = {e.receiver for e in (*self.fits, *self.compiles)} | set(self.models)
        for event in self.evaluations:
            if event.receiver in receivers:
                held_out.append((event.data[0], event.data[1], event.piece))
        for expr, prep, piece in held_out:
            if not prep.complete:
                continue  # data the code does not show in full may have been prepared out of sight
            missing = [label for label in train if label not in prep.labels]
            if missing:
                text = _text(piece, expr)
                return {"code_preprocessing_differs": _Found(
                    True, f"you wrote {train[missing[0]]} for the training data, but not for {text}")}
        return {}

    # -- other causes' evidence -------------------------------------------------------------------

    def _code_facts(self, found: dict[str, _Found]) -> dict[str, _Found]:
        facts: dict[str, _Found] = {}
        facts.update(self._frozen())
        facts.update(self._shuffled_apart())
        facts.update(self._unsafe_math())
        bases = [(layer, self._arguments(layer.call, "pretrained", layer=True).get("weights"))
                 for layer in self.pretrained]
        # keras.applications load ImageNet weights unless told weights=None.
        trained = [(layer, w) for layer, w in bases if not (isinstance(w, ast.Constant) and w.value is None)]
        if bases:
            layer, weights = (trained or bases)[0]
            keep = (weights,) if weights is not None else ()
            facts["code_pretrained_base"] = _Found(bool(trained), f"you wrote {_brief(layer.piece, layer.call, keep=keep)}")
            if trained and self.evaluations and not self.fits:
                # A pretrained network predicting as it came: its inputs must go through its own preprocess_input.
                called = any("preprocess_input" in piece.src for piece in self.code.pieces)
                facts["code_skips_preprocess_input"] = _Found(
                    not called, f"you wrote {_brief(layer.piece, layer.call, keep=keep)}")
        return facts

    def _frozen(self) -> dict[str, _Found]:
        facts: dict[str, _Found] = {}
        last: dict[str, tuple[bool, str]] = {}
        for key, flag, quote, _, _, _ in self.trainable:
            last[key] = (flag, quote)
        frozen = [quote for flag, quote in last.values() if flag is False]
        if frozen:
            facts["code_frozen_layers"] = _Found(True, f"you wrote {frozen[0]}")
        for _, _, quote, pos, piece, assigned in self.trainable:
            before = [e for e in self.compiles if e.pos < pos and e.piece.block == piece.block]
            if assigned and before and not any(e.pos > pos for e in self.compiles):
                facts["code_trainable_after_compile"] = _Found(
                    True, f"you wrote {quote} after {before[-1].receiver}.compile(...) and did not compile again")
                break
        return facts

    def _shuffled_apart(self) -> dict[str, _Found]:
        for a, b in zip(self.shuffles, self.shuffles[1:]):
            if a.receiver == b.receiver or a.piece.block != b.piece.block:
                continue
            if any(a.pos <= s <= b.pos for s in self.seeds):
                continue  # the same seed before each shuffle: the same permutation
            if frozenset((a.receiver, b.receiver)) in self.together or self._pair(a.receiver, b.receiver):
                return {"code_shuffles_x_and_y_apart": _Found(
                    True, f"you wrote {a.data} and {b.data}, which shuffle them differently")}
        return {}

    def _pair(self, a: str | None, b: str | None) -> bool:
        """Names of an input array and its labels: X and y, x_train and y_train, images and labels."""
        if not a or not b:
            return False
        ta, tb = _tokens(a), _tokens(b)
        if len(ta) != len(tb):
            return False
        differ = [(p, q) for p, q in zip(ta, tb) if p != q]
        if len(differ) != 1:
            return False
        roles = {self.names.roles.get(differ[0][0]), self.names.roles.get(differ[0][1])}
        return roles == {"inputs", "labels"}

    def _unsafe_math(self) -> dict[str, _Found]:
        functions = list(self.lambdas)
        for call_layer in self._lambda_layers():
            functions.append(call_layer)
        for name, (function, piece) in self.defs.items():
            params = [a.arg for a in function.args.args]
            if tuple(params[:2]) == LOSS_PARAMETERS and all(f is not function for f, _, _ in functions):
                functions.append((function, piece, name))
        for function, piece, name in functions:
            risk = self._risk(function, piece)
            if risk is not None:
                where = "your loss" if name == "your loss" else (
                    "a Lambda layer" if name == "Lambda" else name)
                return {"code_unsafe_math": _Found(True, f"you wrote {risk} in {where}, with no clip or epsilon")}
        return {}

    def _lambda_layers(self) -> Iterator[tuple[ast.AST, Piece, str]]:
        seen = set()
        for layer in [*self.objects.values(), *(m for _, model in self.all_models for m in model.members),
                      *(n.layer for n in self.nodes)]:
            if isinstance(layer, _Layer) and layer.key == "lambda" and id(layer.call) not in seen:
                seen.add(id(layer.call))
                given = next(iter(layer.call.args), None)
                if isinstance(given, ast.Lambda):
                    yield given, layer.piece, "Lambda"
                elif isinstance(given, ast.Name) and given.id in self.defs:
                    yield self.defs[given.id][0], self.defs[given.id][1], given.id

    def _risk(self, function: ast.AST, piece: Piece) -> str | None:
        """The first log, exp, sqrt or division in a function that can reach 0 or overflow unguarded."""
        inner = [n for n in ast.walk(function) if isinstance(n, ast.FunctionDef | ast.Lambda) and n is not function]
        # A loss factory's own arguments are settings (weights, a smoothing term); the tensors are the inner function's.
        tainted = {a.arg for owner in (inner or [function]) for a in owner.args.args}  # type: ignore[attr-defined]
        assignments = sorted((n for n in ast.walk(function) if isinstance(n, ast.Assign | ast.AugAssign)),
                             key=lambda n: (n.lineno, n.col_offset))
        for node in assignments:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = {t.id for target in targets for t in ast.walk(target) if isinstance(t, ast.Name)}
            if isinstance(node, ast.Assign) and self._guarded(node.value):
                tainted -= names  # a clipped copy is safe
            elif self._refers(node.value, tainted):
                tainted |= names
        for node in sorted((n for n in ast.walk(function) if isinstance(n, ast.Call | ast.BinOp)),
                           key=lambda n: (n.lineno, n.col_offset)):
            if isinstance(node, ast.Call) and node.args:
                entry = self.names.math.get(squash(_last(node.func) or ""))
                if entry is not None and entry[1]["role"] == "risk" and self._refers(node.args[0], tainted) \
                        and not self._guarded(node.args[0]):
                    return _quote(piece, node)
            if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div) and self._refers(node.right, tainted) \
                    and not self._guarded(node.right):
                return _quote(piece, node)
        return None

    def _refers(self, expr: ast.AST, names: set[str]) -> bool:
        """Whether a tensor the function was given reaches this expression (its shape or size does not count)."""
        if isinstance(expr, ast.Name):
            return expr.id in names
        if isinstance(expr, ast.Call):
            entry = self.names.math.get(squash(_last(expr.func) or ""))
            if entry is not None and entry[1]["role"] == "size":
                return False
        return any(self._refers(child, names) for child in ast.iter_child_nodes(expr))

    def _guarded(self, expr: ast.AST) -> bool:
        """Whether an argument is kept away from 0 and overflow: a clip, a maximum, `+ K.epsilon()`, `+ 1e-7`."""
        for node in ast.walk(expr):
            if isinstance(node, ast.Call):
                entry = self.names.math.get(squash(_last(node.func) or ""))
                if entry is not None and entry[1]["role"] == "guard":
                    return True
            if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
                for side in (node.left, node.right):
                    if isinstance(side, ast.Constant) and isinstance(side.value, int | float) and side.value > 0:
                        return True
                    if isinstance(side, ast.Name | ast.Attribute) and any(
                            self.names.math.get(w, ("", {}))[1].get("role") == "guard" for w in _words_in(side)):
                        return True
        return False


_NOWHERE = Piece("", ast.Module(body=[], type_ignores=[]), -1)


def _statements(body: list[ast.stmt], loop: ast.For | None = None,
                function: str | None = None) -> Iterator[tuple[ast.stmt, ast.For | None, str | None]]:
    """Every statement in reading order, with the loop and the function it is in (bodies opened in place)."""
    for stmt in body:
        yield stmt, loop, function
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
            yield from _statements(stmt.body, None, stmt.name)
        elif isinstance(stmt, ast.For | ast.AsyncFor):
            yield from _statements(stmt.body, stmt, function)
            yield from _statements(stmt.orelse, loop, function)
        elif isinstance(stmt, ast.If | ast.While):
            yield from _statements(stmt.body, loop, function)
            yield from _statements(stmt.orelse, loop, function)
        elif isinstance(stmt, ast.With | ast.AsyncWith):
            yield from _statements(stmt.body, loop, function)
        elif isinstance(stmt, ast.Try):
            for part in (stmt.body, *(h.body for h in stmt.handlers), stmt.orelse, stmt.finalbody):
                yield from _statements(part, loop, function)


def _all_names(code: Code) -> set[str]:
    return {n.id for piece in code.pieces for n in ast.walk(piece.tree) if isinstance(n, ast.Name)}


def _data_names(code: Code) -> set[str]:
    """Names used as values somewhere (an argument, an operand), not only as the `np` of `np.load(...)`."""
    found: set[str] = set()
    for piece in code.pieces:
        receivers = {id(n.value) for n in ast.walk(piece.tree) if isinstance(n, ast.Attribute)}
        found |= {n.id for n in ast.walk(piece.tree)
                  if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and id(n) not in receivers}
    return found


def _walk_calls(stmt: ast.stmt) -> list[ast.Call]:
    """The calls in one statement (not in the bodies of statements it contains), outermost first."""
    if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return []
    roots: list[ast.AST]
    if isinstance(stmt, ast.For | ast.AsyncFor):
        roots = [stmt.iter]
    elif isinstance(stmt, ast.If | ast.While):
        roots = [stmt.test]
    elif isinstance(stmt, ast.With | ast.AsyncWith):
        roots = [item.context_expr for item in stmt.items]
    elif isinstance(stmt, ast.Try):
        roots = []
    else:
        roots = [stmt]
    calls = []
    for root in roots:
        calls += [node for node in ast.walk(root) if isinstance(node, ast.Call)]
    return calls


def _present(layers: list[_Layer], kind: str, key: str, name: str, whole: bool) -> dict[str, _Found]:
    """Whether the model has a layer of a kind, quoting the first; its absence only when the code shows the whole model."""
    first = next((layer for layer in layers if layer.kind == kind), None)
    if first is not None:
        return {key: _Found(True, f"you wrote {_brief(first.piece, first.call)}")}
    return {key: _Found(False, f"your model code has no {name} layer")} if whole else {}


def _numbers(expr: ast.expr) -> bool:
    """A number written out, or a list of them: one example of data typed into the code."""
    if isinstance(expr, ast.UnaryOp):
        expr = expr.operand
    if isinstance(expr, ast.List | ast.Tuple):
        return all(map(_numbers, expr.elts))
    return isinstance(expr, ast.Constant) and isinstance(expr.value, int | float) and not isinstance(expr.value, bool)


def _last(expr: ast.AST | None) -> str | None:
    """The name a call or reference ends with: `tf.keras.layers.Dense` → Dense."""
    if isinstance(expr, ast.Call):
        expr = expr.func
    if isinstance(expr, ast.Name):
        return expr.id
    if isinstance(expr, ast.Attribute):
        return expr.attr
    return None


def _words_in(expr: ast.AST) -> set[str]:
    """The squashed words of every name in an expression: `X.std(axis=0)` → {x, std, axis}."""
    words: set[str] = set()
    for node in ast.walk(expr):
        if isinstance(node, ast.Name):
            words |= set(_tokens(node.id))
        elif isinstance(node, ast.Attribute):
            words |= set(_tokens(node.attr))
    return words


def _tokens(name: str) -> list[str]:
    """A variable name's words: `x_train` → [x, train], `trainX` → [train, x]."""
    spaced = re.sub(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])", "_", name)
    return [squash(t) for t in spaced.split("_") if t]


def _text(piece: Piece, node: ast.AST | None) -> str:
    """The code as the user wrote it, on one line."""
    if node is None:
        return ""
    try:
        text = ast.get_source_segment(piece.src, node) if piece.src else None
    except (IndexError, ValueError):
        text = None
    if text is None:
        try:
            text = ast.unparse(node)
        except (ValueError, RecursionError):
            return "..."
    return " ".join(text.split())


def _quote(piece: Piece, node: ast.AST | None) -> str:
    """The code as written, cut to a quotable length."""
    text = _text(piece, node)
    return text if len(text) <= MAX_QUOTE else text[:MAX_QUOTE - 1].rstrip() + "…"


def _brief(piece: Piece, call: ast.expr, keep: tuple[ast.expr | None, ...] = ()) -> str:
    """A call as written; a long one cut to its first argument and the ones a note is about."""
    text = _text(piece, call)
    if len(text) <= MAX_QUOTE or not isinstance(call, ast.Call):
        return text
    parts = [_text(piece, call.args[0])] if call.args else []
    for arg in call.args[1:]:
        if any(arg is k for k in keep):
            parts.append(_text(piece, arg))
    for keyword in call.keywords:
        if any(keyword.value is k for k in keep):
            parts.append(f"{keyword.arg}={_text(piece, keyword.value)}")
    if len(parts) < len(call.args) + len(call.keywords):
        parts.append("…")
    return f"{_text(piece, call.func)}({', '.join(parts)})"


# --- model.summary() ------------------------------------------------------------------------------

_COUNT = r"\s*([\d,]+)"
_TOTALS = {
    "total": re.compile(r"^[\s│|┃]*Total params:" + _COUNT, re.M),
    "trainable": re.compile(r"^[\s│|┃]*Trainable params:" + _COUNT, re.M),
    "frozen": re.compile(r"^[\s│|┃]*Non-trainable params:" + _COUNT, re.M),
    "optimizer": re.compile(r"^[\s│|┃]*Optimizer params:" + _COUNT, re.M),
}
_HEADER = re.compile(r"Layer \(type\)")
_BOX_LINE = set("─━┏┓┡┩┳╇┼├┤└┘┴┬│┃ ")
_RULE = set("_=-─━ ")
_ROW = re.compile(r"^\s*(?P<name>[\w.:/\-]+)\s*\((?P<type>[A-Za-z_]\w*)\)\s+"
                  r"(?P<shape>\[?\(.*?\)\]?|multiple|\?)\s+(?P<params>[\d,]+)(?:\s|$)")
#: TF 2.x cuts a long class name at the column's edge and carries the rest to the next line.
_ROW_CUT = re.compile(r"^\s*(?P<name>[\w.:/\-]+)\s*\((?P<type>[A-Za-z_]\w*)\s+"
                      r"(?P<shape>\[?\(.*?\)\]?|multiple)\s+(?P<params>[\d,]+)(?:\s|$)")
_TYPE_REST = re.compile(r"^\s*(?P<rest>\w+)\)")
_CONNECTIONS = re.compile(r"^\s*(?:[\w.\-]+\[\d+\]\[\d+\]\s*,?\s*)+$")
_CELL_NAME = re.compile(r"^(?P<name>[\w.:/\-]+)\s*\((?P<type>[A-Za-z_]\w*)\)$")
_SHAPE = re.compile(r"^\[?\(None,\s*(\d+)\)\]?$")


@dataclass
class _Row:
    name: str
    type: str | None
    shape: str
    params: int


def _summary(names: _Names, text: str) -> tuple[list[Fact], list[tuple[int, int]]]:
    """Facts from the last summary table in the text, and the line spans of every table found."""
    lines = text.split("\n")
    totals = [i for i, line in enumerate(lines) if _TOTALS["total"].match(line)]
    headers = [i for i, line in enumerate(lines) if _HEADER.search(line)]
    if not totals:
        return [], []
    spans = []
    previous = 0
    tables = []
    for t in totals:
        start = max([h for h in headers if previous <= h < t], default=t)
        end = t + 1
        while end < len(lines) and end - t < 6 and (re.match(r"^[\s│|┃]*(Trainable|Non-trainable|Optimizer) params:",
                                                              lines[end]) or not lines[end].strip()
                                                     or set(lines[end].strip()) <= set("_=-─━└┘┴ ")):
            end += 1
        spans.append((max(0, start - 2), end))
        tables.append((start, t, end))
        previous = end
    start, t, end = tables[-1]
    block = "\n".join(lines[t:end])
    counts = {key: int(m.group(1).replace(",", "")) for key, pattern in _TOTALS.items()
              if (m := pattern.search(block))}
    facts: list[Fact] = []
    shown = {key: pattern.search(block).group(0).strip(" │|┃") for key, pattern in _TOTALS.items()  # type: ignore[union-attr]
             if key in counts}
    total = counts["total"]
    if "optimizer" in counts and "trainable" in counts and "frozen" in counts:
        total = counts["trainable"] + counts["frozen"]
        facts.append(Fact("total_params", total, SUMMARY_SOURCE,
                          f"model.summary() shows {shown['total']}, of which {shown['optimizer']}"))
    else:
        facts.append(Fact("total_params", total, SUMMARY_SOURCE, f"model.summary() shows {shown['total']}"))
    if "trainable" in counts:
        facts.append(Fact("trainable_params", counts["trainable"], SUMMARY_SOURCE,
                          f"model.summary() shows {shown['trainable']}"))
    rows, understood = _rows(lines[start + 1:t]) if start < t else ([], False)
    facts += _layer_facts(names, rows, understood, counts, shown)
    return facts, spans


def _rows(lines: list[str]) -> tuple[list[_Row], bool]:
    """The layer rows of a summary table, and whether every line of it was understood."""
    if any("│" in line for line in lines):
        return _box_rows(lines)
    rows: list[_Row] = []
    understood = True
    cut: _Row | None = None
    for line in lines:
        if not line.strip() or set(line.strip()) <= _RULE:
            continue
        if cut is not None:
            rest = _TYPE_REST.match(line)
            if rest:
                cut.type = (cut.type or "") + rest["rest"]
                cut = None
                continue
        match = _ROW.match(line) or _ROW_CUT.match(line)
        if match:
            row = _Row(match["name"], match["type"], match["shape"], int(match["params"].replace(",", "")))
            cut = row if not _ROW.match(line) else None
            rows.append(row)
        elif not _CONNECTIONS.match(line):
            understood = False
    return rows, understood and cut is None


def _box_rows(lines: list[str]) -> tuple[list[_Row], bool]:
    """Rows of a Keras 3 table: cells between │, a row's cells wrapped over several lines."""
    rows: list[_Row] = []
    understood = True
    record: list[list[str]] = []

    def close() -> None:
        nonlocal understood
        if not record:
            return
        width = max(len(cells) for cells in record)
        columns = [" ".join(cells[i].strip() for cells in record if i < len(cells) and cells[i].strip())
                   for i in range(width)]
        columns = [re.sub(r"\(\s+", "(", re.sub(r"\s+\)", ")", c)) for c in columns]
        named = _CELL_NAME.match(columns[0]) if columns else None
        params = re.fullmatch(r"[\d,]+", columns[2]) if len(columns) > 2 else None
        if named and params:
            rows.append(_Row(named["name"], named["type"], columns[1], int(params.group(0).replace(",", ""))))
        else:
            understood = False
        record.clear()

    for line in lines:
        if not line.strip() or set(line.strip()) <= _BOX_LINE and "│" not in line:
            close()
            continue
        if "│" not in line:
            understood = False
            continue
        record.append(line.strip().strip("│").split("│"))
    close()
    return rows, understood


def _layer_facts(names: _Names, rows: list[_Row], understood: bool, counts: dict[str, int],
                 shown: dict[str, str]) -> list[Fact]:
    facts: list[Fact] = []

    def fact(key: str, value: Any, note: str) -> None:
        facts.append(Fact(key, value, SUMMARY_SOURCE, note))

    kinds = [names.layers.get(squash(r.type or ""), (None, {}))[1] for r in rows]
    whole = understood and bool(rows) and all(k.get("kind") not in (None, "pretrained", "wrapper") for k in kinds)
    norms = [r for r, k in zip(rows, kinds) if k.get("kind") == "batch_norm"]
    frozen = counts.get("frozen")
    if frozen == 0:
        fact("code_frozen_layers", False, f"model.summary() shows {shown['frozen']}")
    elif frozen is not None and rows:
        statistics = sum(r.params // 2 for r in norms)
        nested = [r for r, k in zip(rows, kinds) if not k and r.params > 0]
        if (whole and frozen > statistics) or any(r.params <= frozen - statistics for r in nested):
            fact("code_frozen_layers", True, f"model.summary() shows {shown['frozen']}")
        elif whole and frozen == statistics:  # BatchNormalization's moving statistics, nothing frozen
            fact("code_frozen_layers", False, f"model.summary() shows {shown['frozen']}, "
                                              "all of it BatchNormalization's moving statistics")
    if not rows:
        return facts
    weighted = [i for i, k in enumerate(kinds) if k.get("weighted")]
    if weighted and all(k.get("kind") in AFTER_OUTPUT for k in kinds[weighted[-1] + 1:]):
        last = rows[weighted[-1]]
        size = _SHAPE.match(last.shape)
        if size and kinds[weighted[-1]].get("kind") == "dense":
            fact("output_units", int(size.group(1)),
                 f"model.summary() shows {last.name} ({last.type}) with output shape {last.shape}")
        if whole:
            hidden = len(weighted) - 1
            fact("n_hidden_layers", hidden, f"model.summary() lists {hidden} layer{'' if hidden == 1 else 's'} "
                                            f"with weights before {last.name} ({last.type})")
    for key, kind, noun in (("code_recurrent_layers", "recurrent", "recurrent"),
                            ("code_conv_layers", "conv", "convolutional")):
        these = [r for r, k in zip(rows, kinds) if k.get("kind") == kind]
        if these or whole:
            listed = ", ".join(f"{r.name} ({r.type})" for r in these[:3]) + (", …" if len(these) > 3 else "")
            fact(key, len(these), f"model.summary() lists {len(these)} {noun} layer{'' if len(these) == 1 else 's'}"
                                  + (f": {listed}" if these else ""))
    embedding = [r for r, k in zip(rows, kinds) if k.get("kind") == "embedding"]
    if embedding or whole:
        fact("code_embedding", bool(embedding), f"model.summary() lists {embedding[0].name} ({embedding[0].type})"
             if embedding else "model.summary() lists no Embedding layer")
    if norms or whole:
        fact("batch_norm", bool(norms), f"model.summary() lists {norms[0].name} ({norms[0].type})"
             if norms else "model.summary() lists no BatchNormalization layer")
    inputs = [r for r, k in zip(rows, kinds) if k.get("kind") == "input"]
    if len(inputs) == 1 and (size := _SHAPE.match(inputs[0].shape)):
        fact("n_features", int(size.group(1)),
             f"model.summary() shows {inputs[0].name} ({inputs[0].type}) with shape {inputs[0].shape}")
    return facts
