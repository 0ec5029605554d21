"""The one authorization decision, shared by the Lambda authorizer and the functions."""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from .errors import Forbidden, ServiceUnavailable, Unauthorized
from .logs import get_logger
from .rbac import Access, access_of, cached_grants, granted, permission_key, version_key
from .redis import get_redis
from .security.sessions import revoked_family_key, revoked_key
from .security.tokens import Claims, TokenType, verify

if TYPE_CHECKING:
    from .models import User

log = get_logger("authz")


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
        }


async def authorize(token: str, code: str) -> Principal:
    """Verify an access token and that its user may call `code`; fail closed on any outage."""
    return await check(verify(token, TokenType.ACCESS), code)


async def check(claims: Claims, code: str | None) -> Principal:
    """Check verified claims against live state: revocations and the user's current grants.

    `code` None asks only that the user be active (a Socket.IO connection, say).

    Functions behind the gateway run this on the authorizer's context too: API Gateway may
    answer from its authorizer cache, and a logout or a role change must count at once.
    """
    redis = get_redis()
    try:
        revoked, family_revoked, cached, version = await redis.mget(
            revoked_key(claims.jti), revoked_family_key(claims.fam), permission_key(claims.sub), version_key(claims.sub)
        )
        if revoked or family_revoked:
            raise Unauthorized("token revoked", error="token_revoked")
        # decode_responses=True: the values are str
        grants = await cached_grants(redis, claims.sub, cast(str | None, cached), cast(str | None, version))
    except (Unauthorized, Forbidden):
        raise
    except Exception as exc:
        # Redis or the database is out of reach (or answered nonsense): deny, never guess.
        log.error("authorization backend unavailable: %s", type(exc).__name__)
        raise ServiceUnavailable("authorization is unavailable", error="authorization_unavailable") from exc
    if grants is None:
        raise Unauthorized("user no longer exists", error="user_gone")
    if not grants.active:
        raise Forbidden("user is disabled", error="user_disabled")
    if code is not None and not grants.allows(code):
        raise Forbidden()
    return Principal(grants.user_id, grants.name, grants.admin, claims, grants.codes)


def check_may_manage(principal: Principal, user: "User") -> None:
    """A user is managed (changed, disabled, reset, deleted, or their roles changed under
    them) only by an admin or by someone holding every code the user's roles grant, enabled
    or not: nobody acts on a user above them. The user must be loaded with their roles."""
    if principal.admin:
        return
    if user.is_admin:
        raise Forbidden("only admins can change admins", error="admins_only")
    if not principal.holds(granted(user.roles, disabled_too=True)):
        raise Forbidden("you can only manage users whose permissions you hold yourself", error="user_above_you")
