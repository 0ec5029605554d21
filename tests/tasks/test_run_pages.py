"""GET /api/v1/tasks/runs reads a page from the index of its filter: the Redis commands and the
time a page costs do not grow with the caller's number of runs, filtered or not."""

import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from redis.asyncio.client import Pipeline, Redis

from multidb import runtime
from multidb.queue import runs
from multidb.redis import get_redis
from tests.helpers import Api, create_user

RUNS = "/api/v1/tasks/runs"
MANY = 20_000
RARE_EVERY = 20  # one run in 20 is of the rare task: 1,000 of 20,000
COMMON, RARE = "multidb.ping", "multidb.add"
PAGE = 10


@contextmanager
def counted() -> Iterator[Counter[str]]:
    """Count the commands sent to Redis (alone or in pipelines) by name, whatever the server."""
    sent: Counter[str] = Counter()
    execute_command, execute = Redis.execute_command, Pipeline.execute

    async def one(self: Redis, *args: Any, **options: Any) -> Any:
        sent[str(args[0]).upper()] += 1
        return await execute_command(self, *args, **options)

    async def many(self: Pipeline, raise_on_error: bool = True) -> Any:
        for args, _ in self.command_stack:
            sent[str(args[0]).upper()] += 1
        return await execute(self, raise_on_error)

    Redis.execute_command, Pipeline.execute = one, many  # type: ignore[method-assign]
    try:
        yield sent
    finally:
        Redis.execute_command, Pipeline.execute = execute_command, execute  # type: ignore[method-assign]


def run_id(number: int) -> str:
    return f"run-{number:05d}"


def task_of(number: int) -> str:
    return RARE if number % RARE_EVERY == 0 else COMMON


async def _seed(owner: str) -> None:
    """Runs queued a millisecond apart, as the tasks function records them (`runs.write`), but
    in bulk: each record in a pipeline, each index in one ZADD."""
    redis, start, ttl = get_redis(), time.time() - MANY / 1000, 3600
    members: dict[str, dict[str, float]] = {}
    async with redis.pipeline(transaction=False) as pipe:
        for number in range(MANY):
            task, queued_at = task_of(number), start + number / 1000
            record = {"owner": owner, "task": task, "queued_at": queued_at, "state": "PENDING"}
            pipe.hset(runs.run_key(run_id(number)), mapping=record)
            pipe.expire(runs.run_key(run_id(number)), ttl)
            for index in runs.indexes(owner, task):
                members.setdefault(index, {})[run_id(number)] = queued_at
        for index, scores in members.items():
            pipe.zadd(index, scores)
        await pipe.execute()


@pytest.fixture
def many_runs(api: Api) -> tuple[str, str]:
    """A user with 20,000 runs (1,000 of them of the rare task), and their token."""
    owner = create_user("busy", "busy-password", codes=(f"GET:{RUNS}",))
    runtime.run(_seed(owner))
    return owner, api.login("busy", "busy-password").access


def page_of(api: Api, token: str, query: str) -> dict[str, Any]:
    response = api.get(f"{RUNS}?{query}", token=token)
    assert response.status_code == 200, response.body
    page: dict[str, Any] = response.json()["data"]
    return page


def ids(page: dict[str, Any]) -> list[str]:
    return [run["taskId"] for run in page["records"]]


def test_a_page_reads_the_pages_runs_only_filtered_or_not(api: Api, many_runs: tuple[str, str]) -> None:
    """Counted in Redis commands, not timed: a page of either kind reads its own runs' records
    and a bounded few keys more, whatever the number of runs."""
    _, token = many_runs
    for query in (f"pageSize={PAGE}", f"pageSize={PAGE}&task={RARE}"):
        page_of(api, token, query)  # warm: the caller's grants cached as on any later request
        with counted() as sent:
            page = page_of(api, token, query)
        assert len(page["records"]) == PAGE
        assert sent["HGETALL"] == PAGE, sent  # one record read per run shown, none other
        assert sum(sent.values()) <= PAGE + 15, sent  # the page, the index and the caller's checks


def test_pages_of_a_task_are_newest_first_counted_and_contiguous(api: Api, many_runs: tuple[str, str]) -> None:
    _, token = many_runs
    rare = [run_id(n) for n in reversed(range(MANY)) if task_of(n) == RARE]
    first = page_of(api, token, f"pageSize=100&task={RARE}")
    second = page_of(api, token, f"pageSize=100&page=2&task={RARE}")
    last = page_of(api, token, f"pageSize=75&page=14&task={RARE}")
    assert (first["total"], second["total"]) == (len(rare), len(rare)) == (1_000, 1_000)
    assert ids(first) + ids(second) == rare[:200]  # newest first, no gap, no repeat
    assert ids(last) == rare[975:]  # the last page holds the 25 left
    assert {run["task"] for run in first["records"]} == {RARE}
    everything = page_of(api, token, "pageSize=50&page=3")
    assert everything["total"] == MANY
    assert ids(everything) == [run_id(n) for n in reversed(range(MANY))][100:150]


def test_expired_runs_leave_every_index_a_page_finds_them_in(api: Api, many_runs: tuple[str, str]) -> None:
    owner, token = many_runs
    newest_rare = [run_id(n) for n in reversed(range(MANY)) if task_of(n) == RARE][:3]
    redis = get_redis()
    runtime.run(redis.delete(*(runs.run_key(task_id) for task_id in newest_rare[:2])))  # their records expired

    page = page_of(api, token, f"pageSize=5&task={RARE}")
    assert ids(page)[0] == newest_rare[2]
    assert page["total"] == 998
    for index in (runs.user_task_key(owner, RARE), runs.user_key(owner), runs.task_key(RARE), runs.ALL):
        assert runtime.run(redis.zscore(index, newest_rare[0])) is None, index
    assert page_of(api, token, "pageSize=1")["total"] == MANY - 2
