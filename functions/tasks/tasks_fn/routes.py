"""/api/v1/tasks routes: the registered tasks, their runs, and beat's schedules."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi import Response as HTTPResponse
from sqlmodel import col

from multidb import cursors
from multidb.api.app import API_PREFIX, DocumentedRoute
from multidb.api.deps import CurrentPrincipal, Keyword, NameCursor, PageDep, RedisDep
from multidb.api.errors import error_responses
from multidb.api.responses import Created, Page, Response, page_of, view
from multidb.api.sql import ReadSessionDep, SessionDep
from multidb.models import PeriodicTask
from multidb.queue.budget import TooManyQueuedRuns, TooManyTaskRuns
from multidb.repository import ScheduleNameTaken, ScheduleNotFound, ScheduleRepository

from . import service
from .schemas import (
    ScheduleCreate,
    SchedulePublic,
    ScheduleUpdate,
    TaskInfo,
    TaskQueueStatus,
    TaskRunCreate,
    TaskRunPublic,
)

router = APIRouter(prefix=f"{API_PREFIX}/tasks", tags=["Task"], route_class=DocumentedRoute)

# A task the caller names, to run now or on a schedule: one they may run, with arguments that fit.
TASK = (service.UnknownTask, service.TaskNotGranted, service.TaskArgumentsTooLarge, service.BadTaskArguments)
SCHEDULE_ERRORS = (*TASK, service.InvalidCrontab, ScheduleNameTaken)

Enabled = Annotated[bool | None, Query(description="Only enabled (true) or disabled (false) schedules")]


@router.get("")
async def list_tasks(_: CurrentPrincipal) -> Response[list[TaskInfo]]:
    """List the tasks that can be run or scheduled, with their signatures."""
    return Response(data=[service.describe(task) for task in service.registered().values()])


@router.get("/status", responses=error_responses(service.TaskQueueUnavailable))
async def queue_status(_: CurrentPrincipal) -> Response[TaskQueueStatus]:
    """The task queue's depth, the runs workers hold, and the age of beat's last heartbeat."""
    return Response(data=await service.queue_status())


@router.post(
    "/runs",
    status_code=202,
    responses=error_responses(*TASK, TooManyTaskRuns, TooManyQueuedRuns, service.TaskQueueUnavailable),
)
async def run_task(principal: CurrentPrincipal, body: TaskRunCreate, redis: RedisDep) -> Response[TaskRunPublic]:
    """Queue a run of a task; the caller's Socket.IO connections hear `task:finished` when it ends."""
    return Response(code=202, data=await service.start(redis, principal, body))


@router.get("/runs")
async def list_runs(
    principal: CurrentPrincipal,
    page: PageDep,
    redis: RedisDep,
    user_id: Annotated[uuid.UUID | None, Query(alias="userId", description="Admins: one user's runs")] = None,
    task: Annotated[str | None, Query(max_length=200, description="Only runs of this task")] = None,
) -> Response[Page[TaskRunPublic]]:
    """List your recent runs (an admin: everyone's, or one user's), newest first, with their times."""
    records, total = await service.list_runs(redis, principal, page.page, page.page_size, user_id, task)
    return Response(data=Page[TaskRunPublic](page=page.page, page_size=page.page_size, total=total, records=records))


@router.get("/runs/{task_id}", responses=error_responses(service.TaskRunNotFound, service.TaskResultsUnavailable))
async def get_run(principal: CurrentPrincipal, task_id: uuid.UUID, redis: RedisDep) -> Response[TaskRunPublic]:
    """A run's state and, once it succeeded, its result (runs of other users are hidden from non-admins)."""
    return Response(data=await service.status(redis, principal, task_id))


@router.get("/schedules")
async def list_schedules(
    principal: CurrentPrincipal,
    session: ReadSessionDep,
    page: PageDep,
    enabled: Enabled = None,
    keyword: Keyword = None,
    cursor: NameCursor = None,
) -> Response[Page[SchedulePublic]]:
    """List your schedules (an admin: everyone's) a page at a time, by state and a keyword over name and task."""
    records, total = await ScheduleRepository(session).paginate(
        page.page,
        page.page_size,
        *service.schedule_filters(principal, enabled, keyword),
        order_by=[col(PeriodicTask.name)],
        after=cursors.after_name(PeriodicTask, cursor) if cursor else None,
    )
    following = cursors.by_name(records[-1]) if len(records) == page.page_size else None
    return Response(data=page_of(SchedulePublic, records, total, page.page, page.page_size, following))


@router.get("/schedules/{schedule_id}", responses=error_responses(ScheduleNotFound))
async def get_schedule(
    principal: CurrentPrincipal, schedule_id: uuid.UUID, session: ReadSessionDep
) -> Response[SchedulePublic]:
    """Get one of your schedules (an admin: anyone's)."""
    row = await service.owned_schedule(session, principal, schedule_id)
    return Response(data=view(SchedulePublic, row))


SCHEDULE = Created(f"{API_PREFIX}/tasks/schedules/{{schedule_id}}")


@router.post(
    "/schedules",
    status_code=201,
    responses={**error_responses(*SCHEDULE_ERRORS, service.TooManySchedules), **SCHEDULE.responses},
)
async def create_schedule(
    principal: CurrentPrincipal, body: ScheduleCreate, session: SessionDep, response: HTTPResponse
) -> Response[SchedulePublic]:
    """Create a schedule you own; beat picks it up at its next reload, without a restart."""
    return SCHEDULE.respond(response, view(SchedulePublic, await service.create_schedule(session, principal, body)))


@router.put("/schedules/{schedule_id}", responses=error_responses(ScheduleNotFound, *SCHEDULE_ERRORS))
async def update_schedule(
    principal: CurrentPrincipal, schedule_id: uuid.UUID, body: ScheduleUpdate, session: SessionDep
) -> Response[SchedulePublic]:
    """Change one of your schedules (disable it with `enabled: false`)."""
    row = await service.update_schedule(session, principal, schedule_id, body)
    return Response(data=view(SchedulePublic, row))


@router.delete("/schedules/{schedule_id}", responses=error_responses(ScheduleNotFound))
async def delete_schedule(principal: CurrentPrincipal, schedule_id: uuid.UUID, session: SessionDep) -> Response[None]:
    """Delete one of your schedules; beat stops running it at its next reload."""
    await service.delete_schedule(session, principal, schedule_id)
    return Response()
