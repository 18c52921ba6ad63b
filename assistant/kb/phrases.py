"""Compile ``phrases.yaml``: expand its {macros}, compile every regular expression once, check every name.

The file holds the language (what each symptom sounds like, negation words, the words around a
number, how a reply names a contract key); this module puts each table into the shape the reader
(:mod:`assistant.evidence.symptom`) matches with, and refuses, naming the file, the line and the
entry, a macro that does not exist, a phrase that is not a regular expression, and a name that
facts.yaml or thresholds.yaml does not declare.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Iterable, Mapping

from .model import Default, Form, Implication, Implied, KeyPhrase, Phrases, Remedies, Stated, frozen, squash
from .places import Places

FILE = "phrases.yaml"
#: Every phrase is matched without regard to case, and with ASCII word characters: in "loss值为nan",
#: English terms among words of a script written without spaces, \b holds before "nan" as a reader expects.
FLAGS = re.IGNORECASE | re.ASCII
#: A number written with thousands separators: 1,234,567.
THOUSANDS = r"\d{1,3}(?:,\d{3})+"
#: The subjects whose numbers the reader keeps: losses as written, the others as fractions.
MEASURED = ("loss", "accuracy", "train_accuracy", "val_accuracy", "recall")
#: The comparisons an ``implied`` rule may make.
COMPARISONS = ("is", "below", "above", "at_least", "at_most")
#: Where a ``remedies`` form puts the change it is tried with.
CHANGE = "{change}"
#: The macros of an outcome: a form that holds one can only match a text where it matches on its own.
OUTCOMES = ("helped", "no_help")
#: What a known Keras name is masked with before ``stated: names`` phrases are matched; ``{name}`` matches a run of it.
NAME_MARK = "\ue000"
#: Where a ``stated`` phrase puts the number or the Keras name it reads.
COUNT, NAME = "{count}", "{name}"

_MACRO = re.compile(r"\{([A-Za-z_]\w*)\}")


@lru_cache(maxsize=4096)
def _compiled(pattern: str, flags: int = 0) -> re.Pattern[str]:
    """A compiled pattern, kept: a knowledge base holds more patterns than the re module's own cache."""
    return re.compile(pattern, flags)


class PhrasesError(Exception):
    """``phrases.yaml`` names something that does not exist or is not a regular expression."""


class _Compiler:
    """Expands macros and compiles regular expressions, collecting a problem for each bad entry."""

    def __init__(self, macros: Mapping[str, str], at: Places) -> None:
        self.macros = macros
        self.at = at
        self.problems: list[str] = []

    def problem(self, path: tuple[Any, ...], message: str) -> None:
        self.problems.append(f"{self.at.where(FILE, *path)}: {'/'.join(map(str, path))}: {message}")

    def expand(self, text: str, path: tuple[Any, ...], using: tuple[str, ...] = ()) -> str:
        """``text`` with every {macro} replaced by its expansion; an unknown or circular one is a problem.

        A problem inside a macro is reported at the macro's own entry, once, not at every phrase using it.
        """
        def replace(match: re.Match[str]) -> str:
            name = match[1]
            if name not in self.macros:
                self.problem(path, f"unknown macro {{{name}}} (macros are: {', '.join(self.macros)})")
            elif name in using:
                self.problem(path, f"macro {{{name}}} uses itself")
            else:
                return self.expand(self.macros[name], ("macros", name), (*using, name))
            return match[0]
        return _MACRO.sub(replace, text)

    def pattern(self, text: str, path: tuple[Any, ...]) -> str | None:
        """One written regular expression, expanded; None (and a problem) when it does not compile."""
        problems = len(self.problems)
        expanded = self.expand(text, path)
        if len(self.problems) > problems:
            return None
        try:
            _compiled(expanded, FLAGS)
        except re.error as exc:
            self.problem(path, f"not a valid regular expression ({exc}): {text}")
            return None
        return expanded

    def alternatives(self, items: Iterable[str], path: tuple[Any, ...]) -> str:
        """A list of written expressions as one alternation, each checked on its own."""
        checked = [self.pattern(item, (*path, i)) for i, item in enumerate(items)]
        return "|".join(p for p in checked if p is not None) or "(?!)"

    def compiled(self, regex: str, path: tuple[Any, ...]) -> re.Pattern[str]:
        """The final expression of a table; one that still fails (a duplicate group name, say) is a problem."""
        try:
            return _compiled(regex, FLAGS)
        except re.error as exc:
            self.problem(path, f"the entries do not combine into a regular expression ({exc})")
            return _compiled("(?!)")


