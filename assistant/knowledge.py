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

from . import alarms, evidence, kb, reply
from .kb.check import check, unproduced
from .reasoning import sentences
from .repro import experiments, verdict


def _order(problem: str) -> tuple[str, int, str]:
    """File, then line as a number (``x.yaml:9`` before ``x.yaml:10``), then the message."""
    where, _, message = problem.partition(": ")
    file, _, line = where.partition(":")
    return file, int(line) if line.isdigit() else 0, message


def problems(knowledge: kb.KnowledgeBase) -> list[str]:
    """Every problem a reviewer must fix, in the knowledge base and in what it asks of the code.

    Each layer checks what only it knows: the names its sentences and snippet templates may use,
    the facts its readers produce, the settings its runs understand.
    """
    produced = evidence.produces(knowledge) | verdict.produces(knowledge)
    found = (check(knowledge) + unproduced(knowledge, produced) + sentences.problems(knowledge)
             + alarms.check(knowledge) + reply.problems(knowledge) + experiments.problems(knowledge))
    return sorted(set(found), key=_order)


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
    words = knowledge.words
    click.echo(f"knowledge base OK: {len(knowledge.causes)} causes, {len(knowledge.trees)} trees, "
               f"{len(knowledge.facts)} facts, {len(knowledge.snippets)} snippet templates"
               + (f"; learned text model: {len(words.terms)} terms from {words.cases} threads, weight {words.weight:g}"
                  if words is not None else ""))


@kb_command.command("learn-words")
@click.option("--cases", "cases", multiple=True, type=click.Path(exists=True, file_okay=False),
              help="A folder of labelled cases (the corpus format); repeatable. Default: the corpus dev split and "
                   "../shared/cases-realworld. A test split is refused.")
@click.option("--directory", type=click.Path(exists=True, file_okay=False), default=str(kb.DEFAULT_DIR),
              show_default=True,
              help="The knowledge base to score with and, with --write, to write learned/words.json in.")
@click.option("--write", is_flag=True,
              help="Store the model in learned/words.json, if it beats the knowledge base alone.")
def learn_words_command(cases: tuple[str, ...], directory: str, write: bool) -> None:
    """Fit the text model over the symptom text of labelled cases, measure it out of fold, and store it (--write)."""
    from .kb import learn_words  # scikit-learn: only this command loads it, never the web tier

    try:
        learn_words.run(cases, directory, write, say=click.echo)
    except (learn_words.Refused, kb.KnowledgeError) as exc:
        raise click.ClickException(str(exc)) from None
