"""The two Redis clients of one REDIS_URL: the asyncio one and the authorizer's blocking one."""

from collections.abc import Iterator

import pytest

from multidb import redis, runtime
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
