"""The runs users start through the API: who started what, when it was queued, started and
finished, and how it ended — what `GET /api/v1/tasks/runs` lists. The tasks function writes
a run when it queues it; the worker writes its start and end.

    tasks:run:<task_id>                      hash: owner, task, queued_at, started_at, finished_at, state
    tasks:runs                               everyone's runs, by the time they were queued (a sorted set)
    tasks:runs:user:<user_id>                one user's
    tasks:runs:task:<name>                   one task's
    tasks:runs:user-task:<user_id>:<name>    one user's runs of one task

Every filter a page can take has its own index, so a page reads the page's runs and no
other (one ZREVRANGE, one HGETALL per run shown, one ZCARD), however many runs the caller
has. A run enters all four indexes in the transaction that writes its record, and leaves
them together when it is taken back.

A run's record lives as long as its result (TASK_RESULT_TTL, plus its countdown). An index
keeps a run until every run queued at that moment has surely gone (TASK_RESULT_TTL plus the
longest countdown); a page of one index drops from it (and from the other indexes it knows
the run is in) the runs whose records have expired and reads again, so a count can include
such runs until a page has passed over them. Only this module knows these keys; it imports
nothing of Celery.
"""

import time
from typing import TYPE_CHECKING, cast

from ..keyspace import Keys
from ..settings import get_settings

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.client import Pipeline

ALL = Keys("tasks:runs")()  # everyone's runs, by when queued
MAX_COUNTDOWN = 24 * 3600  # the longest delay a run may be queued with (seconds)


run_key = Keys("tasks:run")  # (task id): one run's record
user_key = Keys("tasks:runs:user")  # (user id): the user's runs, by when queued
task_key = Keys("tasks:runs:task")  # (task name): the runs of one task, by when queued
user_task_key = Keys("tasks:runs:user-task")  # (user id, task name): one user's runs of one task


def indexes(owner: str, task: str) -> tuple[str, ...]:
    """Every index a run of `owner` and `task` is in."""
    return ALL, user_key(owner), task_key(task), user_task_key(owner, task)


def write(pipe: "Pipeline", task_id: str, owner: str, task: str, countdown: int = 0, now: float | None = None) -> None:
    """Queue on `pipe` the writes that record a run: its record and its place in every index."""
    if not 0 <= countdown <= MAX_COUNTDOWN:
        raise ValueError(f"countdown must be 0 to {MAX_COUNTDOWN} s")
    now = time.time() if now is None else now
    ttl = get_settings().task_result_ttl
    kept = ttl + MAX_COUNTDOWN  # no record queued before now - kept is still there
    pipe.hset(run_key(task_id), mapping={"owner": owner, "task": task, "queued_at": now, "state": "PENDING"})
    pipe.expire(run_key(task_id), ttl + countdown)
    for index in indexes(owner, task):
        pipe.zremrangebyscore(index, "-inf", now - kept)
        pipe.zadd(index, {task_id: now})
        pipe.expire(index, kept)


async def queued(
    redis: "Redis", task_id: str, owner: str, task: str, countdown: int = 0, now: float | None = None
) -> None:
    async with redis.pipeline(transaction=True) as pipe:
        write(pipe, task_id, owner, task, countdown, now)
        await pipe.execute()


async def forget(redis: "Redis", task_id: str, owner: str, task: str) -> None:
    """Take back a run that never reached the queue."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.delete(run_key(task_id))
        for index in indexes(owner, task):
            pipe.zrem(index, task_id)
        await pipe.execute()


async def _mark(redis: "Redis", task_id: str, fields: dict[str, str | float]) -> None:
    if await redis.exists(run_key(task_id)):  # only runs the API started have a record
        await redis.hset(run_key(task_id), mapping=fields)  # type: ignore[misc,arg-type]


async def started(redis: "Redis", task_id: str) -> None:
    await _mark(redis, task_id, {"started_at": time.time(), "state": "STARTED"})


async def finished(redis: "Redis", task_id: str, state: str) -> None:
    await _mark(redis, task_id, {"finished_at": time.time(), "state": state})


async def get(redis: "Redis", task_id: str) -> dict[str, str] | None:
    found = cast(dict[str, str], await redis.hgetall(run_key(task_id)))  # type: ignore[misc]
    return found or None


async def page(
    redis: "Redis", number: int, size: int, *, user: str | None = None, task: str | None = None
) -> tuple[list[tuple[str, dict[str, str]]], int]:
    """One page of runs, newest first, and how many there are, from the index of the filter:
    O(page) whatever the number of runs."""
    index = user_task_key(user, task) if user and task else user_key(user) if user else task_key(task) if task else ALL
    holding = {index, ALL, *([user_key(user)] if user else []), *([task_key(task)] if task else [])}
    start = (number - 1) * size
    while True:
        async with redis.pipeline(transaction=False) as pipe:
            pipe.zrevrange(index, start, start + size - 1)
            pipe.zcard(index)
            ids, total = cast(tuple[list[str], int], tuple(await pipe.execute()))
        found, gone = await _records(redis, ids)
        if not gone:
            return found, int(total)
        # Expired runs leave the index (and the others known to hold them), and the page is
        # read again from what is left, so the next page starts right after this one's last
        # run (none is skipped).
        async with redis.pipeline(transaction=True) as pipe:
            for key in sorted(holding):
                pipe.zrem(key, *gone)
            await pipe.execute()


async def _records(redis: "Redis", ids: list[str]) -> tuple[list[tuple[str, dict[str, str]]], list[str]]:
    """The runs whose records are still there, and the ids of those whose records expired."""
    async with redis.pipeline(transaction=False) as pipe:
        for task_id in ids:
            pipe.hgetall(run_key(task_id))
        found = await pipe.execute()
    pairs = list(zip(ids, found, strict=True))
    return [(task_id, run) for task_id, run in pairs if run], [task_id for task_id, run in pairs if not run]
