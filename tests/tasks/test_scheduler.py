"""The database scheduler against the test database: in-process (sends captured), then as the
`celery beat` processes a container runs, stopped and killed the way containers are."""

import base64
import json
import os
import signal
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import text
from sqlmodel import delete, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from multidb import runtime
from multidb.db import get_engine, session_scope
from multidb.keyspace import BEAT_HEARTBEAT, BEAT_LOCK
from multidb.models import PeriodicTask
from multidb.queue.app import app
from multidb.queue.scheduler import RUN_HEADER, DatabaseScheduler
from multidb.repository import ScheduleRepository
from multidb.settings import Settings, get_settings
from tests.conftest import BROKER_URL, USE_POSTGRES
from tests.processes import Process, celery, start_beat, wait_for

pytestmark = pytest.mark.process


async def _store(*rows: PeriodicTask) -> None:
    """Rows written as the API writes them: through the repository, the change marker bumped."""
    async with session_scope() as session:
        for row in rows:
            await ScheduleRepository(session).create(row)


async def _clear() -> None:
    async with session_scope() as session:
        await session.exec(delete(PeriodicTask))  # type: ignore[call-overload]
        await ScheduleRepository(session).mark_changed()


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
    first.reserve(entry)  # what tick() does before it sends the task: the run is recorded

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


def _waiting_for_a_row_lock() -> bool:
    async def count() -> int:
        async with AsyncSession(get_engine()) as session:
            query = text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            return int((await session.exec(query)).one()[0])  # type: ignore[call-overload]

    return runtime.run(count()) > 0


def test_sigterm_during_the_record_of_a_run_lets_it_finish_and_send_then_beat_exits(tmp_path: Path) -> None:
    """celery beat stops by raising SystemExit wherever it is; inside the event loop that lost
    the run being recorded, and at times wedged beat so that only SIGKILL ended it. Held back
    until the tick ends, the stop costs nothing: the run is recorded, then sent."""
    due = datetime.now(UTC) - timedelta(hours=1)
    runtime.run(_store(PeriodicTask(name="tick", task="multidb.ping", interval_seconds=3600, created_at=due)))
    held = runtime.run(_hold_rows())
    beat = start_beat(tmp_path)
    try:
        try:
            wait_for(lambda: "recording run 1 of tick" in beat.log() or not beat.alive(), what="beat to record")
            if USE_POSTGRES:
                wait_for(_waiting_for_a_row_lock, what="beat to wait for the row")
            else:
                time.sleep(0.5)  # SQLite shows no lock waits: give beat the time to reach the row
            os.killpg(beat.popen.pid, signal.SIGTERM)
            time.sleep(1)
            assert beat.alive(), beat.log()  # the record finishes first
            assert "Sending due task tick" not in beat.log()
        finally:
            runtime.run(_release(held))
        assert beat.popen.wait(timeout=20) == 0, beat.log()
    finally:
        beat.stop()
    assert "Sending due task tick" in beat.log()  # recorded, then sent, then stopped
    row = runtime.run(_row("tick"))
    assert row is not None
    assert (row.total_run_count, row.last_run_at is not None) == (1, True)


def full_reads(sent: list[str]) -> int:
    return sum(1 for s in sent if s.startswith("SELECT") and "FROM periodic_tasks LEFT OUTER JOIN users" in s)


def test_an_unchanged_schedule_table_costs_one_small_query_per_reload_not_a_full_read(
    statements: list[str],
) -> None:
    runtime.run(_store(PeriodicTask(name="steady", task="multidb.ping", interval_seconds=30)))
    scheduler = DatabaseScheduler(app=app)
    assert full_reads(statements) == 1  # the first load
    statements.clear()
    for _ in range(5):
        assert "steady" in reload(scheduler)
    assert full_reads(statements) == 0
    assert sum("FROM periodic_tasks_changed" in s for s in statements) == 5  # the marker, once per reload
    runtime.run(_store(PeriodicTask(name="new", task="multidb.ping", interval_seconds=30)))
    assert {"steady", "new"} <= reload(scheduler)  # a write moved the marker: read again
    assert full_reads(statements) == 1


