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
from flask.cli import ScriptInfo

from . import alarms, db, evidence, kb, reply
from .kb import feedback, learned, report
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
                  if words is not None else "")
               + (f"; {learned.summary(knowledge.corrections)}" if knowledge.corrections is not None else ""))


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


def _app_knowledge(info: ScriptInfo, directory: str | None) -> str:
    """The knowledge base to use: the one named, else the app's ``KNOWLEDGE_DIR``."""
    return directory or info.load_app().config["KNOWLEDGE_DIR"]


def _stored_feedback(info: ScriptInfo) -> list[feedback.Report]:
    """The feedback of the app's database (``ASSISTANT_DATABASE_URL``)."""
    with info.load_app().app_context(), db.get_engine().connect() as connection:
        return feedback.stored(connection)


_DIRECTORY = click.option("--directory", type=click.Path(exists=True, file_okay=False),
                          help="The knowledge base  [default: the app's KNOWLEDGE_DIR]")


@kb_command.command("fit")
@click.option("--cases", "cases", multiple=True, type=click.Path(exists=True, file_okay=False),
              help="A folder of labelled cases (the corpus format); repeatable. A test split is only scored. "
                   "Default, without --feedback: the corpus dev split and ../shared/cases-realworld.")
@click.option("--feedback", "use_feedback", is_flag=True,
              help="Learn from the feedback stored in the app's database (ASSISTANT_DATABASE_URL).")
@_DIRECTORY
@click.option("--write", is_flag=True,
              help="Store the corrections in learned/weights.yaml, unless they are worse on held-out folds.")
@click.pass_obj
def fit_command(info: ScriptInfo, cases: tuple[str, ...], use_feedback: bool, directory: str | None,
                write: bool) -> None:
    """Fit corrections to the rule and tree-leaf weights from labelled cases and feedback, and measure them."""
    from .kb import fit  # scikit-learn: only this command loads it, never the web tier

    reports = _stored_feedback(info) if use_feedback else None
    try:
        fit.run(cases, reports, _app_knowledge(info, directory), write, say=click.echo)
    except (fit.Refused, kb.KnowledgeError) as exc:
        raise click.ClickException(str(exc)) from None


@kb_command.command("report")
@_DIRECTORY
@click.pass_obj
def report_command(info: ScriptInfo, directory: str | None) -> None:
    """Per cause, how often feedback confirmed or rejected it, and the rules that held where the top cause was rejected."""
    knowledge = load_checked(_app_knowledge(info, directory))
    for line in report.lines(report.summarise(knowledge, _stored_feedback(info))):
        click.echo(line)


@kb_command.command("export-feedback")
@click.argument("output", type=click.File("w", encoding="utf-8"), default="-")
@click.option("--with-text", is_flag=True, help="Include what users wrote: titles, quoting notes, comments.")
@click.pass_obj
def export_feedback_command(info: ScriptInfo, output, with_text: bool) -> None:
    """Write the database's feedback to OUTPUT (default: standard output) as JSON lines: facts and labels."""
    with info.load_app().app_context(), db.get_engine().connect() as connection:
        count = feedback.export(connection, output, with_text=with_text)
    click.echo(f"exported feedback on {count} conversation(s)", err=True)


@kb_command.command("import-feedback")
@click.argument("source", type=click.File("r", encoding="utf-8"))
@click.pass_obj
def import_feedback_command(info: ScriptInfo, source) -> None:
    """Store the conversations and feedback of an export (JSON lines) in the database; ones already here are skipped."""
    try:
        with info.load_app().app_context(), db.get_engine().begin() as connection:
            added, skipped = feedback.import_lines(connection, source)
    except feedback.BadLine as exc:
        raise click.ClickException(f"{source.name}: {exc}") from None
    click.echo(f"imported {added} conversation(s) with their feedback; {skipped} already here")
