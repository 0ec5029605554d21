"""The Redis clients, created on first use and reused for the container's life.

`get_redis()` is the asyncio client everything awaits. `get_blocking_redis()` is a
blocking one of the same URL for the authorizer's hot path: a decision whose grants are
cached is a single `MGET`, and a blocking round trip costs about half what the same one
costs through the event loop (no task, no loop iterations; `make bench` shows both).

Every asyncio client has a bounded pool (`REDIS_MAX_CONNECTIONS`; a caller waits up to
`REDIS_POOL_TIMEOUT` for a free connection, then fails as if Redis were unreachable), so
a burst of concurrent commands cannot open a connection each. Long-running processes (the
Socket.IO server) call `shrink()` now and then to close what has been idle for
`REDIS_IDLE_TIMEOUT`. A pooled connection the server closed is replaced at its next use.
"""

import asyncio
import time
from functools import lru_cache
from typing import TYPE_CHECKING, Any, cast

from .settings import get_settings

if TYPE_CHECKING:
    import redis
    from fakeredis import FakeServer
    from redis.asyncio import ConnectionPool, Redis


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


# Kept for one target: the authorizer's warm p50 of at most 0.3 ms (docs/benchmarks.md). Its
# decision took 0.28-0.45 ms through the event loop, 0.14-0.16 ms with this client.
def get_blocking_redis() -> "redis.Redis":
    """The shared blocking client of the current REDIS_URL; with `memory://`, it sees the
    stand-in `get_redis()` writes to."""
    return _blocking(get_settings().redis_url)


_made: "list[Redis]" = []  # what `close` closes
_others: "dict[tuple[str, bool, bool], Redis]" = {}  # `client_of`'s, by URL and kind
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
        client = bounded(url)
    _made.append(client)
    return client


def client_of(url: str, *, subscriber: bool = False, raw: bool = False) -> "Redis":
    """The process's client of another Redis URL (the broker's, say), bounded like
    `get_redis()`'s; a `subscriber` one waits for messages without a read timeout, a `raw`
    one answers bytes (python-socketio's manager expects them)."""
    if url.startswith("memory://"):
        return get_redis()
    key = (url, subscriber, raw)
    if key not in _others:
        options: dict[str, Any] = {"decode_responses": not raw}
        if subscriber:  # the 2 s read timeout would drop a subscription between messages
            options |= {"socket_timeout": None, "socket_keepalive": True, "health_check_interval": 15}
        _others[key] = bounded(url, **options)
        _made.append(_others[key])
    return _others[key]


def bounded(url: str, **options: Any) -> "Redis":
    """A new asyncio client of `url` with a bounded pool of its own (the caller closes it);
    `options` override the connection settings (`socket_timeout=None` for a subscriber)."""
    from redis.asyncio import Redis as Client
    from redis.asyncio.retry import Retry

    settings = get_settings()
    pool = _bounded_pool().from_url(
        url,
        max_connections=settings.redis_max_connections,
        timeout=settings.redis_pool_timeout,
        **{**_options(Retry), **options},
    )
    return Client.from_pool(pool)


async def shrink(idle: float | None = None) -> int:
    """Close the pooled connections idle for `idle` seconds (REDIS_IDLE_TIMEOUT), in every
    client made here; returns how many."""
    idle = get_settings().redis_idle_timeout if idle is None else idle
    closed = 0
    for client in list(_made):
        pool = getattr(client, "connection_pool", None)
        if isinstance(pool, _bounded_pool()):
            closed += await cast(Any, pool).shrink(idle)
    return closed


@lru_cache(maxsize=1)
def _bounded_pool() -> "type[ConnectionPool]":
    """The pool class, made on first use (redis.asyncio stays out of the authorizer's imports)."""
    from redis.asyncio import ConnectionPool
    from redis.asyncio.connection import AbstractConnection
    from redis.exceptions import ConnectionError

    class BoundedPool(ConnectionPool):
        """At most `max_connections` checked out; a caller waits its turn, first come first
        served, up to `timeout` seconds. (redis-py's BlockingConnectionPool lets a newcomer
        take a connection before a waiter it just woke: under a steady load some waiters
        starve past the timeout.) It remembers when each connection came back, to close
        idle ones."""

        def __init__(self, *, max_connections: int, timeout: float, **kwargs: Any) -> None:
            super().__init__(max_connections=max_connections, **kwargs)
            self.timeout = timeout
            self.turns = asyncio.Semaphore(max_connections)  # FIFO: no barging
            self.idle_since: dict[AbstractConnection, float] = {}

        async def get_connection(self, *args: Any, **kwargs: Any) -> AbstractConnection:
            try:
                async with asyncio.timeout(self.timeout):
                    await self.turns.acquire()
            except TimeoutError:
                raise ConnectionError("No connection available.") from None
            try:
                async with self._lock:
                    connection: AbstractConnection = self.get_available_connection()  # type: ignore[no-untyped-call]
            except BaseException:
                self.turns.release()
                raise
            try:
                await self.ensure_connection(connection)  # a connection Redis closed is reopened here
            except BaseException:
                await self.release(connection)  # and with it the turn
                raise
            return connection

        async def release(self, connection: AbstractConnection) -> None:
            self.idle_since[connection] = time.monotonic()
            try:
                await super().release(connection)
            finally:
                self.turns.release()

        async def shrink(self, idle: float) -> int:
            now = time.monotonic()
            # Taken out of the pool before any await: nobody can check one out meanwhile.
            stale = [c for c in self._available_connections if now - self.idle_since.get(c, now) >= idle]
            if not stale:
                return 0
            self._available_connections = [c for c in self._available_connections if c not in stale]
            for connection in stale:
                self.idle_since.pop(connection, None)
            await asyncio.gather(*(c.disconnect() for c in stale), return_exceptions=True)
            return len(stale)

    return BoundedPool


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
    _others.clear()
    _blocking.cache_clear()
    _memory.cache_clear()
    while _made_blocking:
        _made_blocking.pop().close()
    while _made:
        await _made.pop().aclose()
