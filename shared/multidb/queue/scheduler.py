"""Celery beat reading its schedule from the database, like django-celery-beat without Django.

    celery -A multidb.queue.app beat -S multidb.queue.scheduler:DatabaseScheduler

Rows of `periodic_tasks` (managed through /api/v1/tasks/schedules) are merged with the
app's `beat_schedule` and reloaded every `beat_refresh_interval` seconds, so a new, changed,
disabled or deleted schedule counts without restarting beat. After each run beat writes
`last_run_at` and `total_run_count` back, so a restart neither repeats nor skips a run, and
a `one_off` schedule disables itself.

Only one beat sends: each holds a Redis lock (renewed on every tick, released on a clean
stop) before it sends anything, so a second beat started by mistake, or a standby, waits
and takes over when the first one is gone.
"""

import os
import signal
import socket
import threading
import time
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from celery.beat import ScheduleEntry, Scheduler
from celery.schedules import BaseSchedule, ParseException, crontab, schedule
from redis.exceptions import LockError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from .. import logs, runtime
from ..db import get_engine
from ..models import PeriodicTask
from ..settings import get_settings
from .app import SCHEDULE_OWNER_HEADER

if TYPE_CHECKING:
    from redis.lock import Lock

log = logs.get_logger("beat")

LOCK_KEY = "multidb:beat:lock"
_STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


@contextmanager
def _stop_signals_held() -> Iterator[None]:
    """Hold SIGTERM and SIGINT back until the block ends, then take them as usual.

    celery beat stops by raising SystemExit from its signal handler, wherever the main
    thread happens to be. Inside the event loop (asyncpg callbacks, SQLAlchemy's
    greenlets) that can wedge the loop for good: beat then neither exits nor sends, and
    the run it was writing back is lost. Held back, the signal lands right after the
    database call, where SystemExit is harmless.
    """
    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _run[T](coro: Coroutine[Any, Any, T]) -> T:
    """Run a database coroutine on the process's loop, with beat's stop signals held back."""
    with _stop_signals_held():
        return runtime.run(coro)


def parse_crontab(expression: str) -> crontab:
    """`minute hour day-of-month month day-of-week`, in UTC; raises ValueError when malformed."""
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError("a crontab has five fields: minute hour day-of-month month day-of-week")
    minute, hour, day_of_month, month_of_year, day_of_week = fields
    try:
        return crontab(
            minute=minute, hour=hour, day_of_month=day_of_month, month_of_year=month_of_year, day_of_week=day_of_week
        )
    except ParseException as exc:
        raise ValueError(str(exc)) from exc


def schedule_of(row: PeriodicTask) -> BaseSchedule:
    if row.crontab:
        return parse_crontab(row.crontab)
    if row.interval_seconds:
        return schedule(timedelta(seconds=row.interval_seconds))
    raise ValueError(f"schedule {row.name} has neither an interval nor a crontab")


