"""Task rules: only registered tasks, arguments that fit them, runs visible to whoever started them.

Celery is imported by the calls that need it, not at cold start: listing, reading and
deleting schedules never load it.
"""

import inspect
import json
import uuid
from functools import partial
from typing import TYPE_CHECKING, Any

from anyio import to_thread
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from multidb import logs
from multidb.authz import Principal
from multidb.errors import InvalidInput, NotFound, ServiceUnavailable
from multidb.models import PeriodicTask
from multidb.repository import Repository, keyword_filter
from multidb.settings import get_settings

from .schemas import ScheduleCreate, ScheduleUpdate, TaskInfo, TaskRunCreate, TaskRunPublic

if TYPE_CHECKING:
    from celery import Task
    from redis.asyncio import Redis

log = logs.get_logger("tasks")

MAX_ARGUMENT_BYTES = 16 * 1024


def run_key(task_id: str) -> str:
    """Who started a run and what it runs, kept as long as its result."""
    return f"tasks:run:{task_id}"


class ScheduleRepository(Repository[PeriodicTask]):
    model = PeriodicTask
    conflict_message = "a schedule with this name already exists"
    not_found_message = "schedule not found"


def registered() -> dict[str, "Task"]:
    """The tasks a caller may run or schedule: every registered task but Celery's own."""
    from multidb.queue import tasks  # noqa: F401  (registers them)
    from multidb.queue.app import app

    return {name: task for name, task in sorted(app.tasks.items()) if not name.startswith("celery.")}


def describe(task: "Task") -> TaskInfo:
    summary = (inspect.getdoc(task.run) or "").strip().splitlines()
    signature = f"{task.name}{inspect.signature(task.run)}"
    return TaskInfo(name=task.name, description=f"{signature}: {summary[0]}" if summary else signature)


def task_for(name: str, args: list[Any], kwargs: dict[str, Any]) -> "Task":
    """The registered task `name`, after checking that the arguments fit its signature."""
    task = registered().get(name)
    if task is None:
        raise InvalidInput("unknown task: GET /api/v1/tasks lists the ones there are")
    if len(json.dumps([args, kwargs])) > MAX_ARGUMENT_BYTES:
        raise InvalidInput(f"the arguments exceed {MAX_ARGUMENT_BYTES} bytes of JSON")
    try:
        inspect.signature(task.run).bind(*args, **kwargs)
    except TypeError as exc:
        raise InvalidInput(f"the arguments do not fit {name}{inspect.signature(task.run)}") from exc
    return task


async def start(redis: "Redis", principal: Principal, body: TaskRunCreate) -> TaskRunPublic:
    """Queue a run of a task; its owner hears `task:finished` on Socket.IO when it ends."""
    from multidb.queue.app import OWNER_HEADER

    task = task_for(body.task, body.args, body.kwargs)
    task_id = str(uuid.uuid4())
    owner = json.dumps({"owner": principal.user_id, "task": task.name})
    await redis.set(run_key(task_id), owner, ex=get_settings().task_result_ttl + body.countdown)
    send = partial(
        task.apply_async,
        body.args,
        body.kwargs,
        task_id=task_id,
        countdown=body.countdown or None,
        headers={OWNER_HEADER: principal.user_id},
    )
    try:
        await to_thread.run_sync(send)
    except Exception as exc:
        await redis.delete(run_key(task_id))
        log.error("could not queue %s: %s", task.name, type(exc).__name__)
        raise ServiceUnavailable("the task queue is unavailable") from exc
    return TaskRunPublic(task_id=task_id, task=task.name, state="PENDING")


async def status(redis: "Redis", principal: Principal, task_id: uuid.UUID) -> TaskRunPublic:
    """A run's state and result; another user's run does not exist for the caller (admins see all)."""
    stored = await redis.get(run_key(str(task_id)))
    run = json.loads(stored) if stored else None
    if run is None or (run["owner"] != principal.user_id and not principal.admin):
        raise NotFound("task run not found")
    from multidb.queue.app import app

    try:
        meta = await to_thread.run_sync(app.backend.get_task_meta, str(task_id))
    except Exception as exc:
        log.error("could not read the result of %s: %s", task_id, type(exc).__name__)
        raise ServiceUnavailable("task results are unavailable") from exc
    state = str(meta.get("status", "PENDING"))
    result = meta.get("result")
    if isinstance(result, BaseException):
        # The type says what went wrong; the message may hold internals, so it stays in the worker's log.
        return TaskRunPublic(task_id=str(task_id), task=run["task"], state=state, error=type(result).__name__)
    finished = state == "SUCCESS"
    return TaskRunPublic(task_id=str(task_id), task=run["task"], state=state, result=result if finished else None)


def schedule_filters(enabled: bool | None, keyword: str | None) -> list[Any]:
    return [
        None if enabled is None else col(PeriodicTask.enabled) == enabled,
        keyword_filter(keyword, PeriodicTask.name, PeriodicTask.task),
    ]


def _check_schedule(row: PeriodicTask) -> None:
    task_for(row.task, row.args, row.kwargs)
    if row.crontab is not None:
        from multidb.queue.scheduler import parse_crontab

        try:
            parse_crontab(row.crontab)
        except ValueError as exc:
            raise InvalidInput(f"invalid crontab: {exc}") from exc


async def create_schedule(session: AsyncSession, body: ScheduleCreate) -> PeriodicTask:
    row = PeriodicTask(**body.model_dump())
    _check_schedule(row)
    row = await ScheduleRepository(session).create(row)
    await session.commit()
    return row


async def update_schedule(session: AsyncSession, schedule_id: uuid.UUID, body: ScheduleUpdate) -> PeriodicTask:
    schedules = ScheduleRepository(session)
    row = await schedules.require(schedule_id)
    changes = body.model_dump(exclude_unset=True)
    if "crontab" in changes:
        changes["interval_seconds"] = None
    if "interval_seconds" in changes:
        changes.setdefault("crontab", None)
    candidate = PeriodicTask(**{**row.model_dump(), **changes})
    _check_schedule(candidate)
    row = await schedules.update(row, changes)
    await session.commit()
    return row


async def delete_schedule(session: AsyncSession, schedule_id: uuid.UUID) -> None:
    schedules = ScheduleRepository(session)
    row = await schedules.require(schedule_id)
    await schedules.delete(row)
    await session.commit()
