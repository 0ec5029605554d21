"""a change marker beat polls before reading the schedules

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 16:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "periodic_tasks_changed",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.execute("INSERT INTO periodic_tasks_changed (id, version, changed_at) VALUES (1, 1, CURRENT_TIMESTAMP)")


def downgrade() -> None:
    op.drop_table("periodic_tasks_changed")
