"""Task rules: only registered tasks the caller holds the code of, arguments that fit them,
per-user limits, and runs and schedules visible to their owners (and admins).

Celery is imported by the calls that need it, not at cold start: listing, reading and
deleting schedules never load it.
"""

import inspect
import json
import re
import time
import uuid
from datetime import UTC, datetime
from functools import lru_cache, partial
from typing import TYPE_CHECKING, Any, cast, get_args, get_type_hints

from anyio import to_thread
from pydantic import PydanticUserError, TypeAdapter, ValidationError
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from multidb import audit, broker, logs
from multidb.authz import Principal
from multidb.clock import as_utc
from multidb.errors import Forbidden, InvalidInput, NotFound, ServiceUnavailable, TooManyRequests
from multidb.models import PeriodicTask
from multidb.queue import budget, runs
from multidb.rbac import task_code
from multidb.repository import ScheduleNotFound, ScheduleRepository, keyword_filter
from multidb.settings import get_settings

from .schemas import (
    JsonType,
    ParameterKind,
    QueueDepth,
    ScheduleCreate,
    ScheduleUpdate,
    TaskInfo,
    TaskParameter,
    TaskQueueStatus,
    TaskRunCreate,
    TaskRunPublic,
)

if TYPE_CHECKING:
    from celery import Task
    from redis.asyncio import Redis

log = logs.get_logger("tasks")

MAX_ARGUMENT_BYTES = 16 * 1024


class UnknownTask(
    InvalidInput, error="unknown_task", message="unknown task: GET /api/v1/tasks lists the ones there are"
):
    """No registered task has this name."""


class BadTaskArguments(InvalidInput, error="bad_task_arguments"):
    """The arguments do not fit the task's signature or types (`data` names them)."""


class TaskArgumentsTooLarge(
    InvalidInput, error="task_arguments_too_large", message=f"the arguments exceed {MAX_ARGUMENT_BYTES} bytes of JSON"
):
    """The arguments exceed 16 KiB of JSON."""


class InvalidCrontab(InvalidInput, error="invalid_crontab"):
    """A crontab that does not parse."""


class TaskNotGranted(Forbidden, error="task_not_granted"):
    """Running or scheduling a task without its `TASK:<name>` code."""


class TaskRunNotFound(NotFound, error="task_run_not_found", message="task run not found"):
    """No such run, or another user's."""


class TooManySchedules(TooManyRequests, error="too_many_schedules"):
    """Schedules one user owns (`SCHEDULES_PER_USER`)."""


class TaskQueueUnavailable(ServiceUnavailable, error="task_queue_unavailable", message="the task queue is unavailable"):
    """The broker refused or could not be reached; nothing was queued."""


class TaskResultsUnavailable(
    ServiceUnavailable, error="task_results_unavailable", message="task results are unavailable"
):
    """The result backend could not be read."""


def registered() -> dict[str, "Task"]:
    """The tasks a caller may run or schedule: every registered task but Celery's own."""
    from multidb.queue import tasks  # noqa: F401  (registers them)
    from multidb.queue.app import app

    return {name: task for name, task in sorted(app.tasks.items()) if not name.startswith("celery.")}


def describe(task: "Task") -> TaskInfo:
    summary = (inspect.getdoc(task.run) or "").strip().splitlines()
    signature = f"{task.name}{inspect.signature(task.run)}"
    return TaskInfo(
        name=task.name,
        description=f"{signature}: {summary[0]}" if summary else signature,
        parameters=parameters(task),
    )


JSON_TYPES: tuple[str, ...] = get_args(JsonType)


