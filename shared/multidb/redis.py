"""The Redis client, created on first use and reused for the container's life."""

from functools import lru_cache
from typing import TYPE_CHECKING

from .settings import get_settings

if TYPE_CHECKING:
    from redis.asyncio import Redis


@lru_cache
def get_redis() -> "Redis":
    """Return the shared client; `memory://` selects an in-process stand-in (not in production)."""
    settings = get_settings()
    if settings.redis_url.startswith("memory://"):
        import fakeredis

        return fakeredis.FakeAsyncRedis(decode_responses=True)
    from redis.asyncio import Redis

    return Redis.from_url(
        settings.redis_url,
        decode_responses=True,
        socket_connect_timeout=2,
        socket_timeout=2,
        health_check_interval=30,
    )
