"""The two Redis clients of one REDIS_URL: the asyncio one and the authorizer's blocking one."""

from collections.abc import Iterator

import pytest
import redis as redis_py

from multidb import redis, runtime
from tests.conftest import REDIS_URL, USE_REDIS
from tests.helpers import reset_clients


@pytest.fixture
def in_process(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("REDIS_URL", "memory://")
    reset_clients()
    yield
    runtime.run(redis.close())
    monkeypatch.undo()
    reset_clients()


def test_the_blocking_client_sees_what_the_asyncio_one_writes_in_process(in_process: None) -> None:
    runtime.run(redis.get_redis().set("shared", "yes"))
    assert redis.get_blocking_redis().mget("shared", "other") == ["yes", None]
    assert redis.get_blocking_redis() is redis.get_blocking_redis()  # one client, reused


def test_close_forgets_both_clients_and_what_the_stand_in_held(in_process: None) -> None:
    before = redis.get_redis(), redis.get_blocking_redis()
    runtime.run(before[0].set("kept", "no"))
    runtime.run(redis.close())
    after = redis.get_redis(), redis.get_blocking_redis()
    assert all(new is not old for new, old in zip(after, before, strict=True))
    assert after[1].get("kept") is None
    assert runtime.run(after[0].get("kept")) is None


@pytest.fixture
def real() -> Iterator[redis_py.Redis]:
    """The suite's Redis, and a connection of the test's own to watch the clients from."""
    if not USE_REDIS:
        pytest.skip("CLIENT KILL and CLIENT LIST need the real Redis")  # the first pass always has it
    runtime.run(redis.close())
    with redis_py.Redis.from_url(REDIS_URL, decode_responses=True) as probe:
        yield probe
    runtime.run(redis.close())


def test_close_disconnects_the_blocking_clients_connection(real: redis_py.Redis) -> None:
    connection = redis.get_blocking_redis().client_id()
    assert real.execute_command("CLIENT", "LIST", "ID", connection) != ""
    runtime.run(redis.close())
    assert real.execute_command("CLIENT", "LIST", "ID", connection) == ""


def test_a_connection_the_server_closed_is_replaced_at_its_next_use(real: redis_py.Redis) -> None:
    """A failover or a restart closes every connection: the next command of either client
    runs on a new one instead of failing (the authorizer's asyncio client idles between
    cache misses)."""
    blocking, asyncio_client = redis.get_blocking_redis(), redis.get_redis()
    first = blocking.client_id(), runtime.run(asyncio_client.client_id())
    for connection in first:
        assert real.client_kill_filter(_id=connection) == 1
    assert blocking.mget("absent") == [None]
    assert runtime.run(asyncio_client.mget("absent")) == [None]
    second = blocking.client_id(), runtime.run(asyncio_client.client_id())
    assert all(new != old for new, old in zip(second, first, strict=True))
