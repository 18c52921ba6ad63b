"""Typed facts with provenance: the one currency between evidence and reasoning."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator


class EvidenceError(ValueError):
    """Input that cannot be read; the message is written for the user who sent it."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def described(self) -> str:
        """The message, led by the field it is about unless it already names it."""
        if self.field and not self.message.startswith(self.field):
            return f"{self.field}: {self.message}"
        return self.message


class OverLimit(EvidenceError):
    """Input above what the service works with: 413 for a size (rows, columns, epochs), 422 for a count."""

    def __init__(self, message: str, *, field: str | None = None, status: int = 422) -> None:
        super().__init__(message, field=field)
        self.status = status


@dataclass(frozen=True)
class Fact:
    """One thing known about the user's run, and where it was learned."""

    key: str
    value: Any
    source: str
    #: A sentence citing the user's own data, shown as evidence ("loss 2.3026 at every epoch = ln 10").
    note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "value": self.value, "source": self.source, "note": self.note}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Fact":
        return cls(data["key"], data["value"], data.get("source", ""), data.get("note"))


@dataclass
class Facts:
    """A flat set of facts keyed by name; a later fact about the same key replaces an earlier one."""

    _items: dict[str, Fact] = field(default_factory=dict)

    def add(self, fact: Fact) -> None:
        self._items[fact.key] = fact

    def update(self, facts: Iterable[Fact]) -> None:
        for fact in facts:
            self.add(fact)

    def get(self, key: str, default: Any = None) -> Any:
        fact = self._items.get(key)
        return default if fact is None else fact.value

    def fact(self, key: str) -> Fact | None:
        return self._items.get(key)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __iter__(self) -> Iterator[Fact]:
        return iter(self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def values(self) -> dict[str, Any]:
        return {k: f.value for k, f in self._items.items()}

    def copy(self) -> "Facts":
        return Facts(dict(self._items))

    def as_list(self) -> list[dict[str, Any]]:
        return [f.as_dict() for f in self._items.values()]

    @classmethod
    def from_list(cls, items: Iterable[dict[str, Any]]) -> "Facts":
        facts = cls()
        facts.update(Fact.from_dict(d) for d in items)
        return facts
