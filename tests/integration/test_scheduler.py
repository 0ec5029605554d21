"""The database scheduler in-process, against the test database (no broker needed: nothing is sent)."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import delete
from sqlmodel.ext.asyncio.session import AsyncSession

from multidb import runtime
from multidb.db import get_engine
from multidb.models import PeriodicTask
from multidb.queue.app import app
from multidb.queue.scheduler import DatabaseScheduler


async def _store(*rows: PeriodicTask) -> None:
    async with AsyncSession(get_engine()) as session:
        session.add_all(rows)
        await session.commit()


async def _clear() -> None:
    async with AsyncSession(get_engine()) as session:
        await session.exec(delete(PeriodicTask))  # type: ignore[call-overload]
        await session.commit()


@pytest.fixture
def static_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(app.conf, "beat_schedule", {"from-config": {"task": "multidb.ping", "schedule": 60.0}})


def reload(scheduler: DatabaseScheduler) -> set[str]:
    scheduler._loaded_at = None  # as if the refresh interval had passed
    return set(scheduler.schedule)


def test_database_schedules_merge_with_the_apps_own(static_entry: None) -> None:
    scheduler = DatabaseScheduler(app=app)
    assert set(scheduler.schedule) == {"from-config"}
    runtime.run(_store(PeriodicTask(name="from-db", task="multidb.ping", interval_seconds=30)))
    assert reload(scheduler) == {"from-config", "from-db"}
    runtime.run(_store(PeriodicTask(name="off", task="multidb.ping", interval_seconds=30, enabled=False)))
    assert reload(scheduler) == {"from-config", "from-db"}
    runtime.run(_clear())
    assert reload(scheduler) == {"from-config"}


def test_a_run_is_written_back_so_a_restarted_beat_does_not_repeat_it() -> None:
    created = datetime.now(UTC) - timedelta(minutes=5)
    runtime.run(_store(PeriodicTask(name="hourly", task="multidb.ping", interval_seconds=3600, created_at=created)))
    first = DatabaseScheduler(app=app)
    entry = first.schedule["hourly"]
    assert entry.is_due().is_due is False  # an interval schedule first runs one interval after its creation

    runtime.run(_clear())
    runtime.run(
        _store(
            PeriodicTask(
                name="hourly", task="multidb.ping", interval_seconds=3600, created_at=created - timedelta(hours=2)
            )
        )
    )
    first = DatabaseScheduler(app=app)
    entry = first.schedule["hourly"]
    assert entry.is_due().is_due is True
    first.reserve(entry)  # what tick() does when it sends the task
    first.sync()

    restarted = DatabaseScheduler(app=app)
    again = restarted.schedule["hourly"]
    assert again.is_due().is_due is False
    assert again.total_run_count == 1


def test_a_row_with_a_broken_timing_is_skipped_not_fatal() -> None:
    runtime.run(
        _store(
            PeriodicTask(name="good", task="multidb.ping", interval_seconds=60),
            PeriodicTask(name="bad", task="multidb.ping", crontab="99 * * * *"),
        )
    )
    assert set(DatabaseScheduler(app=app).schedule) == {"good"}
