"""Slack thread askers: who asked in a thread, since only that person's replies there are turns without a mention.

Threads from before have no asker recorded; in them, replies count as they did (from anyone).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("slack_threads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("asker", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("slack_threads", schema=None) as batch_op:
        batch_op.drop_column("asker")