def parameters(task: "Task") -> list[TaskParameter]:
    """The task function's parameters, each with the JSON type its annotation names (as pydantic's
    JSON schema of it says, the schema check_arguments validates against)."""
    hints = get_type_hints(task.run)
    found = []
    for parameter in inspect.signature(task.run).parameters.values():
        json_type, nullable, enum = _json_type(_schema(hints.get(parameter.name, Any)))
        if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            json_type, nullable, enum = "array", False, None  # the annotation types each item
        elif parameter.kind is inspect.Parameter.VAR_KEYWORD:
            json_type, nullable, enum = "object", False, None
        has_default = parameter.default is not inspect.Parameter.empty
        variadic = parameter.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        found.append(
            TaskParameter(
                name=parameter.name,
                type=cast(JsonType | None, json_type),
                required=not (has_default or variadic),
                default=_json_or_none(parameter.default) if has_default else None,
                nullable=nullable,
                enum=enum,
                kind=cast(ParameterKind, parameter.kind.name.lower()),  # POSITIONAL_ONLY: positional_only
            )
        )
    return found


def _schema(hint: Any) -> dict[str, Any]:
    try:
        return _adapter(hint).json_schema()
    except PydanticUserError:  # a type with no JSON schema: any value, as far as a form can tell
        return {}


def _json_type(schema: dict[str, Any]) -> tuple[str | None, bool, list[Any] | None]:
    """A JSON schema's one type (None for several, or any), whether null is allowed, and its values."""
    options = schema.get("anyOf", [schema])
    nullable = any(option.get("type") == "null" for option in options)
    rest = [option for option in options if option.get("type") != "null"]
    if len(rest) != 1:
        return None, nullable, None
    (only,) = rest
    enum = only.get("enum", [only["const"]] if "const" in only else None)
    json_type = only.get("type")
    if json_type is None and ("$ref" in only or "properties" in only):
        json_type = "object"  # a model
    return (json_type if json_type in JSON_TYPES else None), nullable, enum


def _json_or_none(value: object) -> Any:
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError):
        return None


def check_arguments(task: "Task", args: list[Any], kwargs: dict[str, Any]) -> None:
    """Arguments must fit the task's signature, each of the type its annotation names (JSON, strict)."""
    signature = inspect.signature(task.run)
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError as exc:
        # inspect names the parameter at fault ("missing a required argument: 'y'"): a form shows it there
        named = re.search(r"'(\w+)'", str(exc))
        fields = {named.group(1): str(exc)} if named else None
        raise BadTaskArguments(f"the arguments do not fit {task.name}{signature}", fields=fields) from exc
    hints = get_type_hints(task.run)
    problems = {}
    for name, value in bound.arguments.items():
        if name in hints:
            try:
                _adapter(hints[name]).validate_python(value, strict=True)
            except ValidationError as exc:
                problems[name] = exc.errors()[0]["msg"]
    if problems:
        raise BadTaskArguments(f"the arguments do not fit {task.name}{signature}", fields=problems)


@lru_cache(maxsize=128)
def _adapter(hint: Any) -> TypeAdapter[Any]:
    return TypeAdapter(hint)


def task_for(principal: Principal, name: str, args: list[Any], kwargs: dict[str, Any]) -> "Task":
    """The registered task `name`, if the caller may run it and the arguments fit it."""
    task = registered().get(name)
    if task is None:
        raise UnknownTask()
    if not principal.holds([task_code(task.name)]):
        raise TaskNotGranted(f"running {task.name} needs the permission {task_code(task.name)}")
    if len(json.dumps([args, kwargs])) > MAX_ARGUMENT_BYTES:
        raise TaskArgumentsTooLarge()
    check_arguments(task, args, kwargs)
    return task


async def start(redis: "Redis", principal: Principal, body: TaskRunCreate) -> TaskRunPublic:
    """Queue a run of a task; its owner hears `task:finished` on Socket.IO when it ends."""
    from multidb.queue.app import OWNER_HEADER

    task = task_for(principal, body.task, body.args, body.kwargs)
    task_id = str(uuid.uuid4())
    now = time.time()
    await budget.admit(redis, principal.user_id, task_id, now + body.countdown)
    await runs.queued(redis, task_id, principal.user_id, task.name, body.countdown, now)
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
        await runs.forget(redis, task_id, principal.user_id, task.name)
        await budget.release(redis, principal.user_id, task_id)
        log.exception("could not queue %s: %s", task.name, type(exc).__name__)
        raise TaskQueueUnavailable() from exc
    await audit.record("task.run", user_id=principal.user_id, target=("task_run", task_id), details={"task": task.name})
    return TaskRunPublic(
        task_id=task_id, task=task.name, state="PENDING", owner_id=principal.user_id, queued_at=_when(str(now))
    )