def _symptom_problem(name: str, facts: Mapping[str, Mapping[str, Any]]) -> str | None:
    spec = facts.get(name)
    if spec is None:
        return f"unknown fact '{name}': declare it in facts.yaml as {{kind: symptom, type: boolean}}"
    if spec["kind"] != "symptom" or spec["type"] != "boolean":
        return f"'{name}' is a {spec['kind']} fact of type {spec['type']} in facts.yaml, not a yes/no symptom"
    return None


def _implications(c: _Compiler, doc: Mapping[str, Any], thresholds: Mapping[str, float]) -> tuple[Implication, ...]:
    """``numbers: implied``: each rule on a measured subject, its limit a number or a threshold's value."""
    rules = []
    for symptom, rule in doc.items():
        path = ("numbers", "implied", symptom)
        for key in ("subject", "minus"):
            if key in rule and rule[key] not in MEASURED:
                c.problem((*path, key), f"subject '{rule[key]}' is not one the reader measures ({', '.join(MEASURED)})")
        op = next(op for op in COMPARISONS if op in rule)
        limit = rule[op]
        if isinstance(limit, str):
            if limit not in thresholds:
                c.problem((*path, op), f"unknown threshold '{limit}' (thresholds.yaml)")
            limit = thresholds.get(limit, 0.0)
        rules.append(Implication(symptom, rule["subject"], rule.get("minus"), op, float(limit)))
    return tuple(rules)


def _keys(c: _Compiler, doc: Mapping[str, list[str]], facts: Mapping[str, Mapping[str, Any]],
          link: str) -> dict[str, KeyPhrase]:
    """``answers: keys``: how a reply names each input fact, compiled for a value after it, a count, a mention."""
    keys = {}
    for key, names in doc.items():
        path = ("answers", "keys", key)
        if facts.get(key, {}).get("kind") != "input":
            c.problem(path, f"'{key}' is not an input fact of facts.yaml, so no answer can give it")
        phrase = c.alternatives(names, path)
        keys[key] = KeyPhrase(
            named=c.compiled(rf"\b(?:{phrase})\b{link}\s*(?P<value>(?:{THOUSANDS}|[\w.+-]+)%?(?:[ -][\w.+-]+){{0,2}})",
                             path),
            mention=c.compiled(rf"\b(?:{phrase})\b", path),
            counted=c.compiled(rf"\b(?P<value>{THOUSANDS}|\d+)\s+(?:{phrase})\b", path))
    return keys


def _value_problem(key: str, value: str, spec: Mapping[str, Any]) -> str | None:
    """Why ``value`` (as written in ``stated: values``) cannot be a value of the input fact ``key``, if it cannot."""
    if spec["type"] == "boolean" and value.lower() not in ("true", "false"):
        return f"'{key}' is yes/no: write 'true' or 'false', not '{value}'"
    if spec["type"] in ("number", "integer"):
        try:
            float(value)
        except ValueError:
            return f"'{key}' is a number, not '{value}'"
    if spec["type"] == "text" and "choices" in spec and "names" not in spec and value not in spec["choices"]:
        return f"'{value}' is not a choice of '{key}' in facts.yaml ({', '.join(spec['choices'])})"
    return None


