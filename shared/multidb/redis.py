"""The Redis clients, created on first use and reused for the container's life.

`get_redis()` is the asyncio client everything awaits. `get_blocking_redis()` is a
blocking one of the same URL for the authorizer's hot path: a decision whose grants are
cached is a single `MGET`, and a blocking round trip costs about half what the same one
costs through the event loop (no task, no loop iterations; `make bench` shows both).
"""

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from .settings import get_settings

if TYPE_CHECKING:
    import redis
    from fakeredis import FakeServer
    from redis.asyncio import Redis


def _options(retry: Any) -> dict[str, Any]:
    import redis
    from redis.backoff import NoBackoff
    from redis.driver_info import DriverInfo
    from redis.exceptions import ConnectionError

    return {
        "decode_responses": True,
        "socket_connect_timeout": 2,
        "socket_timeout": 2,
        "health_check_interval": 30,
        # A connection the server closed (a restart, a failover, an idle timeout) shows at its
        # next use: one immediate try on a new one. Never on a timeout: a server that does not
        # answer stays a 2 s failure, not several.
        "retry": retry(NoBackoff(), 1, supported_errors=(ConnectionError,)),
        # Its version, given: redis-py would otherwise look itself up among every installed
        # distribution's metadata on its first connection (milliseconds of each cold start).
        "driver_info": DriverInfo(lib_version=redis.__version__),
    }


def get_redis() -> "Redis":
    """The shared client of the current REDIS_URL (a rotated one gets its own on first use);
    `memory://` selects an in-process stand-in (not in production)."""
    return _redis(get_settings().redis_url)


def get_blocking_redis() -> "redis.Redis":
    """The shared blocking client of the current REDIS_URL; with `memory://`, it sees the
    stand-in `get_redis()` writes to."""
    return _blocking(get_settings().redis_url)


_made: "list[Redis]" = []  # what `close` closes
_made_blocking: "list[redis.Redis]" = []


@lru_cache(maxsize=1)
def _memory(url: str) -> "FakeServer":
    import fakeredis

    return fakeredis.FakeServer()


@lru_cache(maxsize=1)
def _redis(url: str) -> "Redis":
    if url.startswith("memory://"):
        import fakeredis

        client: Redis = fakeredis.FakeAsyncRedis(server=_memory(url), decode_responses=True)
    else:
        from redis.asyncio import Redis as Client
        from redis.asyncio.retry import Retry

        client = Client.from_url(url, **_options(Retry))
    _made.append(client)
    return client


@lru_cache(maxsize=1)
def _blocking(url: str) -> "redis.Redis":
    while _made_blocking:  # one made for a URL rotated since
        _made_blocking.pop().close()
    if url.startswith("memory://"):
        import fakeredis

        client: redis.Redis = fakeredis.FakeRedis(server=_memory(url), decode_responses=True)
    else:
        from redis import Redis as Client
        from redis.retry import Retry

        client = Client.from_url(url, **_options(Retry))
    _made_blocking.append(client)
    return client


async def close() -> None:
    """Close the clients' connections and forget them (and the in-process stand-in's data);
    the next `get_redis()` makes a new one (SnapStart: no socket may be in the snapshot)."""
    _redis.cache_clear()
    _blocking.cache_clear()
    _memory.cache_clear()
    while _made_blocking:
        _made_blocking.pop().close()
    while _made:
        await _made.pop().aclose()