async def queue_status() -> TaskQueueStatus:
    """What the broker holds now: the runs waiting in each queue, those running, beat's heartbeat."""
    from multidb.redis import client_of

    pipe = client_of(get_settings().message_broker_url).pipeline(transaction=False)
    broker.ask(pipe)
    try:
        replies = await pipe.execute()
    except Exception as exc:
        log.error("could not read the broker: %s", type(exc).__name__)
        raise TaskQueueUnavailable() from exc
    now = time.time()
    found = broker.figures(replies, now)
    return TaskQueueStatus(
        queues=[QueueDepth(name=name, waiting=waiting) for name, waiting in found.waiting.items()],
        reserved=found.reserved,
        beat_heartbeat_age=found.heartbeat_age,
        checked_at=datetime.fromtimestamp(now, UTC),
    )


def _when(stamp: str | None) -> datetime | None:
    return datetime.fromtimestamp(float(stamp), UTC) if stamp else None


def _done(value: Any) -> datetime | None:
    """The result backend's `date_done` (an ISO string, or a datetime), in UTC."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    return as_utc(value)


def _summary(task_id: str, run: dict[str, str]) -> TaskRunPublic:
    return TaskRunPublic(
        task_id=task_id,
        task=run["task"],
        state=run.get("state", "PENDING"),
        owner_id=run.get("owner"),
        queued_at=_when(run.get("queued_at")),
        started_at=_when(run.get("started_at")),
        finished_at=_when(run.get("finished_at")),
    )


async def list_runs(
    redis: "Redis", principal: Principal, number: int, size: int, user: uuid.UUID | None, task: str | None
) -> tuple[list[TaskRunPublic], int]:
    """The caller's recent runs (an admin's: everyone's, or one user's), newest first."""
    if not principal.admin:
        user = uuid.UUID(principal.user_id)
    found, total = await runs.page(redis, number, size, user=str(user) if user else None, task=task)
    return [_summary(task_id, run) for task_id, run in found], total


async def status(redis: "Redis", principal: Principal, task_id: uuid.UUID) -> TaskRunPublic:
    """A run's state and result; another user's run does not exist for the caller (admins see all).

    The result first, then the record: the worker records a run's start before it stores its
    result, so a record read after a finished result holds the start. (Read the other way
    round, a run that started and ended between the two reads showed SUCCESS with no start.)"""
    from multidb.queue.app import app
    from multidb.queue.typed import TaskMeta

    try:
        meta = cast(TaskMeta, await to_thread.run_sync(app.backend.get_task_meta, str(task_id)))
    except Exception as exc:
        log.error("could not read the result of %s: %s", task_id, type(exc).__name__)
        raise TaskResultsUnavailable() from exc
    run = await runs.get(redis, str(task_id))
    if run is None or (run["owner"] != principal.user_id and not principal.admin):
        raise TaskRunNotFound()
    summary = _summary(str(task_id), run).model_copy(update={"state": str(meta.get("status", "PENDING"))})
    if summary.finished_at is None and summary.state in ("SUCCESS", "FAILURE"):
        # The worker stores the result, then marks the run: in between, the result's own time counts.
        summary = summary.model_copy(update={"finished_at": _done(meta.get("date_done"))})
    result = meta.get("result")
    if isinstance(result, BaseException):
        # The type says what went wrong; the message may hold internals, so it stays in the worker's log.
        return summary.model_copy(update={"error": type(result).__name__})
    return summary.model_copy(update={"result": result if summary.state == "SUCCESS" else None})


def schedule_filters(principal: Principal, enabled: bool | None, keyword: str | None) -> list[Any]:
    """What a caller lists: their own schedules (an admin: everyone's), by state and keyword."""
    return [
        None if principal.admin else col(PeriodicTask.owner_id) == uuid.UUID(principal.user_id),
        None if enabled is None else col(PeriodicTask.enabled) == enabled,
        keyword_filter(keyword, PeriodicTask.name, PeriodicTask.task),
    ]


async def owned_schedule(session: AsyncSession, principal: Principal, schedule_id: uuid.UUID) -> PeriodicTask:
    """A schedule the caller owns (an admin: any); anyone else's does not exist for them (404)."""
    row = await ScheduleRepository(session).require(schedule_id)
    if not principal.admin and str(row.owner_id) != principal.user_id:
        raise ScheduleNotFound()
    return row


def _check_schedule(principal: Principal, row: PeriodicTask) -> None:
    task_for(principal, row.task, row.args, row.kwargs)
    minimum = get_settings().schedule_min_interval
    if row.interval_seconds is not None and row.interval_seconds < minimum:
        raise InvalidInput(
            f"a schedule runs at most every {minimum} seconds", fields={"intervalSeconds": f"at least {minimum}"}
        )
    if row.crontab is not None:
        from multidb.queue.scheduler import parse_crontab, shortest_gap

        try:
            entry = parse_crontab(row.crontab)
        except ValueError as exc:
            raise InvalidCrontab(f"invalid crontab: {exc}") from exc
        gap = shortest_gap(entry)
        if gap < minimum:
            raise InvalidInput(
                f"a schedule runs at most every {minimum} seconds; this crontab runs {gap} seconds apart",
                fields={"crontab": f"runs at least {minimum} seconds apart"},
            )


async def create_schedule(session: AsyncSession, principal: Principal, body: ScheduleCreate) -> PeriodicTask:
    schedules = ScheduleRepository(session)
    owner = uuid.UUID(principal.user_id)
    row = PeriodicTask(**body.model_dump(), owner_id=owner)
    _check_schedule(principal, row)
    limit = get_settings().schedules_per_user
    # Counted under the owner's lock (held until commit): concurrent creates take turns, so
    # the last one counts the rows the others added.
    await schedules.lock_owner(owner)
    if await schedules.count(col(PeriodicTask.owner_id) == owner) >= limit:
        raise TooManySchedules(f"you may own at most {limit} schedules; delete one first", retry_after=60)
    row = await schedules.create(row)
    await audit.record_created("schedule", principal.user_id, row.id, _view(row), required=False)
    return row


def _view(row: PeriodicTask) -> dict[str, object]:
    """What the audit log keeps of a schedule, named as the API names it (camelCase)."""
    return audit.camel(audit.view(row, "name", "task", "interval_seconds", "crontab", "enabled", "one_off"))


async def update_schedule(
    session: AsyncSession, principal: Principal, schedule_id: uuid.UUID, body: ScheduleUpdate
) -> PeriodicTask:
    row = await owned_schedule(session, principal, schedule_id)
    changes = body.model_dump(exclude_unset=True)
    if "crontab" in changes:
        changes["interval_seconds"] = None
    if "interval_seconds" in changes:
        changes.setdefault("crontab", None)
    candidate = PeriodicTask(**{**row.model_dump(), **changes})
    # The task is checked against the caller's grants, whoever owns the schedule.
    _check_schedule(principal, candidate)
    before = _view(row)
    row = await ScheduleRepository(session).update(row, changes)
    details = audit.changes(before, _view(row))
    await audit.record("schedule.update", user_id=principal.user_id, target=("schedule", str(row.id)), details=details)
    return row


async def delete_schedule(session: AsyncSession, principal: Principal, schedule_id: uuid.UUID) -> None:
    row = await owned_schedule(session, principal, schedule_id)
    details = audit.deleted(_view(row))
    await ScheduleRepository(session).delete(row)
    await audit.record(
        "schedule.delete", user_id=principal.user_id, target=("schedule", str(schedule_id)), details=details
    )
