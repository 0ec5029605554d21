"""User rules: no self-promotion, no escalation through roles, the last admin stays, sessions end."""

import uuid
from typing import TYPE_CHECKING, Any

from pydantic.alias_generators import to_camel
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from multidb import audit, notices
from multidb.authz import AdminsOnly, Principal, ReservedRoleCode, RoleAboveYou, check_may_manage
from multidb.db import after_commit
from multidb.errors import Conflict, Forbidden, InvalidInput
from multidb.models import Role, User, UserRole
from multidb.notices import Reason
from multidb.rbac import granted_all, invalidate, is_reserved
from multidb.repository import RoleRepository, ScheduleRepository, UserNotFound, UserRepository, keyword_filter
from multidb.security.login_crypto import decrypt_password
from multidb.security.passwords import hash_new_password
from multidb.security.sessions import revoke_user_sessions

from .schemas import UserCreate, UserUpdate

if TYPE_CHECKING:
    from redis.asyncio import Redis


class UnknownRole(InvalidInput, error="unknown_role", message="unknown role id"):
    """`roleIds` names a role that does not exist."""


class LastAdmin(Conflict, error="last_admin", message="the last active admin cannot be disabled, demoted or deleted"):
    """The last active admin would be disabled, demoted or deleted (a backstop: see
    [safe defaults](#safe-defaults-in-user-administration))."""


class SelfChange(Forbidden, error="self_change", message="you cannot change your own roles, admin flag or status"):
    """Changing your own roles, admin flag or status."""


class SelfPasswordReset(
    Forbidden, error="self_password_reset", message="change your own password with PUT /api/v1/auth/user/password"
):
    """`PUT /users/{id}/password` on yourself: your own password changes with the current one
    (`PUT /auth/user/password`)."""


class SelfDelete(Forbidden, error="self_delete", message="you cannot delete yourself"):
    """Deleting yourself."""


def new_password_hash(ciphertext: str) -> str:
    return hash_new_password(decrypt_password(ciphertext))


def filters(keyword: str | None, status: bool | None, role_id: uuid.UUID | None) -> list[Any]:
    by_role = None
    if role_id is not None:
        by_role = col(User.id).in_(select(UserRole.user_id).where(UserRole.role_id == role_id))
    return [
        keyword_filter(keyword, User.name, User.username, User.email),
        None if status is None else col(User.status) == status,
        by_role,
    ]


async def _roles(
    session: AsyncSession, principal: Principal, role_ids: list[uuid.UUID], had: frozenset[uuid.UUID] = frozenset()
) -> list[Role]:
    """The roles to assign: they must exist, and a non-admin can hand out only what they hold
    (a disabled role's codes included: enabling it later must not hand over more), and no
    role with a reserved code the user did not `had` already."""
    repository = RoleRepository(session)
    # Held until this change commits: a concurrent edit or deletion of these roles, which reads
    # their holders after locking them (roles_fn), then sees this user among them.
    await repository.lock(role_ids, shared=True)
    roles = await repository.get_by_ids(role_ids)
    if len(roles) != len(set(role_ids)):
        raise UnknownRole()
    if not principal.holds(granted_all(roles, disabled_too=True)):
        raise RoleAboveYou("you can only assign roles whose permissions you hold yourself")
    if not principal.admin and any(is_reserved(r.code) and r.id not in had for r in roles):
        raise ReservedRoleCode("only admins assign roles with this code")
    return roles


async def _keep_an_admin(users: UserRepository, leaving: list[User]) -> None:
    """Refuse to leave the system without an active admin."""
    if any(u.is_admin and u.status for u in leaving) and await users.count_active_admins([u.id for u in leaving]) == 0:
        raise LastAdmin()


async def create(session: AsyncSession, principal: Principal, data: UserCreate) -> User:
    if data.is_admin and not principal.admin:
        raise AdminsOnly("only admins can create admins")
    users = UserRepository(session)
    user = User(
        name=data.name,
        email=str(data.email),
        username=data.username,
        password_hash=new_password_hash(data.password),
        status=data.status,
        is_admin=data.is_admin,
    )
    user.roles = await _roles(session, principal, data.role_ids)
    await users.create(user)
    await audit.record_created("user", principal.user_id, user.id, _view(user), required=True)
    return user