def _stated(c: _Compiler, doc: Mapping[str, Any], facts: Mapping[str, Mapping[str, Any]],
            count_nouns: str) -> Stated:
    """``stated:``: setup facts said in prose. Every key must be an input fact; ``{count}`` and ``{name}`` stand once."""
    def input_fact(path: tuple[Any, ...], key: str) -> Mapping[str, Any]:
        spec = facts.get(key, {})
        if spec.get("kind") != "input":
            c.problem(path, f"'{key}' is not an input fact of facts.yaml, so no message can state it")
        return spec

    def placed(items: list[str], path: tuple[Any, ...], holder: str, group: str) -> tuple[re.Pattern[str], ...]:
        compiled = []
        for i, text in enumerate(items):
            if text.count(holder) != 1:
                c.problem((*path, i), f"the phrase must hold {holder} exactly once: {text}")
                continue
            expanded = c.pattern(text.replace(holder, "\0"), (*path, i))  # a NUL stands in while macros expand
            if expanded is not None:
                compiled.append(c.compiled(expanded.replace("\0", group), (*path, i)))
        return tuple(compiled)

    def plain(items: list[str], path: tuple[Any, ...]) -> tuple[re.Pattern[str], ...]:
        return tuple(_compiled(p, FLAGS) for i, text in enumerate(items) if (p := c.pattern(text, (*path, i))))

    counting = {" ".join(word.lower().split()): int(n) for word, n in doc["counting_words"].items()}
    words = "|".join(re.escape(w).replace(r"\ ", r"\s+") for w in sorted(counting, key=len, reverse=True))
    count = rf"(?<![\w.,/-])(?P<count>{THOUSANDS}|\d+|\b(?:{words})\b)(?![\w]|[.,]\d)"
    counts = {}
    for key, items in doc["counts"].items():
        spec = input_fact(("stated", "counts", key), key)
        if spec and spec.get("type") != "integer":
            c.problem(("stated", "counts", key), f"'{key}' is not a whole number in facts.yaml, so it is not counted")
        counts[key] = placed(items, ("stated", "counts", key), COUNT, count)
    values = {}
    for key, by_value in doc["values"].items():
        spec = input_fact(("stated", "values", key), key)
        for value in by_value:
            if spec and (problem := _value_problem(key, str(value), spec)) is not None:
                c.problem(("stated", "values", key, value), problem)
        values[key] = frozen({str(value): plain(items, ("stated", "values", key, value))
                              for value, items in by_value.items()})
    outranks = {}
    for key, by_value in doc["outranks"].items():
        for winner, losers in by_value.items():
            for name in (winner, *losers):
                if name not in doc["values"].get(key, {}):
                    c.problem(("stated", "outranks", key, winner), f"'{name}' is not a value of '{key}' under stated: values")
        outranks[key] = frozen({winner: tuple(losers) for winner, losers in by_value.items()})
    unless = {key: c.compiled(c.alternatives(items, ("stated", "unless", key)), ("stated", "unless", key))
              for key, items in doc["unless"].items() if input_fact(("stated", "unless", key), key)}
    implied = []
    for key, by_value in doc["implied"].items():
        for value, rule in by_value.items():
            path = ("stated", "implied", key, value)
            if value not in doc["values"].get(key, {}):
                c.problem(path, f"'{value}' is not a value of '{key}' under stated: values")
            if rule["fact"] not in doc["counts"]:
                c.problem((*path, "fact"), f"'{rule['fact']}' is not counted under stated: counts")
            op = next(op for op in COMPARISONS if op in rule)
            implied.append(Implied(key, str(value), rule["fact"], op, float(rule[op])))
    names = {}
    for key, items in doc["names"].items():
        if "names" not in input_fact(("stated", "names", key), key):
            c.problem(("stated", "names", key), f"'{key}' has no `names:` table in facts.yaml, so no Keras name is its value")
        names[key] = placed(items, ("stated", "names", key), NAME, f"(?P<name>{NAME_MARK}+)")
    defaults = {}
    for key, entry in doc["defaults"].items():
        path = ("stated", "defaults", key)
        input_fact(path, key)
        table = input_fact((*path, "of"), entry["of"]).get("names")
        if table is None:
            c.problem((*path, "of"), f"'{entry['of']}' has no `names:` table in facts.yaml to take a default from")
        defaults[key] = Default(entry["of"], table or "", entry["property"], plain(entry["phrases"], (*path, "phrases")))
    several = c.alternatives(doc["several"], ("stated", "several"))
    number = r"-?(?:\d+(?:\.\d+)?|\.\d+)(?:e[-+]?\d+)?"
    return Stated(
        hedges=c.compiled(c.alternatives(doc["hedges"], ("stated", "hedges")), ("stated", "hedges")),
        hedge_ends=c.compiled(c.alternatives(doc["hedge_ends"], ("stated", "hedge_ends")), ("stated", "hedge_ends")),
        several_after=c.compiled(rf"\s*(?:{several})\s*{number}(?!\w|\.\d|\s*(?:{count_nouns})\b)",
                                 ("stated", "several")),
        several_before=c.compiled(rf"\d\s*(?:{several})\s*$", ("stated", "several")),
        counting=frozen(counting),
        counts=frozen(counts),
        not_before=c.compiled(rf"(?:{c.alternatives(doc['not_counts']['before'], ('stated', 'not_counts', 'before'))})",
                              ("stated", "not_counts", "before")),
        not_after=c.compiled(rf"(?:{c.alternatives(doc['not_counts']['after'], ('stated', 'not_counts', 'after'))})",
                             ("stated", "not_counts", "after")),
        values=frozen(values),
        outranks=frozen(outranks),
        unless=frozen(unless),
        implied=tuple(implied),
        names=frozen(names),
        ordinary=frozenset(squash(name) for name in doc["ordinary_names"]),
        name_not_after=c.compiled(c.alternatives(doc["name_not_after"], ("stated", "name_not_after")),
                                  ("stated", "name_not_after")),
        defaults=frozen(defaults))


