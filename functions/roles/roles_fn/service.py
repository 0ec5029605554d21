"""Role rules: codes unique, permissions from the catalogue, caches of affected users dropped."""

import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from multidb.errors import InvalidInput, NotFound
from multidb.models import Role
from multidb.rbac import catalogue, invalidate
from multidb.repository import RoleRepository, keyword_filter

from .schemas import RoleCreate, RoleUpdate

if TYPE_CHECKING:
    from redis.asyncio import Redis


def check_permissions(codes: Iterable[str]) -> None:
    unknown = sorted(set(codes) - set(catalogue()))
    if unknown:
        raise InvalidInput(f"unknown permission codes: {', '.join(unknown[:10])}")


def filters(status: bool | None, keyword: str | None) -> list[Any]:
    return [None if status is None else col(Role.status) == status, keyword_filter(keyword, Role.name, Role.code)]


async def create(session: AsyncSession, data: RoleCreate) -> Role:
    check_permissions(data.interface_permissions)
    role = await RoleRepository(session).create(Role(**data.model_dump()))
    await session.commit()
    return role


async def update(session: AsyncSession, redis: "Redis", role_id: uuid.UUID, data: RoleUpdate) -> Role:
    roles = RoleRepository(session)
    role = await roles.require(role_id)
    changes = data.model_dump(exclude_unset=True)
    if "interface_permissions" in changes:
        check_permissions(changes["interface_permissions"])
    holders = await roles.user_ids_of([role_id])
    role = await roles.update(role, changes)
    await session.commit()
    # After the commit: a grant rebuilt in between would read the old rows and linger.
    await invalidate(redis, *holders)
    return role


async def delete(session: AsyncSession, redis: "Redis", role_ids: list[uuid.UUID]) -> int:
    """Delete all of these roles or, if any is missing, none."""
    roles = RoleRepository(session)
    found = await roles.get_by_ids(role_ids)
    if len(found) != len(set(role_ids)):
        raise NotFound("role not found")
    holders = await roles.user_ids_of(role_ids)
    deleted = await roles.delete_many(role_ids)
    await session.commit()
    await invalidate(redis, *holders)
    return deleted
