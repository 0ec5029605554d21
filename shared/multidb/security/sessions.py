"""Refresh-token store, rotation with reuse detection, and revocation in Redis.

Keys keep the seed's shapes:
  auth:refresh:<user_id>:<jti>      one live refresh token (JSON: family, user agent, created_at)
  auth:family:<family>              the jti of the family's live refresh token
  auth:revoked:<jti>                an access token revoked before it expires
  auth:revoked-family:<family>      every token of a login session (family) revoked
  auth:families:<user_id>           the user's login sessions, to end them all at once
  auth:sessions-epoch:<user_id>     bumped whenever all of a user's sessions end
  auth:devices-before:<user_id>     when they last ended: device tokens issued earlier are not trusted

Every change that must not interleave with another runs as one Lua script, so no order of
logout, refresh, password change, reset or disabling leaves a usable token behind: a
rotation checks the family's revocation and spends the old token in the same step, and a
revocation finds the family's live token through `auth:family:<family>` (no SCAN, and only
the caller's own keys are touched). A login opens its session only if none of the user's
sessions were ended since its password was checked (the epoch).
"""

import json
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from .. import notices
from ..errors import Unauthorized
from ..keyspace import Keys
from ..logs import get_logger
from ..notices import Reason
from ..settings import get_settings
from .tokens import Claims, TokenType, issue, verify

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = get_logger("sessions")


class SessionsEnded(
    Unauthorized, error="sessions_ended", message="the account's sessions were ended meanwhile; log in again"
):
    """Login: the account's sessions were ended while the password was being checked; log in again."""


class RefreshTokenWrongClient(
    Unauthorized, error="refresh_token_wrong_client", message="refresh token does not belong to this client"
):
    """Refresh from another User-Agent than the login's (the token is not spent)."""


class RefreshTokenInvalid(Unauthorized, error="refresh_token_invalid", message="refresh token is no longer valid"):
    """A refresh token already spent or revoked (reuse also revokes its whole session)."""


refresh_key = Keys("auth:refresh")  # (user id, jti): one refresh token's record
family_key = Keys("auth:family")  # (family): the family's current refresh token
revoked_key = Keys("auth:revoked")  # (jti): a revoked access token, until it expires
revoked_family_key = Keys("auth:revoked-family")  # (family): a revoked family
families_key = Keys("auth:families")  # (user id): the user's families
epoch_key = Keys("auth:sessions-epoch")  # (user id): bumped when all their sessions end
devices_before_key = Keys("auth:devices-before")  # (user id): sessions before this time are gone


# KEYS: new refresh, family pointer, families set, epoch. ARGV: record, ttl, family, jti, epoch seen.
_OPEN = """
if (redis.call('GET', KEYS[4]) or '') ~= ARGV[5] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('SET', KEYS[2], ARGV[4], 'EX', ARGV[2])
redis.call('SADD', KEYS[3], ARGV[3])
redis.call('EXPIRE', KEYS[3], ARGV[2])
return 1
"""

# KEYS: old refresh, revoked-family marker, family pointer, new refresh, families set.
# ARGV: old jti, new jti, new record, ttl.
# A family without a pointer predates it: its stored token alone decides.
_ROTATE = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 'revoked' end
local live = redis.call('GET', KEYS[3])
if (live and live ~= ARGV[1]) or redis.call('DEL', KEYS[1]) == 0 then return 'spent' end
redis.call('SET', KEYS[4], ARGV[3], 'EX', ARGV[4])
redis.call('SET', KEYS[3], ARGV[2], 'EX', ARGV[4])
redis.call('EXPIRE', KEYS[5], ARGV[4])
return 'ok'
"""

_REVOKE_ONE = """
local function revoke(family, refresh_prefix, family_prefix, marker_prefix, ttl)
  redis.call('SET', marker_prefix .. family, '1', 'EX', ttl)
  local jti = redis.call('GET', family_prefix .. family)
  if jti then redis.call('DEL', refresh_prefix .. jti) end
  redis.call('DEL', family_prefix .. family)
end
"""

# KEYS: families set. ARGV: family, user's refresh prefix, family prefix, marker prefix, ttl,
# notice channel, notice.
_REVOKE_FAMILY = (
    _REVOKE_ONE
    + """
revoke(ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])
redis.call('SREM', KEYS[1], ARGV[1])
redis.call('PUBLISH', ARGV[6], ARGV[7])
return 1
"""
)

# KEYS: families set, epoch, devices-before. ARGV: family to keep ('' for none), refresh prefix,
# family prefix, marker prefix, ttl, notice channel, notice, now, device token lifetime.
_REVOKE_USER = (
    _REVOKE_ONE
    + """
redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[5])
redis.call('SET', KEYS[3], ARGV[8], 'EX', ARGV[9])
local ended = 0
for _, family in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if family ~= ARGV[1] then
    revoke(family, ARGV[2], ARGV[3], ARGV[4], ARGV[5])
    redis.call('SREM', KEYS[1], family)
    ended = ended + 1
  end
