"""Rate limits on Socket.IO client events: one token bucket per connection, in the server's
memory, and one per user in Redis, shared by every server and every socket of the user.

A connection's bucket holds REALTIME_EVENTS_BURST tokens and refills at
REALTIME_EVENTS_PER_SECOND. A refused event costs a token too, so the bucket goes into
debt: a client that keeps sending while refused must slow down below the rate to recover,
and one that runs up REALTIME_EVENTS_HARD_LIMIT tokens of debt is disconnected.

The user's bucket (REALTIME_USER_EVENTS_PER_SECOND, REALTIME_USER_EVENTS_BURST) is a GCRA
in one Lua script: one round trip, on Redis's clock, exact however many servers ask at once.

    realtime:rate:<user_id>     the user's theoretical arrival time (seconds, Redis's clock)
"""

import math
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, cast

from multidb.errors import TooManyRequests
from multidb.keyspace import Keys

if TYPE_CHECKING:
    from redis.asyncio import Redis

rate_key = Keys("realtime:rate")  # (user id): the user's bucket across servers


class TooManyEvents(TooManyRequests, error="too_many_events", message="Too many events."):
    """Socket.IO client events over the connection's or the user's rate
    ([limits](tasks-and-realtime.md#rate-limits))."""


class Verdict(Enum):
    ALLOW = "allow"
    REFUSE = "refuse"
    CLOSE = "close"  # refused, and past the hard limit: the connection goes


@dataclass(slots=True)
class Bucket:
    """A connection's token bucket (not shared: each server holds its own sockets')."""

    rate: float
    burst: float
    hard: float
    tokens: float = math.nan
    at: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        if math.isnan(self.tokens):
            self.tokens = self.burst

    def take(self, now: float | None = None) -> Verdict:
        now = time.monotonic() if now is None else now
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        self.tokens -= 1
        if self.tokens >= 0:
            return Verdict.ALLOW
        if self.tokens <= -self.hard:
            return Verdict.CLOSE
        return Verdict.REFUSE

    def wait(self) -> float:
        """Seconds until the next event would pass (it needs a whole token)."""
        return max(0.0, 1 - self.tokens) / self.rate


# GCRA: an event is due at `tat` (its theoretical arrival time); it passes if that is no
# more than `burst` intervals ahead of now. Returns 0 when it passes, else the ms to wait.
_USER_BUCKET = """
local now = redis.call('TIME')
now = tonumber(now[1]) + tonumber(now[2]) / 1000000
local interval = 1 / tonumber(ARGV[1])
local window = interval * tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local due = tat + interval
if due - now > window then
  return math.ceil((due - now - window) * 1000)
end
redis.call('SET', KEYS[1], string.format('%.6f', due), 'PX', math.ceil((due - now) * 1000) + 1)
return 0
"""


async def take_user(redis: "Redis", user_id: str, rate: float, burst: int) -> float:
    """Count one event against the user's bucket; 0 if it passes, else the seconds to wait."""
    wait = await redis.eval(_USER_BUCKET, 1, rate_key(user_id), str(rate), str(burst))  # type: ignore[misc]
    return cast(int, wait) / 1000
