"""Refresh-token store, rotation with reuse detection, and access-token revocation in Redis.

Keys keep the seed's shapes:
  auth:refresh:<user_id>:<jti>      one live refresh token (JSON: family, user agent, created_at)
  auth:revoked:<jti>                an access token revoked before it expires
  auth:revoked-family:<family>      every token of a login session (family) revoked
  auth:families:<user_id>           the user's login sessions, to end them all at once
"""

import json
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from ..errors import Unauthorized
from ..logs import get_logger
from ..settings import get_settings
from .tokens import Claims, TokenType, issue, verify

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = get_logger("sessions")


def refresh_key(user_id: str, jti: str) -> str:
    return f"auth:refresh:{user_id}:{jti}"


def revoked_key(jti: str) -> str:
    return f"auth:revoked:{jti}"


def revoked_family_key(family: str) -> str:
    return f"auth:revoked-family:{family}"


def families_key(user_id: str) -> str:
    return f"auth:families:{user_id}"


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    access: Claims
    refresh: Claims


async def open_session(redis: "Redis", user_id: str, user_agent: str, family: str | None = None) -> TokenPair:
    """Issue an access + refresh pair; a new login starts a new family, a rotation keeps it."""
    settings = get_settings()
    family = family or uuid.uuid4().hex
    access_token, access = issue(user_id, TokenType.ACCESS, family, settings.access_token_ttl)
    refresh_token, refresh = issue(user_id, TokenType.REFRESH, family, settings.refresh_token_ttl)
    record = {"family": family, "user_agent": user_agent, "created_at": int(time.time())}
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(refresh_key(user_id, refresh.jti), json.dumps(record), ex=settings.refresh_token_ttl)
        pipe.sadd(families_key(user_id), family)
        pipe.expire(families_key(user_id), settings.refresh_token_ttl)
        await pipe.execute()
    return TokenPair(access_token, refresh_token, access, refresh)


async def rotate(redis: "Redis", refresh_token: str, user_agent: str) -> tuple[Claims, str]:
    """Spend a refresh token; return its claims and family for the caller to open the next pair.

    A valid token that is no longer stored was spent or revoked already: someone replays
    it, so the whole family (the thief's and the owner's tokens alike) is revoked.
    """
    claims = verify(refresh_token, TokenType.REFRESH)
    key = refresh_key(claims.sub, claims.jti)
    stored = await redis.get(key)
    if stored is None:
        await revoke_family(redis, claims.sub, claims.fam)
        log.warning("refresh token reuse; family revoked", extra={"fields": {"user_id": claims.sub}})
        raise Unauthorized("refresh token is no longer valid")
    record = json.loads(stored)
    if record.get("user_agent") != user_agent:
        raise Unauthorized("refresh token does not belong to this client")
    if await redis.getdel(key) is None:  # lost a race with another use of the same token
        await revoke_family(redis, claims.sub, claims.fam)
        raise Unauthorized("refresh token is no longer valid")
    return claims, claims.fam


async def revoke_family(redis: "Redis", user_id: str, family: str) -> None:
    """End a login session: its access tokens stop working, its refresh token is deleted."""
    settings = get_settings()
    ttl = settings.access_token_ttl + settings.jwt_leeway
    await redis.set(revoked_family_key(family), "1", ex=ttl)
    stale = []
    async for key in redis.scan_iter(match=refresh_key(user_id, "*"), count=100):
        stored = await redis.get(key)
        if stored is not None and json.loads(stored).get("family") == family:
            stale.append(key)
    if stale:
        await redis.delete(*stale)


async def revoke_user_sessions(redis: "Redis", user_id: str, keep_family: str | None = None) -> int:
    """End every login session of a user (but `keep_family`, the caller's own); returns how many."""
    members = cast(set[str], await redis.smembers(families_key(user_id)))  # decode_responses=True
    families = [f for f in members if f != keep_family]
    for family in families:
        await revoke_family(redis, user_id, family)
    if families:
        await redis.srem(families_key(user_id), *families)
    return len(families)


async def revoke_access(redis: "Redis", claims: Claims) -> None:
    await redis.set(revoked_key(claims.jti), "1", ex=claims.seconds_left() + get_settings().jwt_leeway)
