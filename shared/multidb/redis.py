"""The Redis client, created on first use and reused for the container's life."""

from functools import lru_cache
from typing import TYPE_CHECKING

from .settings import get_settings

if TYPE_CHECKING:
    from redis.asyncio import Redis


def get_redis() -> "Redis":
    """The shared client of the current REDIS_URL (a rotated one gets its own on first use);
    `memory://` selects an in-process stand-in (not in production)."""
    return _redis(get_settings().redis_url)


_made: "list[Redis]" = []  # what `close` closes


@lru_cache(maxsize=1)
def _redis(url: str) -> "Redis":
    if url.startswith("memory://"):
        import fakeredis

        client: Redis = fakeredis.FakeAsyncRedis(decode_responses=True)
    else:
        from redis.asyncio import Redis as Client

        client = Client.from_url(
            url,
            decode_responses=True,
            socket_connect_timeout=2,
            socket_timeout=2,
            health_check_interval=30,
        )
    _made.append(client)
    return client


async def close() -> None:
    """Close the client's connections and forget it; the next `get_redis()` makes a new one
    (SnapStart: no socket may be in the snapshot)."""
    _redis.cache_clear()
    while _made:
        await _made.pop().aclose()