def _forms(c: _Compiler, doc: Mapping[str, Any], section: str, changes: Mapping[str, str]) -> tuple[Form, ...]:
    """Each form of ``section`` with ``{change}`` (once in it) replaced by all ``changes``, each a group named
    after its symptom: a text is searched once per form, not once per form and symptom."""
    alternatives = "|".join(f"(?P<{key}>{change})" for key, change in changes.items())
    compiled = []
    for i, form in enumerate(doc[section]):
        path = ("remedies", section, i)
        if form.count(CHANGE) != 1:
            c.problem(path, f"the form must hold {CHANGE} exactly once: {form}")
        elif (expanded := c.pattern(form.replace(CHANGE, "\0"), path)) is not None:  # a NUL stands in while macros expand
            outcome = next((name for name in OUTCOMES if f"{{{name}}}" in form), None)
            compiled.append(Form(c.compiled(expanded.replace("\0", f"(?:{alternatives})"), path),
                                 c.compiled(c.expand(f"{{{outcome}}}", path), path) if outcome else None))
    return tuple(compiled)


def _remedies(c: _Compiler, doc: Mapping[str, Any]) -> Remedies:
    """``remedies:``: the forms of a change that helped, and of one tried in vain (``futile``, whose symptoms
    take the changes of the ``changes`` they are named for)."""
    changes = {key: c.alternatives(items, ("remedies", "changes", key)) for key, items in doc["changes"].items()}
    for key in doc["futile"]:
        if key not in changes:
            c.problem(("remedies", "futile", key), f"'{key}' has no change under remedies: changes")
    futile = {doc["futile"][key]: change for key, change in changes.items() if key in doc["futile"]}
    return Remedies(_forms(c, doc, "forms", changes), _forms(c, doc, "futile_forms", futile))


def _check_symptoms(c: _Compiler, doc: Mapping[str, Any], facts: Mapping[str, Mapping[str, Any]]) -> None:
    """Every symptom the file names (phrases, remedies, outranking, numbers) is a yes/no symptom fact of facts.yaml."""
    named = [(("symptoms", key), key) for key in doc["symptoms"]]
    named += [(("remedies", "changes", key), key) for key in doc["remedies"]["changes"]]
    named += [(("remedies", "futile", key), futile) for key, futile in doc["remedies"]["futile"].items()]
    for winner, losers in doc["outranks"].items():
        named += [(("outranks", winner), winner), *((("outranks", winner, i), loser) for i, loser in enumerate(losers))]
    named += [(("numbers", "implied", key), key) for key in doc["numbers"]["implied"]]
    for path, name in named:
        if (problem := _symptom_problem(name, facts)) is not None:
            c.problem(path, problem)


