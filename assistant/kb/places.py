"""Where each entry of a knowledge file was written: the line a reviewer opens to fix it.

A problem found in the knowledge base names its file and line ("causes/overfitting.yaml:23"),
so an expert goes straight to the entry, not to a search through the file.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path as FilePath
from typing import Any, Iterable, Iterator, Mapping

import yaml

#: The C parser where PyYAML was built with it (the same results, five times faster): reading and
#: composing every file then costs milliseconds.
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

#: A place in a YAML document: the keys and list indices that lead to it from the top.
Path = tuple[Any, ...]


def _walk(node: yaml.Node, path: Path) -> Iterator[tuple[Path, int]]:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            inner = (*path, key.value)
            yield inner, key.start_mark.line + 1
            yield from _walk(value, inner)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            yield (*path, i), item.start_mark.line + 1
            yield from _walk(item, (*path, i))


def lines_of(text: str) -> dict[Path, int]:
    """The line (1-based) of every mapping key and list item of a YAML text; {} when it does not parse."""
    try:
        node = yaml.compose(text, Loader=LOADER)
    except yaml.YAMLError:
        return {}
    return dict(_walk(node, ())) if node is not None else {}


class Composed(Mapping[str, Mapping[Path, int]]):
    """The lines of a knowledge base's YAML files, each file composed the first time a problem names a place in it.

    A sound knowledge base, as a serving process loads it, composes none: their tables (about 1 MB)
    are only ever read to say where a problem is.
    """

    def __init__(self, directory: FilePath, files: Iterable[str]) -> None:
        self.directory = directory
        self.files = frozenset(files)
        self._composed: dict[str, Mapping[Path, int]] = {}

    def __getitem__(self, file: str) -> Mapping[Path, int]:
        if file not in self.files:
            raise KeyError(file)
        if file not in self._composed:
            self._composed[file] = lines_of((self.directory / file).read_text(encoding="utf-8"))
        return self._composed[file]

    def __contains__(self, file: object) -> bool:
        return file in self.files

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self.files))

    def __len__(self) -> int:
        return len(self.files)


@dataclass(frozen=True)
class Places:
    """The line of every entry of every knowledge file, by the file's path relative to the knowledge base."""

    lines: Mapping[str, Mapping[Path, int]] = field(default_factory=dict)

    def where(self, file: str, *path: Any) -> str:
        """``file:line`` of the deepest part of ``path`` the file has (``causes/x.yaml:23``).

        Line 1 when the file has no part of the path (a problem with the whole file); the file alone
        when it is no YAML file of the knowledge base.

        Keys are compared as YAML wrote them, so a list index or a number key may be given as either.
        """
        lines = self.lines.get(file, {})
        for depth in range(len(path), 0, -1):
            line = lines.get(path[:depth])
            if line is None:
                line = lines.get(tuple(str(part) for part in path[:depth]))
            if line is not None:
                return f"{file}:{line}"
        return f"{file}:1" if file in self.lines else file
