"""schedules have an owner; names are unique per owner

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 14:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Rows made before owners existed keep owner_id NULL: only admins see and change them.
    with op.batch_alter_table("periodic_tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("owner_id", sa.Uuid(), nullable=True))
        batch_op.create_foreign_key(
            "fk_periodic_tasks_owner_id_users", "users", ["owner_id"], ["id"], ondelete="CASCADE"
        )
        batch_op.drop_index("ix_periodic_tasks_name")
        batch_op.create_index("ix_periodic_tasks_name", ["name"], unique=False)
        batch_op.create_index("ix_periodic_tasks_owner_id", ["owner_id"], unique=False)
        batch_op.create_unique_constraint("uq_periodic_tasks_owner_name", ["owner_id", "name"])


def downgrade() -> None:
    with op.batch_alter_table("periodic_tasks", schema=None) as batch_op:
        batch_op.drop_constraint("uq_periodic_tasks_owner_name", type_="unique")
        batch_op.drop_index("ix_periodic_tasks_owner_id")
        batch_op.drop_index("ix_periodic_tasks_name")
        batch_op.create_index("ix_periodic_tasks_name", ["name"], unique=True)
        batch_op.drop_constraint("fk_periodic_tasks_owner_id_users", type_="foreignkey")
        batch_op.drop_column("owner_id")