def compile_phrases(doc: Mapping[str, Any], facts: Mapping[str, Mapping[str, Any]], thresholds: Mapping[str, float],
                    at: Places = Places()) -> Phrases:
    """``phrases.yaml``'s content (already schema-valid) compiled; raises PhrasesError listing every problem."""
    c = _Compiler(doc["macros"], at)
    for name in doc["macros"]:
        c.pattern(f"{{{name}}}", ("macros", name))
    _check_symptoms(c, doc, facts)
    symptoms = {key: tuple(_compiled(p, FLAGS) for i, text in enumerate(phrases)
                           if (p := c.pattern(text, ("symptoms", key, i))) is not None)
                for key, phrases in doc["symptoms"].items()}

    def words(*path: str) -> str:
        """One word list of the file, by its path, as an alternation."""
        items: Any = doc
        for key in path:
            items = items[key]
        return c.alternatives(items, path)

    subjects = {name: words("numbers", "subjects", name) for name in doc["numbers"]["subjects"]}
    subjects_after = {name: words("numbers", "subjects_after", name) for name in doc["numbers"]["subjects_after"]}
    for name in subjects_after.keys() - subjects.keys():
        c.problem(("numbers", "subjects_after", name), f"{name} is not one of numbers: subjects")
    zero, versus = words("numbers", "zero"), words("numbers", "versus")
    link = rf"(?:\s*(?:{words('answers', 'link_signs')}|\b(?:{words('answers', 'link_words')})\b))*"
    phrases = Phrases(
        symptoms=frozen(symptoms),
        remedies=_remedies(c, doc["remedies"]),
        outranks=frozen({winner: tuple(losers) for winner, losers in doc["outranks"].items()}),
        negation=c.compiled(rf"^(?:{words('negation', 'words')})$", ("negation", "words")),
        doubt=c.compiled(rf"\b(?:{words('negation', 'doubts')})\b", ("negation", "doubts")),
        clause=c.compiled(rf"[,;:()\[\]\n，；：（）、。！？]|[.!?](?!\d)|\s-+\s|\b(?:{words('clauses', 'words')})\b",
                          ("clauses", "words")),
        subject=c.compiled("|".join(rf"\b(?P<{name}>{rx})\b" for name, rx in subjects.items()),
                           ("numbers", "subjects")),
        subject_after=c.compiled("|".join(rf"\s*(?P<{name}>{rx})\b" for name, rx in subjects_after.items()) or "(?!)",
                                 ("numbers", "subjects_after")),
        number=c.compiled(rf"(?<![\w./])(?P<value>-?(?:{THOUSANDS}|\d+)(?:\.\d+)?(?:e[-+]?\d+)?|-?\.\d+|(?:{zero}))"
                          rf"(?P<percent>\s?%|\s?(?:{words('numbers', 'percent')})\b)?(?![\w/]|\.\d)",
                          ("numbers", "zero")),
        zero=c.compiled(rf"(?:{zero})", ("numbers", "zero")),
        count_noun=c.compiled(rf"\s*(?:{words('numbers', 'count_nouns')})\b", ("numbers", "count_nouns")),
        position=c.compiled(rf"\b(?:{words('numbers', 'positions')})\s*#?\s*$", ("numbers", "positions")),
        bound=c.compiled(rf"\b(?:{words('numbers', 'bounds')}|{versus})\s*$", ("numbers", "bounds")),
        floor=c.compiled(rf"(?:{words('numbers', 'floors')})\s*$", ("numbers", "floors")),
        versus=c.compiled(rf"\s*(?:{versus})\s", ("numbers", "versus")),
        first_before=c.compiled(rf"\b(?:{words('numbers', 'first', 'before')})\b"
                                rf"|\b(?:{words('numbers', 'first', 'right_before')})\s*$", ("numbers", "first")),
        first_after=c.compiled(rf"^\s*(?:{words('numbers', 'first', 'right_after')})\s*$"
                               rf"|\b(?:{words('numbers', 'first', 'after')})\b", ("numbers", "first")),
        worst=c.compiled(rf"\b(?:{words('numbers', 'worst')})\b", ("numbers", "worst")),
        epoch=c.compiled(rf"\b(?:{words('numbers', 'epoch')})\s*#?\s*(\d+)"
                         rf"|\b(\d+)(?:{words('numbers', 'ordinals')})?\s+(?:{words('numbers', 'epoch')})s?\b",
                         ("numbers", "epoch")),
        implied=_implications(c, doc["numbers"]["implied"], thresholds),
        dont_know=c.compiled(rf"\b(?:{words('answers', 'says_dont_know')})\b", ("answers", "says_dont_know")),
        yes=c.compiled(rf"^\W*(?:{words('answers', 'says_yes')})\b", ("answers", "says_yes")),
        no=c.compiled(rf"^\W*(?:{words('answers', 'says_no')})\b", ("answers", "says_no")),
        keys=frozen(_keys(c, doc["answers"]["keys"], facts, link)),
        stated=_stated(c, doc["stated"], facts, words("numbers", "count_nouns")))
    if c.problems:
        raise PhrasesError("\n".join(dict.fromkeys(c.problems)))
    return phrases
