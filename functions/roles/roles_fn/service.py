"""Role rules: codes unique, permissions from the catalogue and held by the granter, caches dropped."""

import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from multidb import notices
from multidb.authz import Principal
from multidb.db import after_commit
from multidb.errors import Forbidden, InvalidInput, NotFound
from multidb.models import Role
from multidb.rbac import grantable, granted, invalidate
from multidb.repository import RoleRepository, keyword_filter

from .schemas import RoleCreate, RoleUpdate

if TYPE_CHECKING:
    from redis.asyncio import Redis


def check_permissions(principal: Principal, codes: Iterable[str]) -> None:
    """Codes a role may grant: known to the catalogue, and held by whoever grants them."""
    unknown = sorted(set(codes) - set(grantable()))
    if unknown:
        raise InvalidInput(f"unknown permission codes: {', '.join(unknown[:10])}", error="unknown_permission")
    if not principal.holds(codes):
        raise Forbidden("you can only grant permissions you hold yourself", error="permission_not_held")


def check_may_change(principal: Principal, role: Role) -> None:
    """Only someone holding all a role grants may change or delete it (enabling it included)."""
    if not principal.holds(granted([role], disabled_too=True)):
        raise Forbidden("you can only change roles whose permissions you hold yourself", error="role_above_you")


def filters(status: bool | None, keyword: str | None) -> list[Any]:
    return [None if status is None else col(Role.status) == status, keyword_filter(keyword, Role.name, Role.code)]


async def create(session: AsyncSession, principal: Principal, data: RoleCreate) -> Role:
    check_permissions(principal, data.interface_permissions)
    return await RoleRepository(session).create(Role(**data.model_dump()))


async def update(
    session: AsyncSession, redis: "Redis", principal: Principal, role_id: uuid.UUID, data: RoleUpdate
) -> Role:
    roles = RoleRepository(session)
    role = await roles.require(role_id)
    check_may_change(principal, role)
    changes = data.model_dump(exclude_unset=True)
    if "interface_permissions" in changes:
        check_permissions(principal, changes["interface_permissions"])
    holders = await roles.user_ids_of([role_id])
    role = await roles.update(role, changes)
    await _invalidate_around_commit(session, redis, holders)
    return role


async def delete(session: AsyncSession, redis: "Redis", principal: Principal, role_ids: list[uuid.UUID]) -> int:
    """Delete all of these roles or, if any is missing or above the caller, none."""
    roles = RoleRepository(session)
    found = await roles.get_by_ids(role_ids)
    if len(found) != len(set(role_ids)):
        raise NotFound("role not found", error="role_not_found")
    for role in found:
        check_may_change(principal, role)
    holders = await roles.user_ids_of(role_ids)
    deleted = await roles.delete_many(role_ids)
    await _invalidate_around_commit(session, redis, holders)
    return deleted


async def _invalidate_around_commit(session: AsyncSession, redis: "Redis", holders: list[str]) -> None:
    """Drop the holders' cached grants now (Redis unreachable: nothing is written) and again
    once the change is committed (a grant rebuilt in between read the old rows); then tell
    their open pages."""

    async def after() -> None:
        await invalidate(redis, *holders)
        await notices.grants_changed(redis, *holders)

    await invalidate(redis, *holders)
    after_commit(session, after)
