"""Each user's budget of task runs: runs started per minute (`TASK_RUNS_PER_MINUTE`) and runs
queued or running at once (`TASK_RUNS_QUEUED`). Runs a user starts through the API and runs
their schedules fire draw on the same budget, so the load one user puts on the workers is
bounded whichever way the runs come.

    tasks:rate:<user_id>     runs started in the current minute (a counter, see throttle)
    tasks:queued:<user_id>   runs queued or running: task ids scored by when they are due

A run is counted before it is sent and taken back if it never is; the worker takes it off
the queued set when it ends. A run a worker lost (acks-late redelivers within the broker's
visibility timeout) stops counting an hour after it was due. Imports nothing of Celery.
"""

import time
from typing import TYPE_CHECKING

from ..errors import TooManyRequests
from ..keyspace import Keys
from ..security.throttle import Limit, enforce, undo
from ..settings import get_settings

if TYPE_CHECKING:
    from redis.asyncio import Redis

STALE_RUN_SECONDS = 3600  # the broker's visibility timeout: a run older than this was lost


class TooManyTaskRuns(TooManyRequests, error="too_many_task_runs", message="too many task runs; try again later"):
    """Runs one user started in the last minute (`TASK_RUNS_PER_MINUTE`)."""


class TooManyQueuedRuns(
    TooManyRequests,
    error="too_many_queued_runs",
    message="too many of your task runs are waiting; try again when they finish",
):
    """Runs of one user queued or running (`TASK_RUNS_QUEUED`)."""


queued_key = Keys("tasks:queued")  # (user id): the user's runs queued or running, by when due
rate_key = Keys("tasks:rate")  # (user id): the runs the user started this minute


def rate_limit(user_id: str) -> Limit:
    return Limit(rate_key(user_id), get_settings().task_runs_per_minute, 60)


async def admit(redis: "Redis", user_id: str, task_id: str, due: float) -> None:
    """Count a run against its owner's budget, or raise TooManyRequests (nothing counted)."""
    settings = get_settings()
    await enforce(redis, rate_limit(user_id), error=TooManyTaskRuns)
    key = queued_key(user_id)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.zremrangebyscore(key, "-inf", time.time() - STALE_RUN_SECONDS)
        pipe.zadd(key, {task_id: due})
        pipe.zcard(key)
        pipe.expire(key, settings.task_result_ttl + STALE_RUN_SECONDS)
        _, _, queued, _ = await pipe.execute()
    if queued > settings.task_runs_queued:
        await release(redis, user_id, task_id)
        raise TooManyQueuedRuns(retry_after=30)


async def release(redis: "Redis", user_id: str, task_id: str) -> None:
    """Take back a run admitted but never sent: off the queued set and the minute's count."""
    await redis.zrem(queued_key(user_id), task_id)
    await undo(redis, rate_limit(user_id))


async def ended(redis: "Redis", user_id: str, task_id: str) -> None:
    """A run ended (or was refused): it no longer counts as queued."""
    await redis.zrem(queued_key(user_id), task_id)
