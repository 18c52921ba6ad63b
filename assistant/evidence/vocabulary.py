"""The fact vocabulary of `knowledge/facts.yaml`, as the parsers need it.

A parser that read a whole input knows that a yes/no sign it did not find is absent, not
unknown; the vocabulary tells it which signs those are.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

FACTS_FILE = Path(__file__).resolve().parents[2] / "knowledge" / "facts.yaml"


@lru_cache(maxsize=1)
def facts() -> dict[str, dict]:
    """Every fact's entry: kind, type, bounds, question."""
    return yaml.safe_load(FACTS_FILE.read_text(encoding="utf-8"))["facts"]


def signs(kind: str) -> tuple[str, ...]:
    """The boolean facts of one kind ("curve", "symptom"): false unless a parser finds them."""
    return tuple(k for k, spec in facts().items() if spec["kind"] == kind and spec["type"] == "boolean")
