"""The Celery app shared by the worker, beat and the tasks function.

    celery -A multidb.queue.app worker -P solo
    celery -A multidb.queue.app beat -S multidb.queue.scheduler:DatabaseScheduler

Creating the app opens no connection and reads no setting: its configuration is a promise
Celery evaluates on first use, so importing this module costs a Lambda nothing but the import.
"""

import inspect
import ssl
from typing import Any, cast

from celery import Celery, Task

from .. import logs, runtime
from ..settings import get_settings

log = logs.get_logger("queue")

# Custom headers: who started a run through the API (the worker tells them when it ends,
# and takes the run off their queued count), and whose schedule sent a run.
OWNER_HEADER = "multidb_owner"
SCHEDULE_OWNER_HEADER = "multidb_schedule_owner"
FINISHED_EVENT = "task:finished"


def sender() -> str | None:
    """The user on whose behalf the current task runs: who started it, or whose schedule sent it."""
    from celery import current_task

    request = getattr(current_task, "request", None)
    if request is None:
        return None
    owner = request.get(OWNER_HEADER) or request.get(SCHEDULE_OWNER_HEADER)
    return str(owner) if owner else None


def _config() -> dict[str, Any]:
    settings = get_settings()
    url = settings.message_broker_url
    in_process = url.startswith("memory://")  # tests and LOCAL only: settings refuse it in production
    # rediss:// (ElastiCache in transit): Celery refuses one without ssl_cert_reqs; verify the certificate.
    tls = {"ssl_cert_reqs": ssl.CERT_REQUIRED} if url.startswith("rediss://") else None
    return {
        "broker_url": "memory://" if in_process else url,
        "result_backend": "cache+memory://" if in_process else url,
        "broker_use_ssl": tls,
        "redis_backend_use_ssl": tls,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "timezone": "UTC",
        "enable_utc": True,
        "result_expires": settings.task_result_ttl,
        "task_track_started": True,
        # One task at a time per process and acknowledged when done: a worker that dies
        # mid-task leaves it on the queue instead of losing it.
        "worker_prefetch_multiplier": 1,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": {"visibility_timeout": 3600},
        "beat_refresh_interval": settings.beat_refresh_interval,
        "beat_full_reload_interval": settings.beat_full_reload_interval,
        # The app's own schedules: they run without anyone creating them.
        "beat_schedule": {
            "multidb.files.sweep": {"task": "multidb.files.sweep", "schedule": settings.files_sweep_interval},
        },
    }


class AsyncTask(Task):  # type: ignore[misc]
    """A task whose body may be `async def`; it runs on the process's one event loop.

    When the caller named an owner, the owner's Socket.IO room hears how the task ended.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        owner = self.request.get(OWNER_HEADER) or self.request.get(SCHEDULE_OWNER_HEADER)
        if owner:
            runtime.run(_still_permitted(str(owner), self.name))
        result = super().__call__(*args, **kwargs)
        if inspect.isawaitable(result):
            return runtime.run(_awaited(result))
        return result

    def before_start(self, task_id: str, args: Any, kwargs: Any) -> None:
        if not self.request.get(OWNER_HEADER):
            return
        from ..redis import get_redis
        from . import runs

        try:
            runtime.run(runs.started(get_redis(), task_id))
        except Exception as exc:  # a missed record must not fail the task
            log.warning("could not record the start of %s: %s", task_id, type(exc).__name__)

    def after_return(self, status: str, retval: Any, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        owner = self.request.get(OWNER_HEADER)
        if not owner:
            if scheduled_by := self.request.get(SCHEDULE_OWNER_HEADER):
                try:  # off the queued runs of the schedule's owner (beat counted it there)
                    runtime.run(_schedule_run_ended(str(scheduled_by), task_id))
                except Exception as exc:  # it stops counting after an hour anyway
                    log.warning("could not release run %s: %s", task_id, type(exc).__name__)
            return
        payload = {"taskId": task_id, "task": self.name, "state": status}
        try:
            runtime.run(_finished(str(owner), task_id, payload))
        except Exception as exc:  # a missed notification must not fail the task
            log.warning("could not announce task %s: %s", task_id, type(exc).__name__)


class RunRefused(Exception):
    """A run whose owner may no longer run its task: disabled, deleted, or the code taken away."""


async def _still_permitted(owner: str, task: str) -> None:
    """Check, as the run starts, that its owner may still run it: a schedule made by someone
    since disabled or stripped of `TASK:<task>` (or a run queued just before) does not run.
    Fails closed: when the grants cannot be read the run is refused too."""
    from ..rbac import cached_grants, permission_key, task_code, version_key
    from ..redis import get_redis

    redis = get_redis()
    try:
        cached, version = await redis.mget(permission_key(owner), version_key(owner))
        grants = await cached_grants(redis, owner, cast(str | None, cached), cast(str | None, version))
    except Exception as exc:
        raise RunRefused(f"the grants of {owner} could not be read ({type(exc).__name__})") from exc
    if grants is None or not grants.allows(task_code(task)):
        log.warning("run of %s refused: its owner %s may no longer run it", task, owner)
        raise RunRefused(f"the owner of this run may no longer run {task}")


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


async def _schedule_run_ended(owner: str, task_id: str) -> None:
    from ..redis import get_redis
    from . import budget

    await budget.ended(get_redis(), owner, task_id)


async def _finished(owner: str, task_id: str, payload: dict[str, Any]) -> None:
    """Take a run off its owner's queued count and tell the owner's sockets it ended."""
    from ..realtime import emit, user_room
    from ..redis import get_redis
    from . import budget, runs

    await budget.ended(get_redis(), owner, task_id)
    await runs.finished(get_redis(), task_id, str(payload["state"]))
    await emit(FINISHED_EVENT, payload, room=user_room(owner))


app = Celery("multidb", task_cls=AsyncTask, include=["multidb.queue.tasks"])
app.add_defaults(_config)
