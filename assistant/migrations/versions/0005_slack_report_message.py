"""Slack run reports keep the run's progress message, so a process that takes a report over puts the
verdict in that message (chat.update) instead of posting a second one.

Reports from before have none; their verdict is posted as a new message, as it was.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("slack_run_reports", schema=None) as batch_op:
        batch_op.add_column(sa.Column("message_ts", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("slack_run_reports", schema=None) as batch_op:
        batch_op.drop_column("message_ts")
