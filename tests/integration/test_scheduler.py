"""The database scheduler against the test database: in-process (nothing is sent), then as
the `celery beat` process a container runs, stopped the way a container is."""

import os
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import delete, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from multidb import runtime
from multidb.db import get_engine
from multidb.models import PeriodicTask
from multidb.queue.app import app
from multidb.queue.scheduler import DatabaseScheduler
from tests.processes import start_beat, wait_for


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
    assert set(DatabaseScheduler(app=app).schedule) == {"good", *app.conf.beat_schedule}


async def _hold_rows() -> AsyncSession:
    """A transaction left open after updating every schedule: their rows stay locked until it ends."""
    session = AsyncSession(get_engine())
    await session.exec(update(PeriodicTask).values(description="held"))  # type: ignore[call-overload]
    return session


async def _release(session: AsyncSession) -> None:
    await session.rollback()
    await session.close()


async def _row(name: str) -> PeriodicTask | None:
    async with AsyncSession(get_engine()) as session:
        return (await session.exec(select(PeriodicTask).where(PeriodicTask.name == name))).first()


def test_sigterm_during_a_write_back_lets_it_finish_then_beat_exits(tmp_path: Path) -> None:
    """celery beat stops by raising SystemExit wherever it is; inside the event loop that lost
    the run being written back, and at times wedged beat so that only SIGKILL ended it."""
    due = datetime.now(UTC) - timedelta(hours=1)
    runtime.run(_store(PeriodicTask(name="tick", task="multidb.ping", interval_seconds=3600, created_at=due)))
    held = runtime.run(_hold_rows())
    beat = start_beat(tmp_path)
    try:
        wait_for(lambda: "Sending due task tick" in beat.log() or not beat.alive(), what="beat to send the task")
        time.sleep(0.5)  # beat now waits for the row to write the run back
        os.killpg(beat.popen.pid, signal.SIGTERM)
        time.sleep(1)
        assert beat.alive(), beat.log()  # the write-back finishes first
    finally:
        runtime.run(_release(held))
    try:
        assert beat.popen.wait(timeout=20) == 0, beat.log()
    finally:
        beat.stop()
    row = runtime.run(_row("tick"))
    assert row is not None
    assert (row.total_run_count, row.last_run_at is not None) == (1, True)
