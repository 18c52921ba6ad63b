"""Python's parser, one thread at a time.

CPython 3.11 keeps the AST converter's recursion depth in state that all threads share: when a
garbage-collection finalizer lets another thread parse in the middle of a parse, both fail with
"SystemError: AST constructor recursion depth mismatch" (python/cpython#106905). Web workers read
pasted code and printed histories in many threads at once, so every parse goes through this lock.
"""
from __future__ import annotations

import ast
import threading

#: Re-entrant: a finalizer that parses on the thread already holding it must not wait for itself.
_LOCK = threading.RLock()


def parse(source: str, mode: str = "exec") -> ast.AST:
    """``ast.parse``, never at the same time as another thread's."""
    with _LOCK:
        return ast.parse(source, mode=mode)


def literal_eval(text: str) -> object:
    """``ast.literal_eval`` of a text, never at the same time as another thread's parse."""
    with _LOCK:
        return ast.literal_eval(text)
