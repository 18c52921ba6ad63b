"""A diagnosis reads well in a terminal and in Jupyter: ranked causes, evidence, fixes, snippets in code blocks."""
from __future__ import annotations

import html
from html.parser import HTMLParser

from assistant.client import Client, Diagnosis

CODE = 'import keras\n\nmodel.compile(optimizer=keras.optimizers.Adam(learning_rate=0.05), loss="mse")\n'
RESPONSE = {"id": "conv-" + "a" * 32, "reply": {
    "text": "…",
    "readings": ["the loss became NaN at epoch 3", "the run <diverged>"],
    "causes": [
        {"id": "learning_rate_too_high", "title": "Learning rate too high", "category": "hyperparameters",
         "confidence": 0.71, "evidence": ["loss became nan at epoch 3", "learning rate 0.5 is <far> above 0.001"],
         "against": ["the loss <script>alert(1)</script> fell at first"], "explanation": "Each update overshoots.",
         "fix": "Divide the learning rate by ten.", "snippet": {"language": "python", "code": CODE}},
        {"id": "missing_values", "title": "Missing values", "category": "data", "confidence": 0.2,
         "evidence": [], "fix": "Impute them.", "snippet": {"language": "python", "code": "print(1)\n"}},
    ],
    "questions": [{"id": "q-learning_rate", "fact": "learning_rate", "text": "Which learning rate?",
                   "choices": ["0.1", "0.001"]}],
    "live": {"epoch": 2, "epochs": 3, "problems": [{"fact": "loss_is_nan", "text": "loss became nan at epoch 3"}]},
}}


def diagnosis() -> Diagnosis:
    return Diagnosis(RESPONSE, Client("http://127.0.0.1:9"))


def test_terminal_text():
    text = str(diagnosis())
    assert text.startswith("Problems in this run:\n- loss became nan at epoch 3\n\n"
                           "What I see: the loss became NaN at epoch 3; the run <diverged>.\n\n1. ")
    assert "1. Learning rate too high (71%, hyperparameters)\n   - loss became nan at epoch 3\n" in text
    assert "   - against: the loss <script>alert(1)</script> fell at first\n   Why: Each update overshoots.\n" in text
    assert f"```python\n{CODE}```" in text  # unindented, so it pastes as it is
    assert "2. Missing values (20%, data)" in text and "Why:" not in text.split("2. Missing values")[1]
    assert "- Which learning rate? (0.1, 0.001) -> reply(facts={'learning_rate': ...})" in text
    assert text.endswith("conversation conv-" + "a" * 32)


def test_markdown():
    markdown = diagnosis()._repr_markdown_()
    assert "**Problems in this run:**" in markdown and "### 1. Learning rate too high (71%, hyperparameters)" in markdown
    assert "   **Fix:** Divide the learning rate by ten." in markdown
    assert f"```python\n{CODE}```" in markdown


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.code: list[str] = []
        self._in_code = False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self._in_code = tag == "code"

    def handle_endtag(self, tag):
        self._in_code = False

    def handle_data(self, data):
        if self._in_code:
            self.code.append(data)


def test_html_escapes_everything_it_is_given():
    page = diagnosis()._repr_html_()
    assert "<script>" not in page and html.escape("<script>alert(1)</script>") in page
    assert "the run &lt;diverged&gt;." in page
    parsed = _Collect()
    parsed.feed(page)
    assert "script" not in parsed.tags and parsed.tags.count("details") == 2
    assert parsed.code == [CODE, "print(1)\n"]  # the snippets come back exactly, once unescaped
    assert "<details open><summary>Snippet</summary>" in page


def test_the_repr_names_the_leaders():
    assert repr(diagnosis()) == "<Diagnosis conv-" + "a" * 32 + ": learning_rate_too_high 71%, missing_values 20%>"
