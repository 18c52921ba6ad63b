"""Formulas of derived facts (``derived.yaml``): Python expressions over facts, compiled once at load.

A formula reads facts and thresholds by name and may call the few functions of :func:`library`;
nothing else. Its syntax is checked against an allow-list before it is compiled, so a slip in
the knowledge base (an attribute, an import, an unknown name) fails at load, not in a request.
An unknown fact reads as None; a formula whose result is None, or that fails on the values it
was given (a division by zero), derives nothing.
"""
from __future__ import annotations

import ast
import math
from dataclasses import dataclass
from types import CodeType
from typing import Any, Callable, Iterable, Mapping

from . import syntax

#: Syntax a formula may use: arithmetic, comparisons, boolean logic, conditionals, literals, calls.
ALLOWED = (ast.Expression, ast.BoolOp, ast.BinOp, ast.UnaryOp, ast.Compare, ast.IfExp, ast.Call, ast.Name,
           ast.Load, ast.Constant, ast.List, ast.Tuple, ast.Subscript, ast.Slice, ast.And, ast.Or, ast.Not,
           ast.USub, ast.UAdd, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.Eq,
           ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn, ast.Is, ast.IsNot)


class FormulaError(ValueError):
    """A formula that is not an allowed expression, or names something unknown."""


@dataclass(frozen=True)
class Derivation:
    """One derived fact: the names its formula reads, and the formula compiled."""

    name: str
    formula: str
    code: CodeType
    #: Facts that must be known for the formula to be evaluated at all.
    needs: tuple[str, ...]
    #: Every name the formula reads (facts, thresholds and functions alike).
    reads: frozenset[str]


def _positive(counts: Mapping[str, Any] | None) -> list[Any]:
    """The class counts above zero."""
    return [n for n in (counts or {}).values() if n > 0]


def _labels(counts: Mapping[str, Any] | None) -> list[float]:
    """The class labels as numbers, sorted; none when a label is not a number."""
    try:
        return sorted(float(label) for label in counts or {})
    except ValueError:
        return []


def _first_known(*values: Any) -> Any:
    return next((value for value in values if value is not None), None)


def _all_of(*checks: Any) -> bool | None:
    """Whether every check that applies holds; a check is None where it does not apply."""
    applying = [check for check in checks if check is not None]
    return all(applying) if applying else None


def uniform_classes(loss: float, tolerance: float) -> int | None:
    """K when a loss sits at ln(K), the cross-entropy of a uniform guess over K classes; else None."""
    if not 0.5 < loss < 12:
        return None
    k = round(math.exp(loss))
    return k if k >= 2 and abs(loss - math.log(k)) <= tolerance * math.log(k) else None


def library(keras_get: Callable[[str, str | None, str], Any], thresholds: Mapping[str, float]) -> dict[str, Any]:
    """The functions a formula may call, bound to one knowledge base's Keras names and thresholds."""
    return {
        "len": len, "max": max, "min": min, "abs": abs, "sum": sum, "any": any, "all": all,
        "ceil": math.ceil, "round": round,
        "is_number": lambda value: isinstance(value, (int, float)) and not isinstance(value, bool),
        "positive": _positive, "labels": _labels, "first_known": _first_known, "all_of": _all_of,
        "family": lambda loss: keras_get("losses", loss, "family"),
        "squashing": lambda activation: bool(keras_get("activations", activation, "squashing")),
        "keras_default": lambda argument: keras_get("arguments", argument, "default"),
        "usual_rate": lambda optimizer: (keras_get("optimizers", optimizer, "usual_learning_rate")
                                         or keras_get("optimizers", optimizer, "default_learning_rate")),
        "ln_classes": lambda loss: uniform_classes(loss, thresholds["uniform_tolerance"]),
    }


def compile_formula(name: str, formula: str, needs: Iterable[str], known: set[str]) -> Derivation:
    """Check a formula's syntax and names against what exists, and compile it."""
    try:
        tree = syntax.parse(" ".join(formula.split()), mode="eval")
    except SyntaxError as exc:
        raise FormulaError(f"{name}: not an expression: {exc.msg}") from None
    for node in ast.walk(tree):
        if not isinstance(node, ALLOWED):
            raise FormulaError(f"{name}: a formula may not use {type(node).__name__}")
        if isinstance(node, ast.Call) and not isinstance(node.func, ast.Name):
            raise FormulaError(f"{name}: only the functions of the formula library may be called")
    reads = frozenset(node.id for node in ast.walk(tree) if isinstance(node, ast.Name))
    unknown = sorted(reads - known)
    if unknown:
        raise FormulaError(f"{name}: unknown name{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}")
    return Derivation(name, formula, compile(tree, f"<derived {name}>", "eval"), tuple(needs), reads)


def evaluate(derivation: Derivation, scope: Mapping[str, Any], functions: dict[str, Any]) -> Any:
    """The formula's value in a scope of every fact and threshold (None where a fact is unknown).

    ``functions`` are the formula's globals: the library, with no builtins.
    """
    if any(scope.get(need) is None for need in derivation.needs):
        return None
    try:
        return eval(derivation.code, functions, scope)  # noqa: S307 (an allow-listed expression)
    except (ArithmeticError, TypeError, ValueError):
        return None
