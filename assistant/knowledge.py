"""The knowledge base as the app uses it: loaded once by ``create_app``, checked against every layer.

The knowledge base names facts, settings and template variables that Python code provides;
each layer says what it provides, and ``assistant kb check`` (and the app at start) refuses a
knowledge base that names anything nobody provides.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import click
from flask import Flask

from . import kb
from .kb.check import check
from .repro import experiments


def problems(knowledge: kb.KnowledgeBase) -> list[str]:
    """Every problem a reviewer must fix, in the knowledge base and in what it asks of the code."""
    return sorted(set(check(knowledge) + experiments.problems(knowledge)))


@lru_cache(maxsize=8)
def _load_checked(directory: str) -> kb.KnowledgeBase:
    knowledge = kb.load(directory)
    found = problems(knowledge)
    if found:
        raise kb.KnowledgeError("\n".join(found))
    return knowledge


def load_checked(directory: str | Path) -> kb.KnowledgeBase:
    """The knowledge base of a directory, refused with every problem listed unless it is sound.

    Read once per process and directory: it is immutable, so every app of the process can share it.
    """
    return _load_checked(str(Path(directory).resolve()))


def init_app(app: Flask) -> None:
    """Load and check ``KNOWLEDGE_DIR`` now: a broken knowledge base stops the start instead of failing requests."""
    app.extensions[kb.EXTENSION] = load_checked(app.config["KNOWLEDGE_DIR"])


@click.group("kb")
def kb_command() -> None:
    """Inspect the knowledge base in knowledge/."""


@kb_command.command("check")
@click.option("--directory", type=click.Path(exists=True, file_okay=False), default=str(kb.DEFAULT_DIR),
              show_default=True, help="The knowledge base to check.")
def check_command(directory: str) -> None:
    """Validate every file against its schema and report what a reviewer must fix."""
    try:
        knowledge = kb.load(directory)
    except kb.KnowledgeError as exc:
        raise click.ClickException(str(exc)) from None
    found = problems(knowledge)
    for problem in found:
        click.echo(problem, err=True)
    if found:
        raise click.ClickException(f"{len(found)} problem(s) in the knowledge base")
    click.echo(f"knowledge base OK: {len(knowledge.causes)} causes, {len(knowledge.trees)} trees, "
               f"{len(knowledge.facts)} facts, {len(knowledge.snippets)} snippet templates")