end
redis.call('PUBLISH', ARGV[6], ARGV[7])
return ended
"""
)


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    access: Claims
    refresh: Claims


def _record(family: str, user_agent: str) -> str:
    return json.dumps({"family": family, "user_agent": user_agent, "created_at": int(time.time())})


def _lifetime() -> int:
    """How long a revocation must last: as long as any token of the family could still verify."""
    settings = get_settings()
    return settings.refresh_token_ttl + settings.jwt_leeway


async def _script(redis: "Redis", source: str, keys: list[str], args: list[Any]) -> Any:
    return await redis.eval(source, len(keys), *keys, *args)  # type: ignore[misc]


async def device_trusted(redis: "Redis", device: Claims) -> bool:
    """Whether a (verified) device token still counts: issued after its user's sessions last
    ended. A token issued in that very second does not (the clock has whole seconds)."""
    ended = cast(str | None, await redis.get(devices_before_key(device.sub)))
    return ended is None or device.iat > int(ended)


async def sessions_epoch(redis: "Redis", user_id: str) -> str:
    """The user's session epoch now: read it before checking a password, pass it to `open_session`."""
    return cast(str | None, await redis.get(epoch_key(user_id))) or ""


def _issue_pair(user_id: str, family: str) -> tuple[str, Claims, str, Claims]:
    settings = get_settings()
    access_token, access = issue(user_id, TokenType.ACCESS, family, settings.access_token_ttl)
    refresh_token, refresh = issue(user_id, TokenType.REFRESH, family, settings.refresh_token_ttl)
    return access_token, access, refresh_token, refresh


async def open_session(redis: "Redis", user_id: str, user_agent: str, epoch: str) -> TokenPair:
    """Start a login session (a new family) unless the user's sessions were ended since `epoch`."""
    family = uuid.uuid4().hex
    access_token, access, refresh_token, refresh = _issue_pair(user_id, family)
    opened = await _script(
        redis,
        _OPEN,
        [refresh_key(user_id, refresh.jti), family_key(family), families_key(user_id), epoch_key(user_id)],
        [_record(family, user_agent), get_settings().refresh_token_ttl, family, refresh.jti, epoch],
    )
    if not opened:
        raise SessionsEnded()
    return TokenPair(access_token, refresh_token, access, refresh)


async def rotate(redis: "Redis", refresh_token: str, user_agent: str) -> TokenPair:
    """Spend a refresh token and issue the family's next pair, in one atomic step.

    A valid token that is no longer the family's live one was spent or revoked already:
    someone replays it, so the whole family (the thief's and the owner's tokens alike) is
    revoked. A family revoked meanwhile (logout, password change) never rotates again.
    """
    claims = verify(refresh_token, TokenType.REFRESH)
    stored = cast(str | None, await redis.get(refresh_key(claims.sub, claims.jti)))
    if stored is not None and json.loads(stored).get("user_agent") != user_agent:
        # Not spent: the owner may still use it.
        raise RefreshTokenWrongClient()
    access_token, access, new_token, new = _issue_pair(claims.sub, claims.fam)
    outcome = await _script(
        redis,
        _ROTATE,
        [
            refresh_key(claims.sub, claims.jti),
            revoked_family_key(claims.fam),
            family_key(claims.fam),
            refresh_key(claims.sub, new.jti),
            families_key(claims.sub),
        ],
        [claims.jti, new.jti, _record(claims.fam, user_agent), get_settings().refresh_token_ttl],
    )
    if outcome == "spent":
        from .. import audit

        await revoke_family(redis, claims.sub, claims.fam, Reason.REUSE)
        log.warning("refresh token reuse; family revoked", extra={"fields": {"user_id": claims.sub}})
        await audit.record(
            "auth.refresh_reuse", outcome=audit.Outcome.FAILURE, user_id=claims.sub, target=("session", claims.fam)
        )
    if outcome != "ok":
        raise RefreshTokenInvalid()
    return TokenPair(access_token, new_token, access, new)


async def revoke_family(redis: "Redis", user_id: str, family: str, reason: Reason) -> None:
    """End a login session: its access tokens stop working, its refresh token is deleted, and
    its open sockets hear `session:revoked` (`reason`) and close."""
    await _script(
        redis,
        _REVOKE_FAMILY,
        [families_key(user_id)],
        [
            family,
            refresh_key(user_id, ""),
            family_key.prefix,
            revoked_family_key.prefix,
            _lifetime(),
            notices.CHANNEL,
            notices.revoked(user_id, reason, family=family),
        ],
    )


async def revoke_user_sessions(redis: "Redis", user_id: str, reason: Reason, keep_family: str | None = None) -> int:
    """End every login session of a user (but `keep_family`, the caller's own); returns how many.

    Also moves the user's session epoch, so a login whose password was checked before this
    (the old password, say) cannot open a session after it; and the device tokens issued
    so far stop counting as trusted (`device_trusted`): each was proof of the old password.
    """
    settings = get_settings()
    ended = await _script(
        redis,
        _REVOKE_USER,
        [families_key(user_id), epoch_key(user_id), devices_before_key(user_id)],
        [
            keep_family or "",
            refresh_key(user_id, ""),
            family_key.prefix,
            revoked_family_key.prefix,
            _lifetime(),
            notices.CHANNEL,
            notices.revoked(user_id, reason, keep=keep_family),
            int(time.time()),
            settings.login_device_ttl + settings.jwt_leeway,
        ],
    )
    return int(ended)


async def revoke_access(redis: "Redis", claims: Claims) -> None:
    await redis.set(revoked_key(claims.jti), "1", ex=claims.seconds_left() + get_settings().jwt_leeway)