def entry_name(row: PeriodicTask) -> str:
    """Beat's name for a row: names are unique per owner, so the owner is part of it."""
    return row.name if row.owner_id is None else f"{row.name} ({row.owner_id})"


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything stored is UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class DatabaseEntry(ScheduleEntry):  # type: ignore[misc]
    """A schedule entry that came from a `periodic_tasks` row."""

    def __init__(self, *args: Any, row_id: Any = None, one_off: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.row_id = row_id
        self.one_off = one_off


class DatabaseScheduler(Scheduler):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._static: dict[str, ScheduleEntry] = {}
        self._loaded_at: float | None = None
        self._ran: dict[str, DatabaseEntry] = {}
        self._loaded_names: set[str] | None = None
        self._lock: Lock | None = None
        self._leading: bool | None = None
        super().__init__(*args, **kwargs)
        # Wake at least once per reload, so a new schedule is seen in time.
        self.max_interval: float = min(float(self.max_interval), self.refresh_interval)

    def tick(self, *args: Any, **kwargs: Any) -> float:
        if not self._lead():
            return self.max_interval  # another beat sends; ask again later
        return float(super().tick(*args, **kwargs))

    def _lead(self) -> bool:
        """Hold the beat lock: take it when free, renew it when ours."""
        url = get_settings().message_broker_url
        if url.startswith("memory://"):
            return True  # one process is the whole system
        try:
            if self._lock is None:
                import redis

                client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
                # Three ticks of slack: a beat that stopped renewing is gone.
                ttl = max(3 * self.max_interval, 2.0)
                self._lock = client.lock(LOCK_KEY, timeout=ttl, blocking=False)
            leading = bool(self._lock.reacquire() if self._lock.owned() else self._lock.acquire(token=_identity()))
        except LockError:
            leading = False  # it expired and another beat took it between our two calls
        except Exception:
            log.exception("could not reach the beat lock; sending nothing until it is back")
            leading = False
        if leading != self._leading:
            log.info("this beat %s", "sends the schedule" if leading else "stands by: another beat holds the lock")
            self._leading = leading
        return leading

    @property
    def refresh_interval(self) -> float:
        return float(self.app.conf.get("beat_refresh_interval") or 60)

    def setup_schedule(self) -> None:
        self._loaded_at = time.monotonic()  # no reload until the app's own entries are in place
        self.install_default_entries(self.data)
        self.update_from_dict(self.app.conf.beat_schedule)
        self._static = dict(self.data)
        self._refresh()

    def get_schedule(self) -> dict[str, ScheduleEntry]:
        if self._loaded_at is None or time.monotonic() - self._loaded_at >= self.refresh_interval:
            self._refresh()
        return self.data  # type: ignore[no-any-return]

    schedule = property(get_schedule, Scheduler.set_schedule)

    def reserve(self, entry: ScheduleEntry) -> ScheduleEntry:
        new_entry = super().reserve(entry)
        if isinstance(new_entry, DatabaseEntry):
            self._ran[new_entry.name] = new_entry
        return new_entry  # type: ignore[no-any-return]

    def should_sync(self) -> bool:
        return bool(self._ran) or bool(super().should_sync())

    def sync(self) -> None:
        if not self._ran:
            return
        ran, self._ran = self._ran, {}
        try:
            _run(self._write_back(list(ran.values())))
        except Exception:
            # Keep them for the next sync: the database may be back by then.
            self._ran = {**ran, **self._ran}
            log.exception("could not record %d schedule runs", len(ran))
            return
        for entry in ran.values():
            if entry.one_off:
                self.data.pop(entry.name, None)

    def _refresh(self) -> None:
        self._loaded_at = time.monotonic()
        self.sync()
        try:
            rows = _run(self._read())
        except Exception:
            log.exception("could not read the schedules; keeping the ones loaded before")
            return
        entries: dict[str, ScheduleEntry] = dict(self._static)
        for row in rows:
            name = entry_name(row)
            if name in self._static:
                log.error("skipping schedule %s: the app's own schedule has that name", name)
                continue
            try:
                entries[name] = self._entry(row, self.data.get(name))
            except ValueError:
                log.error("skipping schedule %s: its timing is invalid", name)
        self.data: dict[str, ScheduleEntry] = entries
        names = set(entries) - set(self._static)
        if names != self._loaded_names:
            log.info("schedules from the database: %s", ", ".join(sorted(names)) or "none")
            self._loaded_names = names

    def _entry(self, row: PeriodicTask, loaded: ScheduleEntry | None) -> "DatabaseEntry":
        last_run_at = _aware(row.last_run_at or row.created_at)
        count = row.total_run_count
        if isinstance(loaded, DatabaseEntry) and loaded.row_id == row.id:
            # A run not yet written back is newer than the row.
            last_run_at = max(last_run_at, _aware(loaded.last_run_at))
            count = max(count, loaded.total_run_count)
        headers = {"multidb_schedule": row.name}
        if row.owner_id is not None:
            headers[SCHEDULE_OWNER_HEADER] = str(row.owner_id)
        return DatabaseEntry(
            name=entry_name(row),
            task=row.task,
            schedule=schedule_of(row),
            args=tuple(row.args),
            kwargs=dict(row.kwargs),
            options={"headers": headers},
            last_run_at=last_run_at,
            total_run_count=count,
            app=self.app,
            row_id=row.id,
            one_off=row.one_off,
        )

    async def _read(self) -> list[PeriodicTask]:
        async with AsyncSession(get_engine()) as session:
            query = select(PeriodicTask).where(col(PeriodicTask.enabled)).order_by(col(PeriodicTask.name))
            return list((await session.exec(query)).all())

    async def _write_back(self, entries: list[DatabaseEntry]) -> None:
        async with AsyncSession(get_engine()) as session:
            for entry in entries:
                row = await session.get(PeriodicTask, entry.row_id)
                if row is None:  # deleted since it was loaded
                    continue
                row.last_run_at = _aware(entry.last_run_at)
                row.total_run_count = max(row.total_run_count, entry.total_run_count)
                if entry.one_off:
                    row.enabled = False
                session.add(row)
            await session.commit()

    def close(self) -> None:
        super().close()
        if self._lock is not None:
            try:
                if self._lock.owned():
                    self._lock.release()  # a standby takes over at once
                    log.info("this beat released the lock")
            except Exception:
                log.warning("could not release the beat lock; it expires on its own")

    @property
    def info(self) -> str:
        return f"    . db -> {len(self.data) - len(self._static)} schedules, reloaded every {self.refresh_interval:g}s"


def _identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"
