"""Login, refresh and logout: the rules, independent of HTTP."""

from typing import TYPE_CHECKING

from sqlmodel.ext.asyncio.session import AsyncSession

from multidb.authz import Principal
from multidb.errors import Forbidden, InvalidInput, TooManyRequests, Unauthorized
from multidb.logs import get_logger
from multidb.models import User
from multidb.rbac import invalidate
from multidb.repository import UserRepository
from multidb.security import sessions
from multidb.security.passwords import burn_password_check, hash_new_password, verify_password
from multidb.settings import get_settings

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = get_logger("auth")

BAD_CREDENTIALS = "incorrect username or password"


def _failures_key(username: str) -> str:
    return f"auth:login-failures:{username.lower()}"


async def check_credentials(session: AsyncSession, redis: "Redis", username: str, password: str) -> User:
    """The user these credentials belong to. Unknown users and wrong passwords answer alike."""
    settings = get_settings()
    failures_key = _failures_key(username)
    failures = await redis.get(failures_key)
    if failures is not None and int(failures) >= settings.login_max_failures:
        raise TooManyRequests("too many failed logins; try again later")
    user = await UserRepository(session).get_by_username(username)
    if user is None:
        burn_password_check(password)
    if user is None or not verify_password(password, user.password_hash):
        async with redis.pipeline(transaction=True) as pipe:
            pipe.incr(failures_key)
            pipe.expire(failures_key, settings.login_failure_window)
            await pipe.execute()
        log.info("login refused", extra={"fields": {"reason": "bad credentials"}})
        raise Unauthorized(BAD_CREDENTIALS)
    await redis.delete(failures_key)
    if not user.status:
        raise Forbidden("user is disabled")
    return user


async def login(
    session: AsyncSession, redis: "Redis", username: str, password: str, user_agent: str
) -> sessions.TokenPair:
    user = await check_credentials(session, redis, username, password)
    pair = await sessions.open_session(redis, str(user.id), user_agent)
    # A fresh login starts from the database's view of the user's grants.
    await invalidate(redis, str(user.id))
    log.info("login", extra={"fields": {"user_id": str(user.id)}})
    return pair


async def refresh(session: AsyncSession, redis: "Redis", refresh_token: str, user_agent: str) -> sessions.TokenPair:
    claims, family = await sessions.rotate(redis, refresh_token, user_agent)
    user = await UserRepository(session).get(claims.sub)
    if user is None or not user.status:
        await sessions.revoke_family(redis, claims.sub, family)
        raise Unauthorized("user is not active")
    return await sessions.open_session(redis, claims.sub, user_agent, family)


async def logout(redis: "Redis", principal: Principal) -> None:
    """End this login session: the access token, its family's refresh token, the cached grants."""
    await sessions.revoke_access(redis, principal.claims)
    await sessions.revoke_family(redis, principal.user_id, principal.claims.fam)
    await invalidate(redis, principal.user_id)
    log.info("logout", extra={"fields": {"user_id": principal.user_id}})


async def change_password(
    session: AsyncSession, redis: "Redis", principal: Principal, old_password: str, new_password: str
) -> None:
    """Change the caller's own password; every other session of theirs ends, this one stays."""
    users = UserRepository(session)
    user = await users.get(principal.user_id)
    if user is None:
        raise Unauthorized("user no longer exists")
    if not verify_password(old_password, user.password_hash):
        raise InvalidInput("the current password is incorrect")
    await users.update(user, {"password_hash": hash_new_password(new_password)})
    await session.commit()
    await sessions.revoke_user_sessions(redis, principal.user_id, keep_family=principal.claims.fam)
    log.info("password changed", extra={"fields": {"user_id": principal.user_id}})
