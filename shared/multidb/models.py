"""Relational tables: users, roles, their link, the route catalogue and the task schedules."""

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Column, DateTime, Dialect, Index, TypeDecorator, UniqueConstraint
from sqlmodel import Field, Relationship, SQLModel

from .clock import as_utc, utcnow


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp with time zone that reads back aware on SQLite too, which stores it naive."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return value.astimezone(UTC) if value is not None and value.tzinfo is not None else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return as_utc(value)


def trigram_indexes(table: str, *columns: str) -> tuple[Index, ...]:
    """GIN trigram indexes (PostgreSQL's `pg_trgm`) that serve a keyword's `ILIKE '%…%'` on
    each column (`repository.keyword_filter`; an OR of columns is a BitmapOr of their scans).
    A keyword shorter than three characters has no trigram to look up: its query reads in
    the page's order instead. PostgreSQL only: SQLite has no such index and does without."""
    return tuple(
        Index(
            f"ix_{table}_{column}_trgm", column, postgresql_using="gin", postgresql_ops={column: "gin_trgm_ops"}
        ).ddl_if(dialect="postgresql")
        for column in columns
    )


class TimestampedTable(SQLModel):
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    created_at: datetime = Field(default_factory=utcnow, sa_column_kwargs={"nullable": False}, sa_type=UTCDateTime)  # type: ignore[call-overload]
    updated_at: datetime = Field(
        default_factory=utcnow,
        sa_type=UTCDateTime,  # type: ignore[call-overload]
        sa_column_kwargs={"nullable": False, "onupdate": utcnow},
    )


class UserRole(SQLModel, table=True):
    __tablename__ = "user_roles"
    # The primary key finds a user's roles; this, a role's users (GET /users?roleId=, role edits).
    __table_args__ = (Index("ix_user_roles_role_id", "role_id", "user_id"),)

    user_id: uuid.UUID = Field(foreign_key="users.id", primary_key=True, ondelete="CASCADE")
    role_id: uuid.UUID = Field(foreign_key="roles.id", primary_key=True, ondelete="CASCADE")


class Role(TimestampedTable, table=True):
    __tablename__ = "roles"
    __table_args__ = (
        Index("ix_roles_created_at_id", "created_at", "id"),  # a page's order
        *trigram_indexes("roles", "name", "code"),  # a keyword
    )

    name: str = Field(max_length=64)
    description: str = Field(default="", max_length=255)
    code: str = Field(max_length=64, unique=True, index=True)
    status: bool = True
    interface_permissions: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    button_permissions: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    router_permissions: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))

    users: list["User"] = Relationship(back_populates="roles", link_model=UserRole)


class User(TimestampedTable, table=True):
    __tablename__ = "users"
    __table_args__ = (
        Index("ix_users_created_at_id", "created_at", "id"),  # a page's order
        *trigram_indexes("users", "name", "username", "email"),  # a keyword
    )

    name: str = Field(max_length=64)
    email: str = Field(max_length=255)
    username: str = Field(max_length=64, unique=True, index=True)
    password_hash: str = Field(max_length=255)
    status: bool = True
    is_admin: bool = False

    roles: list[Role] = Relationship(back_populates="users", link_model=UserRole)


class InterfaceRoute(TimestampedTable, table=True):
    """One API operation: the seed keyed routes by path alone and lost methods; we key by both."""

    __tablename__ = "interface_routes"
    __table_args__ = (UniqueConstraint("method", "path", name="uq_interface_routes_method_path"),)

    code: str = Field(max_length=300, unique=True, index=True)
    method: str = Field(max_length=10)
    path: str = Field(max_length=255)
    name: str = Field(max_length=128)
    description: str = Field(default="", max_length=1024)
    function: str = Field(max_length=64)
    access: str = Field(max_length=16, description="public | authenticated | permission")


class PeriodicTask(TimestampedTable, table=True):
    """A schedule the beat scheduler reads: a registered task, its arguments, and when to run it.

    Exactly one of `interval_seconds` and `crontab` is set (the API checks it). Its owner (the
    user who made it; NULL for rows older than owners) sees and changes it; names are unique
    per owner; a deleted user's schedules go with them. Beat writes
    back `last_run_at` and `total_run_count`; a `one_off` schedule disables itself after it ran.
    """

    __tablename__ = "periodic_tasks"
    __table_args__ = (
        CheckConstraint("(interval_seconds IS NULL) <> (crontab IS NULL)", name="ck_periodic_tasks_one_schedule"),
        CheckConstraint("interval_seconds IS NULL OR interval_seconds > 0", name="ck_periodic_tasks_interval"),
        UniqueConstraint("owner_id", "name", name="uq_periodic_tasks_owner_name"),
        *trigram_indexes("periodic_tasks", "name", "task"),  # a keyword
    )

    owner_id: uuid.UUID | None = Field(default=None, foreign_key="users.id", index=True, ondelete="CASCADE")
    name: str = Field(max_length=128, index=True)
    task: str = Field(max_length=200)
    description: str = Field(default="", max_length=255)
    args: list[Any] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    kwargs: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    interval_seconds: int | None = None
    crontab: str | None = Field(default=None, max_length=120, description="minute hour day month weekday (UTC)")
    enabled: bool = True
    one_off: bool = False
    last_run_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # type: ignore[call-overload]
    total_run_count: int = 0


class ScheduleChange(SQLModel, table=True):
    """One row: a version every schedule write bumps in its own transaction (and every change
    of a user's status, which rests or wakes their schedules). Beat reads it at each reload
    and reads the schedules themselves only when it moved, as django-celery-beat's
    `PeriodicTasks.last_change`."""

    __tablename__ = "periodic_tasks_changed"

    id: int = Field(default=1, primary_key=True)
    version: int = 0
    changed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)  # type: ignore[call-overload]
