"""Python's parser, safe to call from many threads.

CPython 3.11 keeps the AST converter's recursion depth in state that all threads share
(python/cpython#106905): when a garbage-collection finalizer lets another thread parse in the
middle of a parse, either may fail with "SystemError: AST constructor recursion depth mismatch".
Web workers read pasted code and printed histories in many threads at once: our parses take turns
under a lock, and one that another parser disturbed all the same (Python's own traceback module
parses while logging an error) is made again.
"""
from __future__ import annotations

import ast
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

#: Another thread would have to collide with the same parse this many times in a row.
ATTEMPTS = 5
#: Re-entrant: a finalizer that parses on the thread already holding it must not wait for itself.
_LOCK = threading.RLock()


def parse(source: str, mode: str = "exec") -> ast.AST:
    """``ast.parse``, one at a time, and made again when another thread's parse disturbed it."""
    return _again(lambda: ast.parse(source, mode=mode))


def literal_eval(text: str) -> object:
    """``ast.literal_eval`` of a text, one at a time, and made again when another thread's parse disturbed it."""
    return _again(lambda: ast.literal_eval(text))


def _again(step: Callable[[], T]) -> T:
    with _LOCK:
        for _ in range(ATTEMPTS - 1):
            try:
                return step()
            except SystemError as exc:
                if "recursion depth mismatch" not in str(exc):
                    raise
        return step()