async def _edit_in_sql(name: str, interval_seconds: int) -> None:
    """A change made straight in SQL (a hand edit, a restore): the change marker stays put."""
    async with AsyncSession(get_engine()) as session:
        statement = update(PeriodicTask).where(PeriodicTask.name == name).values(interval_seconds=interval_seconds)
        await session.exec(statement)  # type: ignore[call-overload]
        await session.commit()


def test_an_edit_that_skips_the_change_marker_is_read_at_the_first_reload_after_the_full_reload_interval(
    monkeypatch: pytest.MonkeyPatch, statements: list[str]
) -> None:
    backstop, refresh = 2.0, 0.1
    monkeypatch.setitem(app.conf, "beat_refresh_interval", refresh)
    monkeypatch.setitem(app.conf, "beat_full_reload_interval", backstop)
    runtime.run(_store(PeriodicTask(name="edited", task="multidb.ping", interval_seconds=60)))

    def every() -> float:
        return float(scheduler.schedule["edited"].schedule.run_every.total_seconds())  # a reload when due

    started = time.monotonic()
    scheduler = DatabaseScheduler(app=app)
    assert every() == 60
    runtime.run(_edit_in_sql("edited", 90))
    statements.clear()
    wait_for(lambda: every() == 90, timeout=backstop + 5, what="beat to read the edit")
    waited = time.monotonic() - started
    assert backstop <= waited < backstop + 1.5  # not at the marker's reloads before it, and at once after
    assert sum("FROM periodic_tasks_changed" in s for s in statements) >= 5  # the marker was read meanwhile
    assert full_reads(statements) == 1  # the backstop's one read


def test_a_disabled_users_schedules_rest_until_they_are_enabled_again(api: Any) -> None:
    """Through the users route, which moves the change marker: beat sees it at its next reload."""
    from tests.conftest import ADMIN_PASSWORD
    from tests.helpers import create_user

    admin = api.login("admin", ADMIN_PASSWORD).access
    owner = create_user("owner")
    row = PeriodicTask(name="theirs", task="multidb.ping", interval_seconds=30, owner_id=uuid.UUID(owner))
    runtime.run(_store(row))
    scheduler = DatabaseScheduler(app=app)
    assert f"theirs ({owner})" in scheduler.schedule
    assert api.put(f"/api/v1/users/{owner}", token=admin, json_body={"status": False}).status_code == 200
    assert f"theirs ({owner})" not in reload(scheduler)
    assert api.put(f"/api/v1/users/{owner}", token=admin, json_body={"status": True}).status_code == 200
    assert f"theirs ({owner})" in reload(scheduler)


