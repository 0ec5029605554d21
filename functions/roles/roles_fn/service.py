"""Role rules: codes unique, reserved codes admins' own, permissions of every kind from the
catalogue and held by the granter, caches dropped."""

import uuid
from typing import TYPE_CHECKING, Any

from pydantic.alias_generators import to_camel
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from multidb import audit, notices
from multidb.authz import Principal, ReservedRoleCode, RoleAboveYou, check_may_manage
from multidb.db import after_commit
from multidb.errors import Forbidden, InvalidInput
from multidb.models import Role
from multidb.rbac import ROLE_FIELDS, declared, granted_all, held, invalidate, is_reserved
from multidb.repository import RoleNotFound, RoleRepository, UserRepository, keyword_filter

from .schemas import RoleCreate, RoleUpdate

if TYPE_CHECKING:
    from redis.asyncio import Redis


class UnknownPermission(InvalidInput, error="unknown_permission"):
    """A role's interface, button or router permissions name codes the catalogue does not
    declare (`data` names the field)."""


class PermissionNotHeld(
    Forbidden, error="permission_not_held", message="you can only grant permissions you hold yourself"
):
    """A role would grant codes (interface, button or router) the caller does not hold."""


class RoleHolderAboveYou(
    Forbidden, error="role_holder_above_you", message="this role is held by users whose permissions you do not hold"
):
    """Changing or deleting a role held by a user the caller could not manage (`user_above_you`)."""


def check_code(principal: Principal, code: str) -> None:
    """A reserved role code (`rbac.is_reserved`) is an admin's to create, take or change."""
    if is_reserved(code) and not principal.admin:
        raise ReservedRoleCode()


def check_permissions(principal: Principal, permissions: dict[str, list[str]]) -> None:
    """Codes a role may grant, of each kind (`ROLE_FIELDS`): declared in the catalogue, and
    held by whoever grants them. No wildcard: `*` or `/admin/*` is a code like any other,
    and no entry declares one."""
    for kind, codes in permissions.items():
        unknown = sorted(set(codes) - declared(kind))
        if unknown:
            field = to_camel(kind)
            raise UnknownPermission(
                f"unknown {field} codes: {', '.join(unknown[:10])}"[:300],
                fields={field: "codes missing from the catalogue (GET /api/v1/router/backend)"},
            )
    if not principal.holds(frozenset().union(*(held(kind, codes) for kind, codes in permissions.items()))):
        raise PermissionNotHeld()


def check_may_change(principal: Principal, role: Role) -> None:
    """Only someone holding all a role grants, of every kind, may change or delete it
    (enabling it included); a role with a reserved code is an admin's."""
    check_code(principal, role.code)
    if not principal.holds(granted_all([role], disabled_too=True)):
        raise RoleAboveYou()


async def check_holders(session: AsyncSession, principal: Principal, holders: list[str]) -> None:
    """Changing or deleting a role acts on everyone holding it: a non-admin may do that only
    to holders they could manage themselves (the users route's rule), never to one above them."""
    if principal.admin:
        return
    others = [uuid.UUID(h) for h in holders if h != principal.user_id]
    for user in await UserRepository(session).get_by_ids(others):
        try:
            check_may_manage(principal, user)
        except Forbidden as exc:
            raise RoleHolderAboveYou() from exc


def filters(status: bool | None, keyword: str | None) -> list[Any]:
    return [None if status is None else col(Role.status) == status, keyword_filter(keyword, Role.name, Role.code)]


async def create(session: AsyncSession, principal: Principal, data: RoleCreate) -> Role:
    check_code(principal, data.code)
    check_permissions(principal, {kind: getattr(data, kind) for kind in ROLE_FIELDS})
    role = await RoleRepository(session).create(Role(**data.model_dump()))
    await audit.record_created("role", principal.user_id, role.id, _view(role), required=True)
    return role


def _view(role: Role) -> dict[str, object]:
    """What the audit log keeps of a role: every field a client can change, named as the API
    names them (camelCase), so a change shows as `{field: {from, to}}`."""
    kept = audit.view(role, "name", "description", "code", "status", *ROLE_FIELDS)
    return {to_camel(name): value for name, value in kept.items()}


async def update(
    session: AsyncSession, redis: "Redis", principal: Principal, role_id: uuid.UUID, data: RoleUpdate
) -> Role:
    roles = RoleRepository(session)
    # Locked before its holders are read: a user being given this role meanwhile (which holds
    # it FOR SHARE, users_fn) commits first and is among them, or waits for this change.
    await roles.lock([role_id])
    role = await roles.require(role_id)
    check_may_change(principal, role)
    changes = data.model_dump(exclude_unset=True)
    if "code" in changes:
        check_code(principal, changes["code"])
    check_permissions(principal, {kind: changes[kind] for kind in ROLE_FIELDS if kind in changes})
    holders = await roles.user_ids_of([role_id])
    await check_holders(session, principal, holders)
    before = _view(role)
    role = await roles.update(role, changes)
    details = audit.changes(before, _view(role))
    await audit.record(
        "role.update", user_id=principal.user_id, target=("role", str(role.id)), details=details, required=True
    )
    await _invalidate_around_commit(session, redis, holders)
    return role


async def delete(session: AsyncSession, redis: "Redis", principal: Principal, role_ids: list[uuid.UUID]) -> int:
    """Delete all of these roles or, if any is missing or above the caller, none."""
    roles = RoleRepository(session)
    await roles.lock(role_ids)  # as in `update`: no holder added unseen before the delete commits
    found = await roles.get_by_ids(role_ids)
    if len(found) != len(set(role_ids)):
        raise RoleNotFound()
    for role in found:
        check_may_change(principal, role)
    holders = await roles.user_ids_of(role_ids)
    await check_holders(session, principal, holders)
    for role in found:
        target = ("role", str(role.id))
        details = audit.deleted(_view(role))
        await audit.record("role.delete", user_id=principal.user_id, target=target, details=details, required=True)
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
