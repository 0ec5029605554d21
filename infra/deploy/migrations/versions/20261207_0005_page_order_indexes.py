"""indexes for every page's order and filter: users and roles by creation time, a role's users

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 17:40:00.000000

A page of users or roles reads the rows of its page in the order of an index (creation time,
then id), and a page of one role's users finds them by the role: neither sorts or scans the
table (tests/integration/test_scale.py checks the plans). Only adds indexes: the previous
release runs on this schema.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_users_created_at_id", "users", ["created_at", "id"])
    op.create_index("ix_roles_created_at_id", "roles", ["created_at", "id"])
    op.create_index("ix_user_roles_role_id", "user_roles", ["role_id", "user_id"])


def downgrade() -> None:
    op.drop_index("ix_user_roles_role_id", table_name="user_roles")
    op.drop_index("ix_roles_created_at_id", table_name="roles")
    op.drop_index("ix_users_created_at_id", table_name="users")
