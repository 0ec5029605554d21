"""The one authorization decision, shared by the Lambda authorizer and the functions."""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from .errors import Forbidden, ServiceUnavailable, Unauthorized
from .logs import get_logger
from .rbac import (
    PASSWORD_RESET,
    Access,
    Grants,
    access_of,
    cached_grants,
    granted_all,
    permission_key,
    version_key,
)
from .redis import get_blocking_redis, get_redis
from .security.sessions import revoked_family_key, revoked_key
from .security.tokens import Claims

if TYPE_CHECKING:
    from .models import User

log = get_logger("authz")


class TokenRevoked(Unauthorized, error="token_revoked", message="token revoked"):
    """The access token or its whole session was revoked (logout, reuse, password change, disabling)."""


class UserGone(Unauthorized, error="user_gone", message="user no longer exists"):
    """The token's user no longer exists."""


class UserDisabled(Forbidden, error="user_disabled", message="user is disabled"):
    """The token's user is disabled."""


class AuthorizationUnavailable(
    ServiceUnavailable, error="authorization_unavailable", message="authorization is unavailable"
):
    """The permission check could not reach Redis or the database."""


class AdminsOnly(Forbidden, error="admins_only", message="only admins can change admins"):
    """Creating, changing or promoting an admin without being one."""


class UserAboveYou(
    Forbidden, error="user_above_you", message="you can only manage users whose permissions you hold yourself"
):
    """Managing a user whose roles grant codes the caller lacks."""


class UserResetsPasswords(
    Forbidden, error="user_resets_passwords", message="this user may reset passwords: only admins manage them"
):
    """A non-admin changing, disabling, resetting or deleting a user who may reset passwords
    (`PUT:/api/v1/users/{user_id}/password`, disabled roles included): admins manage them."""


class RoleAboveYou(
    Forbidden, error="role_above_you", message="you can only change roles whose permissions you hold yourself"
):
    """Changing, enabling, deleting or assigning a role whose codes the caller lacks."""


class ReservedRoleCode(
    Forbidden, error="reserved_role_code", message="only admins create or change roles with this code"
):
    """A non-admin creating, renaming to, changing, deleting or assigning a role with a reserved code (`admin`…)."""


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: str
    name: str
    admin: bool
    claims: Claims
    codes: frozenset[str] = frozenset()

    def holds(self, codes: Iterable[str]) -> bool:
        """Whether the caller may call every one of these codes itself: all it can hand out.

        Codes every active user has (public and any-user routes) count as held.
        """
        return self.admin or all(code in self.codes or access_of(code) is not Access.PERMISSION for code in codes)

    def context(self) -> dict[str, str | bool | int]:
        """The flat context an HTTP API authorizer may pass on (strings, numbers, booleans)."""
        return {
            "userId": self.user_id,
            "name": self.name,
            "isAdmin": self.admin,
            "jti": self.claims.jti,
            "fam": self.claims.fam,
            "iat": self.claims.iat,
            "exp": self.claims.exp,
            "kid": self.claims.kid,
        }


async def check(claims: Claims, code: str | None) -> Principal:
    """Check verified claims against live state: revocations and the user's current grants.

    `code` None asks only that the user be active (a Socket.IO connection, say).

    Functions behind the gateway run this on the authorizer's context too: API Gateway may
    answer from its authorizer cache, and a logout or a role change must count at once.
    """
    return (await check_reading(claims, code))[0]


async def check_reading(claims: Claims, code: str | None, also: tuple[str, ...] = ()) -> tuple[Principal, list[Any]]:
    """`check`, reading the keys `also` in the same round trip: the caller, and their values
    as they were when it was checked (a route that needs one more key saves a round trip).
    When the grants were not cached, the caller was checked against the database, after
    that read: the values are then all None, and the route reads what it needs again."""
    redis = get_redis()
    try:
        values = await redis.mget(*_keys(claims), *also)
        principal = _from_cache(claims, code, values[:4])
        if principal is not None:
            return principal, values[4:]
        # decode_responses=True: the version is a str
        grants = await cached_grants(redis, claims.sub, None, cast(str | None, values[3]))
    except (Unauthorized, Forbidden):
        raise
    except Exception as exc:
        raise _unavailable(exc) from exc
    return _admit(claims, code, grants), [None] * len(also)


def check_now(claims: Claims, code: str | None) -> Principal | None:
    """`check` in one blocking round trip, when the user's grants are cached (the authorizer's
    warm path); None when they are not, and only `check` can read them from the database.
    Every answer it gives is the one `check` would give."""
    try:
        return _from_cache(claims, code, get_blocking_redis().mget(*_keys(claims)))
    except (Unauthorized, Forbidden):
        raise
    except Exception as exc:
        raise _unavailable(exc) from exc


def check_lapsed_now(claims: Claims) -> None:
    """Raise unless the session of an expired token (`tokens.verify_lapsed`) is unrevoked: only
    then may the authorizer pass it on, to be answered 401 `token_expired` (a refresh can
    still succeed); a revoked one stays a Deny. Grants are not read: it is granted nothing."""
    try:
        revoked, family_revoked = get_blocking_redis().mget(revoked_key(claims.jti), revoked_family_key(claims.fam))
    except Exception as exc:
        raise _unavailable(exc) from exc
    if revoked or family_revoked:
        raise TokenRevoked()


def _keys(claims: Claims) -> tuple[str, str, str, str]:
    """What one decision reads: the token's and its family's revocations, the user's cached
    grants and their invalidation counter."""
    return revoked_key(claims.jti), revoked_family_key(claims.fam), permission_key(claims.sub), version_key(claims.sub)


def _from_cache(claims: Claims, code: str | None, values: list[Any]) -> Principal | None:
    """The decision on what `_keys` read; None if the grants are not cached."""
    revoked, family_revoked, cached, _ = values
    if revoked or family_revoked:
        raise TokenRevoked()
    if cached is None:
        return None
    grants = Grants.from_json(cached)
    if grants.user_id != claims.sub:
        raise ValueError("the cached grants name another user")  # a corrupt cache: unavailable
    return _admit(claims, code, grants)


def _admit(claims: Claims, code: str | None, grants: Grants | None) -> Principal:
    if grants is None:
        raise UserGone()
    if not grants.active:
        raise UserDisabled()
    if code is not None and not grants.allows(code):
        raise Forbidden()
    return Principal(grants.user_id, grants.name, grants.admin, claims, grants.codes)


def _unavailable(exc: Exception) -> ServiceUnavailable:
    # Redis or the database is out of reach (or answered nonsense): deny, never guess.
    log.error("authorization backend unavailable: %s", type(exc).__name__)
    return AuthorizationUnavailable()


def check_may_manage(principal: Principal, user: "User") -> None:
    """A user is managed (changed, disabled, reset, deleted, or their roles changed under
    them) only by an admin or by someone holding every code the user's roles grant, enabled
    or not, pages and buttons included: nobody acts on a user above them. A user who may
    reset passwords (`rbac.PASSWORD_RESET`) is managed by admins only. The user must be
    loaded with their roles."""
    if principal.admin:
        return
    if user.is_admin:
        raise AdminsOnly()
    codes = granted_all(user.roles, disabled_too=True)
    if not principal.holds(codes):
        raise UserAboveYou()
    if PASSWORD_RESET in codes:
        # Holding the same codes is not being above: a peer who may reset passwords could be
        # stripped of that code, then reset. Such users are admins' to manage.
        raise UserResetsPasswords()