def _view(user: User) -> dict[str, object]:
    """What the audit log keeps of a user: the fields that say who they are and what they may do."""
    identity = audit.view(user, "username", "name", "email", "status", "is_admin")
    return {**{to_camel(name): value for name, value in identity.items()}, "roles": sorted(r.code for r in user.roles)}


async def update(
    session: AsyncSession, redis: "Redis", principal: Principal, user_id: uuid.UUID, data: UserUpdate
) -> User:
    users = UserRepository(session)
    user = await users.require(user_id)
    changes = data.model_dump(exclude_unset=True)
    role_ids = changes.pop("role_ids", None)
    itself = str(user.id) == principal.user_id
    if itself and (
        (role_ids is not None and set(role_ids) != {r.id for r in user.roles})
        or changes.get("is_admin", user.is_admin) != user.is_admin
        or changes.get("status", True) is False
    ):
        raise SelfChange()
    if changes.get("is_admin") and not principal.admin:
        raise AdminsOnly()
    if not itself:
        check_may_manage(principal, user)
    if changes.get("is_admin") is False or changes.get("status") is False:
        await _keep_an_admin(users, [user])
    before = _view(user)
    if role_ids is not None:
        user.roles = await _roles(session, principal, role_ids, frozenset(r.id for r in user.roles))
    disabled = user.status and changes.get("status") is False
    status_changed = "status" in changes and changes["status"] != user.status
    await users.update(user, changes)
    if status_changed:
        await ScheduleRepository(session).mark_changed()  # their schedules rest or wake
    user_id_ = str(user.id)
    details = audit.changes(before, _view(user))
    await audit.record(
        "user.update", user_id=principal.user_id, target=("user", user_id_), details=details, required=True
    )

    async def after() -> None:
        await invalidate(redis, user_id_)
        await notices.grants_changed(redis, user_id_)
        if disabled:
            await revoke_user_sessions(redis, user_id_, Reason.DISABLED)

    await invalidate(redis, user_id_)  # Redis out of reach: nothing is written
    after_commit(session, after)
    return user


async def reset_password(
    session: AsyncSession, redis: "Redis", principal: Principal, user_id: uuid.UUID, ciphertext: str
) -> None:
    """Set a password; whoever sets it could log in as that user, so no one above the caller."""
    if str(user_id) == principal.user_id:
        # Your own password changes with the current one (PUT /auth/user/password): a stolen
        # access token must not be enough to take the account over for good.
        raise SelfPasswordReset()
    users = UserRepository(session)
    user = await users.require(user_id)
    check_may_manage(principal, user)  # who may reset passwords is an admin's to reset
    await users.update(user, {"password_hash": new_password_hash(ciphertext)})
    user_id_ = str(user.id)
    await audit.record("user.password_reset", user_id=principal.user_id, target=("user", user_id_), required=True)
    after_commit(session, lambda: revoke_user_sessions(redis, user_id_, Reason.PASSWORD_RESET))


async def delete(session: AsyncSession, redis: "Redis", principal: Principal, user_ids: list[uuid.UUID]) -> int:
    """Delete all of these users or, if any is missing or protected, none."""
    users = UserRepository(session)
    found = await users.get_by_ids(user_ids)
    if len(found) != len(set(user_ids)):
        raise UserNotFound()
    if any(str(u.id) == principal.user_id for u in found):
        raise SelfDelete()
    for user in found:
        check_may_manage(principal, user)
    await _keep_an_admin(users, found)
    ids = [str(u.id) for u in found]
    for user in found:
        details = audit.deleted(_view(user))
        await audit.record(
            "user.delete", user_id=principal.user_id, target=("user", str(user.id)), details=details, required=True
        )
    deleted = await users.delete_many(user_ids)
    await ScheduleRepository(session).mark_changed()  # their schedules went with them

    async def after() -> None:
        await invalidate(redis, *ids)
        for user_id in ids:
            await revoke_user_sessions(redis, user_id, Reason.DELETED)

    await invalidate(redis, *ids)  # Redis out of reach: nothing is deleted
    after_commit(session, after)
    return deleted
