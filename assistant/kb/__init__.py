"""The knowledge base: domain knowledge read from `knowledge/`, checked, compiled, and held immutable.

``create_app`` loads it once (:mod:`assistant.knowledge`) and every request reads the same
object, through :func:`current` or as an argument.
"""
from __future__ import annotations

from flask import current_app

from .loader import DEFAULT_DIR, KnowledgeError, load
from .model import Branch, Catalog, Cause, KnowledgeBase, Rule, Tree

__all__ = ["DEFAULT_DIR", "Branch", "Catalog", "Cause", "KnowledgeBase", "KnowledgeError", "Rule", "Tree",
           "current", "load"]

#: Where ``create_app`` keeps the app's knowledge base (``app.extensions``).
EXTENSION = "knowledge_base"


def current() -> KnowledgeBase:
    """The knowledge base of the app handling this request."""
    return current_app.extensions[EXTENSION]
