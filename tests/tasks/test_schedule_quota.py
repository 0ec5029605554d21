"""What one user's schedules may cost: the schedules they may own, counted under a lock that
concurrent creates take in turn (on the test database, over truly concurrent sessions), and
the runs beat fires for them, drawn from the budget their runs through the API draw on."""

import asyncio
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from multidb import runtime
from multidb.authz import Principal
from multidb.db import session_scope
from multidb.errors import TooManyRequests
from multidb.models import PeriodicTask
from multidb.queue import budget
from multidb.queue.app import SCHEDULE_OWNER_HEADER, app
from multidb.queue.scheduler import DatabaseScheduler
from multidb.rbac import task_code
from multidb.redis import get_redis
from multidb.repository import ScheduleRepository
from multidb.security.tokens import Claims, TokenType
from multidb.settings import get_settings
from tasks_fn import service
from tasks_fn.schemas import ScheduleCreate
from tests.helpers import Api, create_user
from tests.processes import Process, wait_for

pytestmark = pytest.mark.process

QUOTA = 20
PARALLEL = 20


def principal(user_id: str) -> Principal:
    claims = Claims(user_id, "j", "f", TokenType.ACCESS, 0, 0)
    return Principal(user_id, "owner", False, claims, frozenset({task_code("multidb.ping")}))


def hourly(name: str) -> ScheduleCreate:
    return ScheduleCreate(name=name, task="multidb.ping", interval_seconds=3600)


async def owned(owner: str) -> int:
    async with session_scope() as session:
        query = select(func.count()).select_from(PeriodicTask).where(col(PeriodicTask.owner_id) == uuid.UUID(owner))
        return int((await session.exec(query)).one())


async def _create_in_parallel(owner: str) -> list[str]:
    """Twenty sessions, each on its own connection and inside its transaction, let go together."""
    engine = create_async_engine(get_settings().database_url, pool_size=PARALLEL, max_overflow=0)
    ready = asyncio.Barrier(PARALLEL)

    async def create(number: int) -> str:
        async with AsyncSession(engine, expire_on_commit=False) as session:
            await session.exec(select(1))  # connected, transaction begun
            await ready.wait()
            try:
                await service.create_schedule(session, principal(owner), hourly(f"parallel-{number}"))
                await session.commit()
            except TooManyRequests as exc:
                await session.rollback()
                return str(exc.error)
            return "created"

    try:
        return await asyncio.gather(*(create(number) for number in range(PARALLEL)))
    finally:
        await engine.dispose()


def test_twenty_parallel_creates_at_nineteen_of_twenty_leave_exactly_twenty(api: Api, configure: Any) -> None:
    configure(SCHEDULES_PER_USER=QUOTA)
    owner = create_user("owner", codes=(task_code("multidb.ping"),))

    async def nineteen() -> None:
        async with session_scope() as session:
            for number in range(QUOTA - 1):
                await service.create_schedule(session, principal(owner), hourly(f"first-{number}"))

    runtime.run(nineteen())
    outcomes = runtime.run(_create_in_parallel(owner))
    assert sorted(outcomes) == ["created"] + ["too_many_schedules"] * (PARALLEL - 1)
    assert runtime.run(owned(owner)) == QUOTA


def test_enabling_a_disabled_schedule_makes_no_room_past_the_quota(api: Api, configure: Any) -> None:
    """The quota counts rows, enabled or not: a disabled schedule enabled again takes no
    second place, and its place is not free while it rests."""
    configure(SCHEDULES_PER_USER=2)
    codes = ("POST:/api/v1/tasks/schedules", "PUT:/api/v1/tasks/schedules/{schedule_id}", task_code("multidb.ping"))
    owner = create_user("owner", "owner-password", codes=codes)
    token = api.login("owner", "owner-password").access
    body = {"task": "multidb.ping", "intervalSeconds": 3600}
    resting = api.post("/api/v1/tasks/schedules", token=token, json_body={**body, "name": "a", "enabled": False})
    assert resting.status_code == 201
    assert api.post("/api/v1/tasks/schedules", token=token, json_body={**body, "name": "b"}).status_code == 201
    third = api.post("/api/v1/tasks/schedules", token=token, json_body={**body, "name": "c"})
    assert (third.status_code, third.json()["error"]) == (429, "too_many_schedules")
    resting_path = f"/api/v1/tasks/schedules/{resting.json()['data']['id']}"
    assert api.put(resting_path, token=token, json_body={"enabled": True}).status_code == 200
    again = api.post("/api/v1/tasks/schedules", token=token, json_body={**body, "name": "c"})
    assert (again.status_code, again.json()["error"]) == (429, "too_many_schedules")
    # nor does handing a schedule to someone else: the owner is not a field a body may name
    someone = create_user("someone")
    handed = api.put(resting_path, token=token, json_body={"ownerId": someone})
    assert handed.status_code == 422
    assert runtime.run(owned(owner)) == 2


