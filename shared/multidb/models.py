"""Relational tables: users, roles, their link, and the route catalogue."""

import uuid
from datetime import UTC, datetime

from sqlalchemy import JSON, Column, DateTime, UniqueConstraint
from sqlmodel import Field, Relationship, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class TimestampedTable(SQLModel):
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column_kwargs={"nullable": False}, sa_type=DateTime(timezone=True)
    )  # type: ignore[call-overload]
    updated_at: datetime = Field(
        default_factory=utcnow,
        sa_type=DateTime(timezone=True),  # type: ignore[call-overload]
        sa_column_kwargs={"nullable": False, "onupdate": utcnow},
    )


class UserRole(SQLModel, table=True):
    __tablename__ = "user_roles"

    user_id: uuid.UUID = Field(foreign_key="users.id", primary_key=True, ondelete="CASCADE")
    role_id: uuid.UUID = Field(foreign_key="roles.id", primary_key=True, ondelete="CASCADE")


class Role(TimestampedTable, table=True):
    __tablename__ = "roles"

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
