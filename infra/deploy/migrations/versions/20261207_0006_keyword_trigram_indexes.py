"""trigram indexes for the keyword filters of users, roles and schedules (PostgreSQL)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 23:30:00.000000

A keyword (`ILIKE '%…%'` over users' name, username and email, roles' name and code,
schedules' name and task) found its rows by reading the table in the page's order and
filtering; a GIN trigram index per column (`pg_trgm`) finds them instead, when the keyword
has three characters or more (a shorter one has no trigram: it still reads in page order).
PostgreSQL only: SQLite has neither the extension nor GIN, and keeps its scan. `CREATE
EXTENSION pg_trgm` is a trusted extension since PostgreSQL 13: the database's owner (the
migrating user, on Aurora the master user that owns the database) creates it without
superuser. Only adds indexes: the previous release runs on this schema.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = {"users": ("name", "username", "email"), "roles": ("name", "code"), "periodic_tasks": ("name", "task")}


def _postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    if not _postgresql():
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for table, columns in COLUMNS.items():
        for column in columns:
            op.create_index(
                f"ix_{table}_{column}_trgm",
                table,
                [column],
                postgresql_using="gin",
                postgresql_ops={column: "gin_trgm_ops"},
            )


def downgrade() -> None:
    if not _postgresql():
        return
    for table, columns in COLUMNS.items():
        for column in columns:
            op.drop_index(f"ix_{table}_{column}_trgm", table_name=table)
    # The extension stays: another schema object of the database's may use it.
