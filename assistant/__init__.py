"""A chat-style assistant that diagnoses why a Keras model is not learning."""
from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from flask import Flask

from .kb import DEFAULT_DIR as DEFAULT_KNOWLEDGE_DIR


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app from the defaults, then ``ASSISTANT_*`` environment variables, then ``config``."""
    app = Flask(__name__, instance_relative_config=True)
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.from_mapping(
        DATABASE_URL="sqlite:///" + os.path.join(app.instance_path, "assistant.sqlite"),
        API_TOKENS=[],
        MAX_CONTENT_LENGTH=10 * 1024 * 1024,
        # Flask's own default (500 kB) would refuse a pasted console log in a multipart text field.
        MAX_FORM_MEMORY_SIZE=10 * 1024 * 1024,
        # The longest training history a conversation stores; longer uploads are refused.
        MAX_EPOCHS=10_000,
        # The knowledge base the app reasons with: causes, trees, phrases, snippets (see knowledge/README.md).
        KNOWLEDGE_DIR=str(DEFAULT_KNOWLEDGE_DIR),
    )
    app.config.from_prefixed_env("ASSISTANT")
    if "ASSISTANT_API_TOKENS" in os.environ:  # opaque strings, not the JSON from_prefixed_env guesses
        app.config["API_TOKENS"] = os.environ["ASSISTANT_API_TOKENS"]
    if config is not None:
        app.config.from_mapping(config)
    app.config["API_TOKENS"] = _token_list(app.config["API_TOKENS"])

    from . import db, errors, knowledge, logs, ops, repro, security
    from .channels import api, caps, live, runs, slack, web  # noqa: F401 (live and runs add their routes to api.bp)

    knowledge.init_app(app)
    errors.init_app(app)
    logs.init_app(app)  # first: every later hook logs with the request's id
    security.init_app(app)
    db.init_app(app)
    repro.init_app(app)
    caps.init_app(app)
    app.register_blueprint(api.bp)
    app.register_blueprint(web.bp)
    slack.init_app(app)
    ops.init_app(app)
    return app


def _token_list(tokens: str | Iterable[str]) -> list[str]:
    """Accept a list of tokens or the comma-separated string an environment variable holds."""
    if isinstance(tokens, str):
        tokens = tokens.split(",")
    return [token.strip() for token in tokens if token.strip()]
