"""Login, refresh and logout: the rules, independent of HTTP.

Login limits follow OWASP's "Slow down online guessing attacks with device cookies": a
hard lock per account lets any stranger lock anyone out, and a limit per account alone
never slows a guess sprayed over many accounts. So each attempt counts, before the
password is checked, against
- the username, for clients that never logged in as this user (a stranger's guesses lock
  out only strangers), or the device token a client got at an earlier login of this user
  (its owner keeps logging in while strangers are locked out);
- the client's IP, whatever the username (spraying).
A success clears the account's (or device's) count and takes itself off the IP's count.
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlmodel.ext.asyncio.session import AsyncSession

from multidb import audit
from multidb.audit import Outcome
from multidb.authz import Principal, UserGone
from multidb.db import after_commit
from multidb.errors import AppError, InvalidInput, TooManyRequests, Unauthorized
from multidb.keyspace import Keys
from multidb.logs import get_logger
from multidb.models import User
from multidb.notices import Reason
from multidb.rbac import invalidate
from multidb.repository import UserRepository
from multidb.security import sessions
from multidb.security.passwords import burn_password_check, hash_new_password, verify_password
from multidb.security.throttle import Limit, enforce
from multidb.security.tokens import Claims, TokenType, issue, verify
from multidb.settings import get_settings

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = get_logger("auth")

login_failures_key = Keys("auth:login-failures")  # ("user" | "ip" | "device", its id): failed logins
password_failures_key = Keys("auth:password-failures")  # (user id): wrong old passwords


class BadCredentials(Unauthorized, error="bad_credentials", message="incorrect username or password"):
    """Login: unknown user, wrong password or disabled account (one answer for all three)."""


class UserNotActive(Unauthorized, error="user_not_active", message="user is not active"):
    """Refresh for a user who was disabled or deleted (the session ends)."""


class WrongCurrentPassword(InvalidInput, error="wrong_current_password", message="the current password is incorrect"):
    """`PUT /auth/user/password` with a wrong `oldPassword`."""


class TooManyFailedLogins(
    TooManyRequests, error="too_many_failed_logins", message="too many failed logins; try again later"
):
    """Failed logins per username, device token or client IP."""


class TooManyWrongPasswords(
    TooManyRequests, error="too_many_wrong_passwords", message="too many wrong current passwords; try again later"
):
    """Wrong current passwords in `PUT /auth/user/password`."""


@dataclass(frozen=True, slots=True)
class Client:
    """Who is knocking: the address API Gateway saw, and a device token from an earlier login."""

    ip: str
    device_token: str | None = None


@dataclass(frozen=True, slots=True)
class Login:
    pair: sessions.TokenPair
    device_token: str


async def _trusted_device(redis: "Redis", token: str | None, user: User | None) -> Claims | None:
    """The device token's claims, if it is genuine, was issued to this very user, and was
    issued after their sessions last ended (a password change or reset forgets devices)."""
    if not token or user is None:
        return None
    try:
        claims = verify(token, TokenType.DEVICE)
    except AppError:
        return None
    if claims.sub != str(user.id) or not await sessions.device_trusted(redis, claims):
        return None
    return claims


def _login_limits(username: str, device: Claims | None, ip: str) -> list[Limit]:
    """A trusted device has its own counter and nothing else: neither a stranger guessing
    the account's password nor a crowd of failures from its IP (an office, a carrier NAT)
    locks it out. Anyone else counts against the account and against the IP."""
    settings = get_settings()
    window = settings.login_failure_window
    if device is not None:
        return [Limit(login_failures_key("device", device.jti), settings.login_max_failures, window)]
    return [
        Limit(login_failures_key("user", username), settings.login_max_failures, window),
        Limit(login_failures_key("ip", ip), settings.login_max_failures_per_ip, window),
    ]


async def check_credentials(
    session: AsyncSession, redis: "Redis", username: str, password: str, client: Client
) -> tuple[User, str]:
    """The user these credentials belong to, and their session epoch as of the check.

    Unknown users, wrong passwords and disabled accounts answer alike, after the same work.
    """
    user = await UserRepository(session).get_by_username(username)
    account, *per_ip = _login_limits(username, await _trusted_device(redis, client.device_token, user), client.ip)
    try:
        await enforce(redis, account, *per_ip, error=TooManyFailedLogins)
    except TooManyRequests:
        await _login_refused(username, user, "rate_limited")
        raise
    epoch = ""
    if user is not None:
        # The epoch first, then the hash read again: a reset committed after this read moves
        # the epoch (and open_session refuses), one committed before it shows its new hash.
        epoch = await sessions.sessions_epoch(redis, str(user.id))
        await session.refresh(user, ["password_hash", "status"])
    if user is None:
        burn_password_check(password)
        reason = "unknown user"
    elif not verify_password(password, user.password_hash):
        reason = "wrong password"
    elif not user.status:
        reason = "disabled"
    else:
        async with redis.pipeline(transaction=True) as pipe:
            pipe.delete(account.key)
            for limit in per_ip:
                pipe.decr(limit.key)
            await pipe.execute()
        return user, epoch
    log.info("login refused", extra={"fields": {"reason": reason}})
    await _login_refused(username, user, reason.replace(" ", "_"))
    raise BadCredentials()


async def _login_refused(username: str, user: User | None, reason: str) -> None:
    """Count a refused login in the audit log's tally of this username and address for the
    login window: anyone can cause these, 429s included, so they add to one entry each, not
    one entry apiece."""
    user_id = str(user.id) if user is not None else None
    await audit.tally(
        "auth.login",
        subject=username,
        reason=reason,
        window=get_settings().login_failure_window,
        user_id=user_id,
        target=("user", user_id),
    )


def _device_token(user_id: str) -> str:
    import uuid

    token, _ = issue(user_id, TokenType.DEVICE, uuid.uuid4().hex, get_settings().login_device_ttl)
    return token


async def login(
    session: AsyncSession, redis: "Redis", username: str, password: str, user_agent: str, client: Client
) -> Login:
    user, epoch = await check_credentials(session, redis, username, password, client)
    pair = await sessions.open_session(redis, str(user.id), user_agent, epoch)
    # A fresh login starts from the database's view of the user's grants.
    await invalidate(redis, str(user.id))
    await audit.record("auth.login", user_id=str(user.id), target=("user", str(user.id)))
    log.info("login", extra={"fields": {"user_id": str(user.id)}})
    return Login(pair, _device_token(str(user.id)))


async def refresh(session: AsyncSession, redis: "Redis", refresh_token: str, user_agent: str) -> sessions.TokenPair:
    pair = await sessions.rotate(redis, refresh_token, user_agent)
    user = await UserRepository(session).get(pair.refresh.sub)
    if user is None or not user.status:
        await sessions.revoke_family(redis, pair.refresh.sub, pair.refresh.fam, Reason.DISABLED)
        raise UserNotActive()
    return pair


async def logout(redis: "Redis", principal: Principal) -> None:
    """End this login session: the access token, its family's refresh token, the cached grants."""
    await sessions.revoke_access(redis, principal.claims)
    await sessions.revoke_family(redis, principal.user_id, principal.claims.fam, Reason.LOGOUT)
    await invalidate(redis, principal.user_id)
    await audit.record("auth.logout", user_id=principal.user_id, target=("user", principal.user_id))
    log.info("logout", extra={"fields": {"user_id": principal.user_id}})