# ------------------------------------------------------------------ at most once


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What beat sends (the task's options, headers included), with the row as it stood at the send."""
    from multidb.queue.tasks import ping as task

    sent: list[dict[str, Any]] = []

    def send(args: Any = None, kwargs: Any = None, producer: Any = None, **options: Any) -> None:
        row = runtime.run(_row("tick"))
        sent.append({**options, "recorded": row.total_run_count if row else None})

    monkeypatch.setattr(task, "apply_async", send)
    return sent


def leading(scheduler: DatabaseScheduler, monkeypatch: pytest.MonkeyPatch) -> DatabaseScheduler:
    """A beat that believes it holds the lock (as one whose lock expired while it was paused does)."""
    monkeypatch.setattr(scheduler, "_lead", lambda: True)
    return scheduler


def _due_hourly() -> PeriodicTask:
    return PeriodicTask(
        name="tick", task="multidb.ping", interval_seconds=3600, created_at=datetime.now(UTC) - timedelta(hours=2)
    )


def test_a_run_is_recorded_before_it_is_sent_and_carries_its_number(
    captured: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime.run(_store(_due_hourly()))
    beat = leading(DatabaseScheduler(app=app), monkeypatch)
    beat.tick()
    [sent] = captured
    assert sent["recorded"] == 1  # in the database before it went to the broker
    assert sent["headers"][RUN_HEADER] == 1
    assert sent["headers"]["multidb_schedule"] == "tick"
    assert beat.tick() > 0  # next run in an hour
    assert len(captured) == 1


def test_a_tick_with_nothing_due_compares_no_entry_and_a_reload_rebuilds_the_heap(
    captured: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Celery compares every entry with those its heap was built from on every tick:
    O(schedules) with nothing to send. Here a tick compares the generation of the loaded
    schedule, and a read of changed rows rebuilds the heap."""
    from celery.beat import ScheduleEntry

    ran = datetime.now(UTC)
    runtime.run(_store(*(PeriodicTask(name=f"later-{n}", task="multidb.ping", interval_seconds=3600,
                                      last_run_at=ran) for n in range(20))))  # fmt: skip
    beat = leading(DatabaseScheduler(app=app), monkeypatch)
    compared: list[str] = []
    equal = ScheduleEntry.__eq__
    monkeypatch.setattr(ScheduleEntry, "__eq__", lambda a, b: compared.append(a.name) or equal(a, b))
    assert beat.tick() > 0  # builds the heap (heapify compares entries of equal times)
    built, compared[:] = beat._heap, []
    for _ in range(5):
        assert beat.tick() > 0
    assert beat._heap is built  # not rebuilt
    assert compared == []
    runtime.run(_store(_due_hourly()))
    beat._loaded_at = None  # the refresh interval passed: the marker moved, the rows are read
    beat.tick()
    assert beat._heap is not built
    assert [sent["headers"]["multidb_schedule"] for sent in captured] == ["tick"]  # the new row, due, was sent


def test_the_apps_own_schedule_runs_at_its_interval_however_often_the_database_is_reloaded(
    static_entry: None, captured: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reload once put back the app's entries as first loaded: the files sweep was due again
    at every reload (every few seconds with user schedules about) instead of every interval."""
    beat = leading(DatabaseScheduler(app=app), monkeypatch)
    beat.schedule["from-config"].last_run_at = datetime.now(UTC) - timedelta(minutes=2)  # as if beat ran a while
    beat.tick()
    assert len(captured) == 1  # it was due
    for _ in range(5):
        beat._reload()  # schedules read again and the heap rebuilt, as when a user's schedule ran
        beat.tick()
    assert len(captured) == 1  # and is not again for a minute


def test_two_beats_that_both_hold_a_run_as_due_send_it_once(
    captured: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both loaded the row before either ran it (a holder whose lock expired while it was paused,
    and the standby that took over): the run count decides, and the slower one sends nothing."""
    runtime.run(_store(_due_hourly()))
    first = leading(DatabaseScheduler(app=app), monkeypatch)
    second = leading(DatabaseScheduler(app=app), monkeypatch)
    assert first.schedule["tick"].is_due().is_due
    assert second.schedule["tick"].is_due().is_due
    first.tick()
    second.tick()
    second.tick()  # it read the row again: not due for an hour
    assert [sent["headers"][RUN_HEADER] for sent in captured] == [1]
    row = runtime.run(_row("tick"))
    assert row is not None
    assert row.total_run_count == 1


def test_a_standby_does_not_repeat_a_run_the_dead_holder_recorded_but_never_sent(
    captured: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime.run(_store(_due_hourly()))
    standby = DatabaseScheduler(app=app)  # loaded the row while the holder led: the run is due
    holder = DatabaseScheduler(app=app)
    holder.reserve(holder.schedule["tick"])  # recorded; killed before the send
    leading(standby, monkeypatch).tick()  # the lock expired: the standby takes over
    standby.tick()
    assert captured == []  # at most once: the run the holder recorded is lost, never doubled
    assert standby.schedule["tick"].total_run_count == 1


def test_a_disabled_or_deleted_schedule_is_not_sent_even_when_beat_still_holds_it(
    captured: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime.run(_store(_due_hourly()))
    beat = leading(DatabaseScheduler(app=app), monkeypatch)
    beat.schedule  # loaded while enabled
    runtime.run(_disable("tick"))
    beat.tick()
    assert captured == []


async def _disable(name: str) -> None:
    async with AsyncSession(get_engine()) as session:
        await session.exec(update(PeriodicTask).where(PeriodicTask.name == name).values(enabled=False))  # type: ignore[call-overload]
        await session.commit()


# ------------------------------------------------------------------ the lock


@pytest.fixture
def broker() -> Iterator[redis.Redis]:
    with redis.Redis.from_url(BROKER_URL) as client:
        client.delete(BEAT_LOCK, BEAT_HEARTBEAT)
        yield client
        client.delete(BEAT_LOCK, BEAT_HEARTBEAT)


def test_the_lock_lives_beat_lock_ttl_whatever_the_refresh_interval_and_is_renewed_every_tick(
    broker: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert Settings().beat_lock_ttl == 15  # what production runs
    monkeypatch.setitem(app.conf, "beat_refresh_interval", 60.0)  # production's reload interval
    beat = DatabaseScheduler(app=app)
    try:
        ttl = get_settings().beat_lock_ttl
        assert beat.max_interval <= ttl / 3  # three renewals per lifetime, not one per reload
        beat.tick()
        assert ttl * 1000 - 1000 < broker.pttl(BEAT_LOCK) <= ttl * 1000
        assert abs(float(broker.get(BEAT_HEARTBEAT) or 0) - time.time()) < 2
        broker.pexpire(BEAT_LOCK, 2000)  # as if the last renewal were long ago
        beat.tick()
        assert broker.pttl(BEAT_LOCK) > ttl * 1000 - 1000  # renewed to a full lifetime
    finally:
        beat.close()
    assert broker.exists(BEAT_LOCK) == 0  # a clean stop hands over at once


# ------------------------------------------------------------------ failover, as containers run


def _queued(url: str) -> list[dict[str, Any]]:
    """The messages waiting in Celery's default queue (a Redis list), oldest first: headers and body."""
    with redis.Redis.from_url(url) as client:
        raw = client.lrange("celery", 0, -1)
    messages = [json.loads(item) for item in reversed(raw)]  # Celery LPUSHes and BRPOPs
    for message in messages:
        message["decoded"] = json.loads(base64.b64decode(message["body"]))
    return messages


def _runs(url: str, task: str = "multidb.ping") -> list[int]:
    return [m["headers"][RUN_HEADER] for m in _queued(url) if m["headers"]["task"] == task]


def production_beat(folder: Path, broker_url: str) -> Process:
    """`celery beat` as its container runs it, with production's lock lifetime and reload interval."""
    folder.mkdir()
    argv = celery(
        "beat", "-S", "multidb.queue.scheduler:DatabaseScheduler", "-l", "INFO", "--pidfile", str(folder / "pid")
    )
    return Process("beat", argv, {"BROKER_URL": broker_url, "BEAT_LOCK_TTL": "15", "BEAT_REFRESH_INTERVAL": "60"})


@pytest.mark.first_pass_only("the failover waits out real lock expiries: once is enough")
def test_a_standby_fires_the_next_run_within_30_s_of_the_holders_death_and_no_run_fires_twice(
    tmp_path: Path, spare_broker: str
) -> None:
    runtime.run(_store(PeriodicTask(name="tick", task="multidb.ping", interval_seconds=1)))
    first = production_beat(tmp_path / "first", spare_broker)
    second: Process | None = None
    try:
        wait_for(lambda: "sends the schedule" in first.log() or not first.alive(), what="the first beat to lead")
        second = production_beat(tmp_path / "second", spare_broker)
        wait_for(lambda: "stands by" in second.log() or not second.alive(), what="the second beat to stand by")
        wait_for(lambda: len(_runs(spare_broker)) >= 3, what="three runs from the first beat")
        os.killpg(first.popen.pid, signal.SIGKILL)  # no clean stop: its lock has to expire
        killed = time.monotonic()
        first.popen.wait()
        before = max(_runs(spare_broker))  # from now on only the standby can send
        wait_for(lambda: max(_runs(spare_broker)) > before, timeout=40, what="the standby to send a run")
        took = time.monotonic() - killed
        assert took < 30, f"the standby sent its first run {took:.1f} s after the holder died"
        assert "Sending due task" in second.log()
        wait_for(lambda: max(_runs(spare_broker)) > before + 3, what="more runs from the standby")
    finally:
        first.stop()
        stopped = second.stop() if second is not None else 0
    assert stopped == 0, "the standby did not stop cleanly on SIGTERM"
    runs = _runs(spare_broker)
    assert len(runs) == len(set(runs)), f"a run was sent twice: {runs}"
    row = runtime.run(_row("tick"))
    assert row is not None
    assert max(runs) == row.total_run_count  # every run sent is the one recorded under its number
    lost = set(range(1, max(runs) + 1)) - set(runs)
    assert len(lost) <= 1, lost  # at most the one the holder recorded and was killed before sending
    print(f"failover: the standby sent its first run {took:.1f} s after the holder was killed")