# ------------------------------------------------------------------ beat's runs and the owner's budget


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What beat sends (the task's options), instead of the broker."""
    from multidb.queue.tasks import ping

    captured: list[dict[str, Any]] = []
    monkeypatch.setattr(ping, "apply_async", lambda *args, **options: captured.append(options))
    return captured


def due_schedules(owner: str, count: int) -> None:
    created = datetime.now(UTC) - timedelta(hours=2)

    async def store() -> None:
        async with session_scope() as session:
            for number in range(count):
                row = PeriodicTask(
                    name=f"due-{number}",
                    task="multidb.ping",
                    interval_seconds=3600,
                    owner_id=uuid.UUID(owner),
                    created_at=created,
                )
                await ScheduleRepository(session).create(row)

    runtime.run(store())


def leading_beat(monkeypatch: pytest.MonkeyPatch) -> DatabaseScheduler:
    beat = DatabaseScheduler(app=app)
    monkeypatch.setattr(beat, "_lead", lambda: True)
    return beat


def tick_until_idle(beat: DatabaseScheduler) -> None:
    for _ in range(50):
        if beat.tick() > 0:
            return
    raise AssertionError("beat kept finding runs due")


def queued_runs(owner: str) -> set[str]:
    return set(runtime.run(get_redis().zrange(budget.queued_key(owner), 0, -1)))


def test_beat_sends_no_more_of_an_owners_runs_than_they_may_have_queued(
    api: Api, configure: Any, sent: list[dict[str, Any]], caplog: pytest.LogCaptureFixture, monkeypatch: Any
) -> None:
    configure(TASK_RUNS_QUEUED=3)
    owner = create_user("owner", "owner-password", codes=("POST:/api/v1/tasks/runs", task_code("multidb.ping")))
    due_schedules(owner, 5)
    caplog.set_level(logging.WARNING, logger="multidb.beat")
    tick_until_idle(leading_beat(monkeypatch))

    assert len(sent) == 3
    assert {options["task_id"] for options in sent} == queued_runs(owner)  # the worker takes these off
    assert all(options["headers"][SCHEDULE_OWNER_HEADER] == owner for options in sent)
    skips = [r.getMessage() for r in caplog.records if r.getMessage().startswith("skipping run 1 of due-")]
    assert len(skips) == 2, caplog.text
    assert all("over their budget of task runs (too_many_queued_runs)" in message for message in skips)
    # the same budget as runs through the API: the owner's own run now waits too
    token = api.login("owner", "owner-password").access
    refused = api.post("/api/v1/tasks/runs", token=token, json_body={"task": "multidb.ping"})
    assert (refused.status_code, refused.json()["error"]) == (429, "too_many_queued_runs")


def test_beat_sends_no_more_of_an_owners_runs_a_minute_than_their_rate(
    api: Api, configure: Any, sent: list[dict[str, Any]], caplog: pytest.LogCaptureFixture, monkeypatch: Any
) -> None:
    configure(TASK_RUNS_PER_MINUTE=2)
    owner = create_user("owner", codes=(task_code("multidb.ping"),))
    due_schedules(owner, 4)
    caplog.set_level(logging.WARNING, logger="multidb.beat")
    beat = leading_beat(monkeypatch)
    tick_until_idle(beat)
    assert len(sent) == 2
    skips = [r.getMessage() for r in caplog.records if "(too_many_task_runs)" in r.getMessage()]
    assert len(skips) == 2, caplog.text
    assert len(queued_runs(owner)) == 2  # skipped runs hold no place
    # the skipped fires were spent, not deferred: nothing is due again before the next hour
    for _ in range(3):
        beat.tick()
    assert len(sent) == 2
    assert all(entry.is_due().next > 60 for name, entry in beat.schedule.items() if name.startswith("due-"))


def test_a_scheduled_run_leaves_its_owners_queued_runs_when_the_worker_ends_it(
    api: Api, worker: Process, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = create_user("owner", codes=(task_code("multidb.ping"),))
    due_schedules(owner, 1)
    beat = leading_beat(monkeypatch)
    beat.tick()
    assert len(queued_runs(owner)) == 1
    wait_for(lambda: not queued_runs(owner), timeout=30, what="the worker to end the scheduled run")
