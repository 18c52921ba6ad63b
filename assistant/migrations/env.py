"""Alembic's environment: it runs on the connection that assistant.migrations hands over."""
from typing import Any

from alembic import context
from sqlalchemy.types import TypeDecorator

from assistant.db import metadata


def render_item(kind: str, obj: Any, _context: Any) -> str | bool:
    """Write the app's column types as the types they store, so that a migration never imports app code."""
    if kind == "type" and isinstance(obj, TypeDecorator):
        return f"sa.{obj.impl!r}"
    return False


context.configure(
    connection=context.config.attributes["connection"],
    target_metadata=metadata,
    # SQLite alters most things only by copying the table; batch operations do that for it.
    render_as_batch=True,
    render_item=render_item,
)
with context.begin_transaction():
    context.run_migrations()
