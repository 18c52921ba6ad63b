"""Python's parser, safe to call from many threads.

CPython 3.11 keeps the AST converter's recursion depth in state that all threads share
(python/cpython#106905): when a garbage-collection finalizer lets another thread parse in the
middle of a parse, either may fail with "SystemError: AST constructor recursion depth mismatch".
Web workers read pasted code and printed histories in many threads at once, and Python's own
traceback module parses while logging an error, so a lock around our parses cannot prevent it: a
parse that meets it is simply made again.
"""
from __future__ import annotations

import ast
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

#: Another thread would have to collide with the same parse this many times in a row.
ATTEMPTS = 5


def parse(source: str, mode: str = "exec") -> ast.AST:
    """``ast.parse``, made again when another thread's parse disturbed it."""
    return _again(lambda: ast.parse(source, mode=mode))


def literal_eval(text: str) -> object:
    """``ast.literal_eval`` of a text, made again when another thread's parse disturbed it."""
    return _again(lambda: ast.literal_eval(text))


def _again(step: Callable[[], T]) -> T:
    for _ in range(ATTEMPTS - 1):
        try:
            return step()
        except SystemError as exc:
            if "recursion depth mismatch" not in str(exc):
                raise
    return step()
