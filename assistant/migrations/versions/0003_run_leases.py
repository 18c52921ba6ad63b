"""Run leases: who holds an active reproduction run and until when, and how many times it was started.

Runs that are active when this migrates get a lease long past any run's wall-clock limit, so a
worker of the release before, still training one, finishes it; a run nobody finishes by then is
swept. Queued Celery runs are already in the broker and need none.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""
from datetime import datetime, timedelta, timezone

from alembic import op
import sqlalchemy as sa

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

#: How long the runs active at the upgrade are left to the workers that may hold them.
GRACE = timedelta(minutes=10)


def upgrade() -> None:
    with op.batch_alter_table("reproductions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("worker", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("leased_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("attempts", sa.Integer(), server_default="0", nullable=False))
        batch_op.create_index("ix_reproductions_status_leased_until", ["status", "leased_until"], unique=False)
    runs = sa.table("reproductions", sa.column("status", sa.String), sa.column("backend", sa.String),
                    sa.column("leased_until", sa.DateTime(timezone=True)))
    op.execute(runs.update().where((runs.c.status == "running") | ((runs.c.status == "queued") & (runs.c.backend == "local")))
               .values(leased_until=datetime.now(timezone.utc) + GRACE))


def downgrade() -> None:
    # SQLite drops columns by copying the table, which would leave out the unnamed CHECK: it is restated.
    status = sa.CheckConstraint("status IN ('queued', 'running', 'done', 'failed', 'cancelled')")
    with op.batch_alter_table("reproductions", schema=None, table_args=(status,)) as batch_op:
        batch_op.drop_index("ix_reproductions_status_leased_until")
        batch_op.drop_column("attempts")
        batch_op.drop_column("leased_until")
        batch_op.drop_column("worker")
