"""A diagnosis as people read it: ranked causes, their evidence, the fix and its snippet.

Jupyter shows :class:`Diagnosis` through ``_repr_html_`` (or ``_repr_markdown_``); ``print`` and the
command line show :meth:`Diagnosis.__str__`. Snippets stay unindented in every form, so they
can be copied from a terminal as they are.
"""
from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .client import Client


class Diagnosis:
    """One reply of the service to a conversation; ``reply(...)`` continues the conversation."""

    def __init__(self, response: dict[str, Any], client: Client) -> None:
        #: The API's answer as it arrived: ``{"id": ..., "reply": {...}}``.
        self.response = response
        self.client = client

    @property
    def id(self) -> str:
        """The conversation's id."""
        return self.response["id"]

    @property
    def causes(self) -> list[dict[str, Any]]:
        """Ranked causes, most likely first: id, title, confidence, evidence, fix, snippet."""
        return self.response["reply"]["causes"]

    @property
    def questions(self) -> list[dict[str, Any]]:
        """What the assistant would like to know next; answer with ``reply(facts={fact: value})``."""
        return self.response["reply"]["questions"]

    @property
    def readings(self) -> list[str]:
        """What the service read in the curves and the words, e.g. "the loss became NaN at epoch 3"."""
        return self.response["reply"].get("readings", [])

    @property
    def problems(self) -> list[dict[str, str]]:
        """For a live run: what is going wrong in it (empty while nothing is)."""
        return self.response["reply"].get("live", {}).get("problems", [])

    def reply(self, text: str | None = None, **evidence: Any) -> Diagnosis:
        """Continue the conversation: an answer in words, ``facts=``, or more evidence (see ``Client.reply``)."""
        return self.client.reply(self.id, text, **evidence)

    def fixed_by(self, cause: str, comment: str | None = None) -> dict[str, Any]:
        """Tell the service that fixing ``cause`` fixed the model; any cause id, listed here or not."""
        return self.client.feedback(self.id, cause, "fixed", comment)

    def not_helpful(self, cause: str, comment: str | None = None) -> dict[str, Any]:
        """Tell the service that ``cause`` was not the problem, or its fix did not help."""
        return self.client.feedback(self.id, cause, "not_helpful", comment)

    def __str__(self) -> str:
        return _render(self, markdown=False)

    def _repr_markdown_(self) -> str:
        return _render(self, markdown=True)

    def _repr_html_(self) -> str:
        return _render_html(self)

    def __repr__(self) -> str:
        top = ", ".join(f"{c['id']} {c['confidence']:.0%}" for c in self.causes[:3])
        return f"<Diagnosis {self.id}: {top}>"


def _question(question: dict[str, Any]) -> str:
    choices = f" ({', '.join(question['choices'])})" if question.get("choices") else ""
    return f"{question['text']}{choices} -> reply(facts={{{question['fact']!r}: ...}})"


def _render(diagnosis: Diagnosis, *, markdown: bool) -> str:
    """Markdown for notebooks, or the same outline as plain text for terminals."""
    strong = (lambda text: f"**{text}**") if markdown else (lambda text: text)
    lines: list[str] = []
    if diagnosis.problems:
        lines += [strong("Problems in this run:"), *(f"- {p['text']}" for p in diagnosis.problems), ""]
    if diagnosis.readings:
        lines += [f"{strong('What I see:')} {'; '.join(diagnosis.readings)}.", ""]
    for rank, cause in enumerate(diagnosis.causes, 1):
        heading = f"{rank}. {cause['title']} ({cause['confidence']:.0%}, {cause['category']})"
        lines.append(f"### {heading}" if markdown else heading)
        lines += [f"   - {item}" for item in cause["evidence"]]
        lines += [f"   - against: {item}" for item in cause.get("against", [])]
        if rank == 1 and cause.get("explanation"):
            lines.append(f"   {strong('Why:')} {cause['explanation']}")
        if cause.get("fix"):
            lines.append(f"   {strong('Fix:')} {cause['fix']}")
        if cause.get("snippet"):
            lines += ["", f"```{cause['snippet']['language']}", cause["snippet"]["code"].rstrip(), "```"]
        lines.append("")
    if diagnosis.questions:
        lines.append(strong("To tell these apart, tell me:"))
        lines += [f"- {_question(q)}" for q in diagnosis.questions]
        lines.append("")
    lines.append(f"conversation {diagnosis.id}")
    return "\n".join(lines)


def _render_html(diagnosis: Diagnosis) -> str:
    e = html.escape
    parts = ['<div class="keras-troubleshooter">']
    if diagnosis.problems:
        parts.append("<p><strong>Problems in this run:</strong></p><ul>")
        parts += [f"<li>{e(p['text'])}</li>" for p in diagnosis.problems]
        parts.append("</ul>")
    if diagnosis.readings:
        parts.append(f"<p><strong>What I see:</strong> {e('; '.join(diagnosis.readings))}.</p>")
    parts.append("<ol>")
    for rank, cause in enumerate(diagnosis.causes, 1):
        parts.append(f"<li><strong>{e(cause['title'])}</strong> &mdash; {cause['confidence']:.0%} "
                     f"<small>({e(cause['category'])})</small><ul>")
        parts += [f"<li>{e(item)}</li>" for item in cause["evidence"]]
        parts += [f"<li><em>against:</em> {e(item)}</li>" for item in cause.get("against", [])]
        parts.append("</ul>")
        if rank == 1 and cause.get("explanation"):
            parts.append(f"<p><em>Why:</em> {e(cause['explanation'])}</p>")
        if cause.get("fix"):
            parts.append(f"<p><em>Fix:</em> {e(cause['fix'])}</p>")
        if cause.get("snippet"):
            language = e(cause["snippet"]["language"])
            parts.append(f"<details{' open' if rank == 1 else ''}><summary>Snippet</summary>"
                         f'<pre><code class="language-{language}">{e(cause["snippet"]["code"])}</code></pre></details>')
        parts.append("</li>")
    parts.append("</ol>")
    if diagnosis.questions:
        parts.append("<p><strong>To tell these apart, tell me:</strong></p><ul>")
        parts += [f"<li>{e(_question(q))}</li>" for q in diagnosis.questions]
        parts.append("</ul>")
    parts.append(f"<p><small>conversation {e(diagnosis.id)}</small></p></div>")
    return "".join(parts)
