"""No interleaving of logout, refresh, password changes, resets and disabling leaves a usable
token (issue #8's hole 5): the real service code called concurrently on the real Redis,
repeated until an interleaving would show, and the worst interleavings of a login with a
password change forced one by one."""

import asyncio
import random
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlmodel.ext.asyncio.session import AsyncSession

from multidb import runtime
from multidb.authz import Principal, check
from multidb.db import session_scope
from multidb.errors import AppError, Unauthorized
from multidb.redis import get_redis
from multidb.security import sessions
from multidb.security.tokens import TokenType, verify
from tests.helpers import UA, create_user


async def _open(user_id: str) -> sessions.TokenPair:
    redis = get_redis()
    return await sessions.open_session(redis, user_id, UA, await sessions.sessions_epoch(redis, user_id))


async def _principal(pair: sessions.TokenPair) -> Principal:
    return await check(pair.access, None)


async def _dead(pair: sessions.TokenPair) -> bool:
    """Neither the access token nor the refresh token of this pair works any more."""
    redis = get_redis()
    try:
        await check(pair.access, None)
        return False
    except AppError:
        pass
    try:
        await sessions.rotate(redis, pair.refresh_token, UA)
        return False
    except Unauthorized:
        return True


async def _unit[T](work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Service code in a unit of work, as a request runs it: commit, then the after-commit actions."""
    async with session_scope() as session:
        return await work(session)


async def _jitter[T](work: Awaitable[T]) -> T:
    await asyncio.sleep(random.random() / 500)
    return await work


async def _race(*calls: Awaitable[Any]) -> list[Any]:
    return list(await asyncio.gather(*(_jitter(call) for call in calls), return_exceptions=True))


def _survivors(results: list[Any]) -> list[sessions.TokenPair]:
    return [r for r in results if isinstance(r, sessions.TokenPair)]


def test_a_logout_racing_a_refresh_leaves_no_usable_token() -> None:
    from auth_fn import service

    user_id = create_user("alice", "alice-password")

    async def once() -> list[sessions.TokenPair]:
        pair = await _open(user_id)
        principal = await _principal(pair)
        results = await _race(
            service.logout(get_redis(), principal), sessions.rotate(get_redis(), pair.refresh_token, UA)
        )
        return [p for p in [pair, *_survivors(results)] if not await _dead(p)]

    for _ in range(40):
        assert runtime.run(once()) == []


def test_a_password_change_racing_a_refresh_of_another_session_leaves_no_usable_token() -> None:
    from auth_fn import service

    user_id = create_user("alice", "alice-password")

    async def once() -> list[sessions.TokenPair]:
        current, other = await _open(user_id), await _open(user_id)
        principal = await _principal(current)
        results = await _race(
            _unit(lambda s: service.change_password(s, get_redis(), principal, "alice-password", "alice-password")),
            sessions.rotate(get_redis(), other.refresh_token, UA),
        )
        assert not any(isinstance(r, Exception) and not isinstance(r, Unauthorized) for r in results), results
        assert not await _dead(current)  # the session that changed the password stays
        return [p for p in [other, *_survivors(results)] if not await _dead(p)]

    for _ in range(20):
        assert runtime.run(once()) == []


def test_disabling_a_user_racing_a_refresh_leaves_no_usable_token(admin: str) -> None:
    from auth_fn import service as auth
    from users_fn import service as users
    from users_fn.schemas import UserUpdate

    admin_principal = runtime.run(check(verify(admin, TokenType.ACCESS), None))
    user_id = create_user("alice", "alice-password")

    async def once() -> list[sessions.TokenPair]:
        pair = await _open(user_id)
        uid = uuid.UUID(user_id)
        results = await _race(
            _unit(lambda s: users.update(s, get_redis(), admin_principal, uid, UserUpdate(status=False))),
            _unit(lambda s: auth.refresh(s, get_redis(), pair.refresh_token, UA)),
        )
        survivors = [p for p in [pair, *_survivors(results)] if not await _dead(p)]
        await _unit(lambda s: users.update(s, get_redis(), admin_principal, uid, UserUpdate(status=True)))
        return survivors

    for _ in range(15):
        assert runtime.run(once()) == []


def test_a_password_reset_racing_a_login_with_the_old_password_leaves_no_session(admin: str) -> None:
    from auth_fn import service as auth
    from users_fn import service as users

    admin_principal = runtime.run(check(verify(admin, TokenType.ACCESS), None))
    passwords = [f"password-{n}" for n in range(13)]
    encrypted = [runtime.run(_encrypted(p)) for p in passwords]
    user_id = create_user("alice", passwords[0])

    async def once(n: int) -> list[sessions.TokenPair]:
        """Alice logs in with her password while an admin resets it to the next one."""
        uid = uuid.UUID(user_id)
        results = await _race(
            _unit(lambda s: users.reset_password(s, get_redis(), admin_principal, uid, encrypted[n + 1])),
            _unit(lambda s: auth.login(s, get_redis(), "alice", passwords[n], UA, auth.Client("10.0.0.2"))),
        )
        logged_in = [r.pair for r in results if isinstance(r, auth.Login)]
        return [p for p in logged_in if not await _dead(p)]

    for n in range(12):
        assert runtime.run(once(n)) == [], n
        runtime.run(get_redis().delete("auth:login-failures:user:alice", "auth:login-failures:ip:10.0.0.2"))


@pytest.mark.parametrize("moment", ["before the epoch is read", "after the epoch is read", "before the session opens"])
def test_a_login_with_the_old_password_at_each_moment_of_a_change_leaves_no_session(
    monkeypatch: pytest.MonkeyPatch, moment: str
) -> None:
    """The worst interleavings, forced: the whole password change (commit and revocations)
    runs while a login with the old password is paused at each step between reading the
    user row and opening its session. Either the login is refused or its session is dead."""
    from auth_fn import service

    user_id = create_user("alice", "alice-password")
    pair = runtime.run(_open(user_id))
    principal = runtime.run(_principal(pair))
    change = lambda s: service.change_password(s, get_redis(), principal, "alice-password", "new-password")  # noqa: E731
    real_epoch, real_open = sessions.sessions_epoch, sessions.open_session

    async def epoch(redis: Any, uid: str) -> str:
        if moment == "before the epoch is read":
            await _unit(change)
        value = await real_epoch(redis, uid)
        if moment == "after the epoch is read":
            await _unit(change)
        return value

    async def open_session(*args: Any) -> sessions.TokenPair:
        if moment == "before the session opens":
            await _unit(change)
        return await real_open(*args)

    monkeypatch.setattr(sessions, "sessions_epoch", epoch)
    monkeypatch.setattr(sessions, "open_session", open_session)
    login = _unit(lambda s: service.login(s, get_redis(), "alice", "alice-password", UA, service.Client("10.0.0.3")))
    try:
        result = runtime.run(login)
    except Unauthorized:
        return
    assert runtime.run(_dead(result.pair)), f"a login with the old password survived a change {moment}"


async def _encrypted(password: str) -> str:
    from multidb.security.login_crypto import encrypt_password, login_public_key_pem

    return encrypt_password(password, login_public_key_pem())
