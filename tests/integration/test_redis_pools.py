"""The asyncio clients' bounded pools, on the real Redis: a fair queue under load, connections
Redis closed replaced without an error, and idle ones closed."""

import asyncio
from collections.abc import Iterator

import pytest
import redis as redis_py

from multidb import redis, runtime
from tests.conftest import BROKER_URL, REDIS_URL, USE_REDIS
from tests.helpers import reset_clients

# Long enough that redis-py's own blocking pool starves some waiters past WAIT (measured: 70
# of 12,000 commands timed out at 1.5 s; none with ours), with WAIT far above a fair turn's
# wait even on a loaded machine (12 turns of a few milliseconds each).
BOUND, TASKS, COMMANDS = 5, 60, 200
WAIT = 1.5  # REDIS_POOL_TIMEOUT


@pytest.fixture
def bounded(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[redis_py.Redis, str]]:
    """A pool of BOUND, and a connection of the test's own to watch it."""
    if not USE_REDIS:
        pytest.skip("CLIENT LIST and CLIENT KILL need the real Redis")  # the first pass always has it
    monkeypatch.setenv("REDIS_MAX_CONNECTIONS", str(BOUND))
    monkeypatch.setenv("REDIS_POOL_TIMEOUT", str(WAIT))
    runtime.run(redis.close())
    reset_clients()
    with redis_py.Redis.from_url(REDIS_URL, decode_responses=True) as probe:
        yield probe, "multidb-pool-test"
    runtime.run(redis.close())
    monkeypatch.undo()
    reset_clients()


def named(probe: redis_py.Redis, name: str) -> list[dict[str, str]]:
    return [c for c in probe.client_list() if c["name"] == name]


def test_many_tasks_share_the_bound_fairly_and_survive_redis_closing_every_connection(
    bounded: tuple[redis_py.Redis, str],
) -> None:
    probe, name = bounded

    async def load() -> tuple[list[BaseException], int, int, int]:
        client = redis.bounded(REDIS_URL, client_name=name)
        errors: list[BaseException] = []
        most = 0

        async def work() -> None:
            nonlocal most
            for _ in range(COMMANDS):
                try:
                    await client.incr("pool-test")
                except Exception as exc:
                    errors.append(exc)
                most = max(most, len(client.connection_pool._in_use_connections))

        async def kill() -> None:
            for _ in range(3):  # a failover, mid-load, three times (each retried once: far apart)
                await asyncio.sleep(0.5)
                for connection in named(probe, name):  # only the pool's: a Redis may be shared
                    probe.client_kill_filter(_id=connection["id"])

        try:
            await asyncio.gather(kill(), *(work() for _ in range(TASKS)))
            # The work may end before the last kill (it takes about a second on a quiet
            # machine): commands enough to bring the pool's connections back, then what the
            # server still lists once the pool let its idle ones go.
            await asyncio.gather(*(client.incr("pool-test-after") for _ in range(2 * BOUND)))
            held = len(named(probe, name))
            await client.connection_pool.shrink(0)  # type: ignore[attr-defined]
            for _ in range(40):  # the server drops a closed socket's client within milliseconds
                if not named(probe, name):
                    break
                await asyncio.sleep(0.05)
            left = len(named(probe, name))
        finally:
            await client.aclose()
        return errors, most, held, left

    errors, most, held, left = runtime.run(load())
    # A first-come-first-served wait: nobody starves (with redis-py's own blocking pool,
    # newcomers barge in, and some of these wait past WAIT).
    assert sorted({f"{type(e).__name__}: {e}" for e in errors}) == []
    assert most <= BOUND
    assert probe.get("pool-test") == str(TASKS * COMMANDS)
    assert held >= 1
    assert left == 0  # shrink closed every idle connection, before `aclose` could
    probe.delete("pool-test", "pool-test-after")


def test_the_socketio_managers_lost_subscriptions_give_their_connections_back(
    bounded: tuple[redis_py.Redis, str],
) -> None:
    """python-socketio calls `_redis_connect` again each time its subscription fails: more
    times than the subscriber pool holds, and each new subscription still gets a connection."""
    from multidb.realtime import CHANNEL, manager

    async def resubscribe() -> int:
        socketio_manager = manager(BROKER_URL)
        # Channels are server-wide: a Socket.IO server another test left running counts too.
        socketio_manager._redis_connect()
        before: int = (await socketio_manager.redis.pubsub_numsub(CHANNEL))[0][1]
        for _ in range(BOUND + 3):
            socketio_manager._redis_connect()
            await socketio_manager.pubsub.subscribe(CHANNEL)
        subscribed: int = (await socketio_manager.redis.pubsub_numsub(CHANNEL))[0][1]
        await socketio_manager.pubsub.aclose()
        return subscribed - before

    assert runtime.run(resubscribe()) == 1  # the failed ones were closed, not left subscribed
