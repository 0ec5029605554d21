"""Abuse limits on Redis counters: count first, decide after.

Reading a counter and incrementing it later lets every concurrent attempt read the same
value and pass; here each attempt increments first and learns its own number, so exactly
`limit` attempts get through a window however many arrive at once.
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import TooManyRequests

if TYPE_CHECKING:
    from redis.asyncio import Redis


@dataclass(frozen=True, slots=True)
class Limit:
    key: str
    limit: int
    window: int  # seconds, counted from the first attempt


async def hit(redis: "Redis", limit: Limit) -> tuple[int, int]:
    """Count one attempt; returns its number in the window and the seconds the window has left."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.incr(limit.key)
        pipe.expire(limit.key, limit.window, nx=True)
        pipe.ttl(limit.key)
        count, _, ttl = await pipe.execute()
    return int(count), max(int(ttl), 1)


async def enforce(redis: "Redis", *limits: Limit, error: type[TooManyRequests]) -> None:
    """Count one attempt against every limit; `error` (a 429, with the longest wait) if any is exceeded."""
    waits = [ttl for limit in limits for count, ttl in [await hit(redis, limit)] if count > limit.limit]
    if waits:
        raise error(retry_after=max(waits))


_UNDO = """
if redis.call('DECR', KEYS[1]) <= 0 then redis.call('DEL', KEYS[1]) end
return 1
"""


async def undo(redis: "Redis", limit: Limit) -> None:
    """Take back one counted attempt (the thing it counted did not happen after all)."""
    await redis.eval(_UNDO, 1, limit.key)  # type: ignore[misc]