async def change_password(
    session: AsyncSession, redis: "Redis", principal: Principal, old_password: str, new_password: str
) -> None:
    """Change the caller's own password; every other session of theirs ends, this one stays.

    The current password is checked under the login limit of the account, so a stolen
    access token cannot be used to guess it.
    """
    settings = get_settings()
    users = UserRepository(session)
    user = await users.get(principal.user_id)
    if user is None:
        raise UserGone()
    attempts = Limit(
        password_failures_key(principal.user_id), settings.login_max_failures, settings.login_failure_window
    )
    await enforce(redis, attempts, error=TooManyWrongPasswords)
    if not verify_password(old_password, user.password_hash):
        await audit.record(
            "auth.password_change",
            outcome=Outcome.FAILURE,
            user_id=principal.user_id,
            target=("user", principal.user_id),
            details={"reason": "wrong_current_password"},
        )
        raise WrongCurrentPassword()
    await redis.delete(attempts.key)
    await users.update(user, {"password_hash": hash_new_password(new_password)})
    # Once the new hash is committed: a login that read the old one can no longer open a session.
    after_commit(
        session,
        lambda: sessions.revoke_user_sessions(
            redis, principal.user_id, Reason.PASSWORD_CHANGED, keep_family=principal.claims.fam
        ),
    )
    await audit.record("auth.password_change", user_id=principal.user_id, target=("user", principal.user_id))
    log.info("password changed", extra={"fields": {"user_id": principal.user_id}})
