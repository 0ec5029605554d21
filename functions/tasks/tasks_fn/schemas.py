"""Task bodies: TaskInfo (with TaskParameter), TaskQueueStatus, TaskRunCreate, TaskRunPublic, ScheduleCreate,
ScheduleUpdate, SchedulePublic."""

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, model_validator

from multidb.api.requests import PartialUpdate, RequestBody
from multidb.api.responses import CamelModel

TaskName = Annotated[str, StringConstraints(min_length=1, max_length=200)]
ScheduleName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9 _:.-]{0,127}$")]
Args = Annotated[list[Any], Field(max_length=32, description="Positional arguments (JSON)")]
Kwargs = Annotated[dict[str, Any], Field(max_length=32, description="Keyword arguments (JSON)")]
Interval = Annotated[int, Field(ge=1, le=366 * 24 * 3600, description="Run every this many seconds")]
Crontab = Annotated[
    str, StringConstraints(min_length=9, max_length=120, strip_whitespace=True, pattern=r"^[0-9A-Za-z*/,\- ]+$")
]


JsonType = Literal["string", "integer", "number", "boolean", "array", "object"]
ParameterKind = Literal["positional_only", "positional_or_keyword", "var_positional", "keyword_only", "var_keyword"]


class TaskParameter(CamelModel):
    """One parameter of a task's function, as a form needs it; the API still checks what is sent."""

    name: str
    type: JsonType | None = Field(description="The JSON type its annotation names; null: any JSON value")
    required: bool = Field(description="It has no default (variadic parameters never are)")
    default: Any = Field(default=None, description="Its default, when it has one that is JSON; else null")
    nullable: bool = Field(default=False, description="null is accepted too")
    enum: list[Any] | None = Field(default=None, description="The only values it takes (a Literal annotation)")
    kind: ParameterKind = Field(
        description="How it is passed: positional_only in `args`, keyword_only in `kwargs`, "
        "positional_or_keyword in either; var_positional (*args, an array) and var_keyword (**kwargs, an object)"
    )


class TaskInfo(CamelModel):
    name: str
    description: str = Field(description="Its signature and the first line of its docstring")
    parameters: list[TaskParameter] = Field(description="Its function's parameters, in order")


class QueueDepth(CamelModel):
    name: str
    waiting: int = Field(description="Runs waiting in the queue for a worker")


class TaskQueueStatus(CamelModel):
    queues: list[QueueDepth]
    reserved: int = Field(description="Runs workers have taken and not yet finished")
    beat_heartbeat_age: float | None = Field(
        description="Seconds since beat last ticked (it ticks every few seconds); null: no beat ever ticked"
    )
    checked_at: datetime


class TaskRunCreate(RequestBody):
    task: TaskName
    args: Args = Field(default_factory=list)
    kwargs: Kwargs = Field(default_factory=dict)
    countdown: int = Field(default=0, ge=0, le=24 * 3600, description="Seconds to wait before running")


class TaskRunPublic(CamelModel):
    task_id: str
    task: str
    state: str = Field(description="PENDING, STARTED, SUCCESS, FAILURE, RETRY or REVOKED")
    result: Any = None
    error: str | None = Field(default=None, description="The exception's type when the task failed")
    owner_id: str | None = Field(default=None, description="Who started it")
    queued_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


class ScheduleCreate(RequestBody):
    name: ScheduleName
    task: TaskName
    description: str = Field(default="", max_length=255)
    args: Args = Field(default_factory=list)
    kwargs: Kwargs = Field(default_factory=dict)
    interval_seconds: Interval | None = None
    crontab: Crontab | None = Field(default=None, description="minute hour day-of-month month day-of-week, UTC")
    enabled: bool = True
    one_off: bool = Field(default=False, description="Disable the schedule after its first run")

    @model_validator(mode="after")
    def _one_timing(self) -> "ScheduleCreate":
        if (self.interval_seconds is None) == (self.crontab is None):
            raise ValueError("give exactly one of intervalSeconds and crontab")
        return self


class ScheduleUpdate(PartialUpdate):
    """Fields to change. Sending crontab replaces the interval, and intervalSeconds the crontab."""

    name: ScheduleName | None = None
    task: TaskName | None = None
    description: str | None = Field(default=None, max_length=255)
    args: Args | None = None
    kwargs: Kwargs | None = None
    interval_seconds: Interval | None = None
    crontab: Crontab | None = None
    enabled: bool | None = None
    one_off: bool | None = None

    @model_validator(mode="after")
    def _one_timing(self) -> "ScheduleUpdate":
        if {"interval_seconds", "crontab"} <= self.model_fields_set:
            raise ValueError("give at most one of intervalSeconds and crontab")
        return self


class SchedulePublic(CamelModel):
    id: uuid.UUID
    owner_id: uuid.UUID | None = Field(description="Who made it; null for schedules older than owners")
    name: str
    task: str
    description: str
    args: list[Any]
    kwargs: dict[str, Any]
    interval_seconds: int | None
    crontab: str | None
    enabled: bool
    one_off: bool
    last_run_at: datetime | None
    total_run_count: int
    created_at: datetime
    updated_at: datetime
