"""Celery beat reading its schedule from the database, like django-celery-beat without Django.

    celery -A multidb.queue.app beat -S multidb.queue.scheduler:DatabaseScheduler

Rows of `periodic_tasks` (managed through /api/v1/tasks/schedules) are merged with the
app's `beat_schedule`. Every `beat_refresh_interval` seconds beat reads the change marker
(`periodic_tasks_changed`, bumped by every schedule write in its transaction) and reads
the rows again only when it moved, so a new, changed, disabled or deleted schedule counts
without restarting beat, and an unchanged table costs one small query. As django-celery-beat
does every 5 minutes, the first reload after `beat_full_reload_interval` seconds (300) reads
every row whatever the marker says: an edit made in SQL that skipped the marker is seen then,
not at the next restart. It rides on a reload, so it adds no query of its own.

A run is recorded before it is sent: `last_run_at` and `total_run_count` are written with
a compare-and-set on the run count, and only the beat whose write landed sends the run
(its message carries the run's number in the `multidb_run` header). So no run is sent
twice, whatever happens to the beats: a restart or a standby reads what was recorded, and
a beat that believes it leads after its lock expired loses the race to the one that took
over. A beat killed between the record and the send loses that one run (at most once).
A stop signal waits for the tick in progress, so a clean stop never does. A `one_off`
schedule disables itself in the same write.

A run of a user's schedule is then drawn from the owner's budget of task runs (runs per
minute, runs queued at once: `budget.py`, shared with their runs through the API). A run
over budget is skipped, never sent later, and logged with the limit it hit; the schedule
keeps its times. The worker gives the run back when it ends.

Only one beat sends: each holds a Redis lock before it sends anything. The lock lives
`beat_lock_ttl` seconds (15 by default) past its last renewal, whatever the refresh
interval; the holder renews it on every tick, and ticks at least three times per lifetime.
A standby asks every second, so it takes over at most a second after the lock expires,
within one lifetime of the holder's death (at once after a clean stop, which releases the
lock), and reloads the schedules before it sends anything. The holder also stamps
`multidb:beat:heartbeat` with the time: the metrics function reports its age (an alarm says
when no beat is ticking).
"""

import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager, suppress
from datetime import timedelta
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from celery.beat import ScheduleEntry, Scheduler
from celery.schedules import BaseSchedule, ParseException, crontab, schedule
from redis.exceptions import LockError
from sqlalchemy import or_
from sqlmodel import col, select, update

from .. import logs, runtime
from ..clock import as_utc
from ..db import session_scope
from ..keyspace import BEAT_HEARTBEAT, BEAT_LOCK
from ..models import PeriodicTask, User
from ..repository import ScheduleRepository
from ..settings import get_settings
from . import budget
from .app import SCHEDULE_OWNER_HEADER

if TYPE_CHECKING:
    from redis.lock import Lock

log = logs.get_logger("beat")

STANDBY_POLL = 1.0  # seconds between a standby's attempts to take the lock (one Redis SET NX)
RUN_HEADER = "multidb_run"  # the run's number: its schedule's total_run_count once recorded
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


def shortest_gap(entry: crontab) -> int:
    """The fewest seconds between two runs of a crontab: a lower bound, taken over the times
    of day it fires as if it fired every day (skipped days only make gaps longer)."""
    times: list[int] = sorted(hour * 60 + minute for hour in entry.hour for minute in entry.minute)
    gaps = [later - earlier for earlier, later in pairwise(times)]
    gaps.append(24 * 60 - times[-1] + times[0])  # the last run of a day to the first of the next
    return min(gaps) * 60


def schedule_of(row: PeriodicTask) -> BaseSchedule:
    if row.crontab:
        return parse_crontab(row.crontab)
    if row.interval_seconds:
        return schedule(timedelta(seconds=row.interval_seconds))
    raise ValueError(f"schedule {row.name} has neither an interval nor a crontab")


def entry_name(row: PeriodicTask) -> str:
    """Beat's name for a row: names are unique per owner, so the owner is part of it."""
    return row.name if row.owner_id is None else f"{row.name} ({row.owner_id})"


class DatabaseEntry(ScheduleEntry):  # type: ignore[misc]
    """A schedule entry that came from a `periodic_tasks` row."""

    def __init__(
        self,
        *args: Any,
        row_id: Any = None,
        one_off: bool = False,
        owner: str | None = None,
        run_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.row_id = row_id
        self.one_off = one_off
        self.owner = owner
        self.run_id = run_id  # the task id of the run admitted to its owner's budget, until sent


class DatabaseScheduler(Scheduler):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._static: dict[str, ScheduleEntry] = {}
        self._loaded_at: float | None = None
        self._loaded_names: set[str] | None = None
        self._seen_version: int | None = None  # the change marker as of the last full read
        self._read_at: float | None = None  # when the rows were last read in full
        self._lock: Lock | None = None
        self._leading: bool | None = None
        self._took_over = False
        self._withheld: ScheduleEntry | None = None  # reserved, not recorded: not to be sent
        self._paused_until = 0.0
        self._heartbeat_at = 0.0
        self._generation = 0  # counts the changes of `data` (`schedules_equal`)
        self._heap_generation = -1  # the generation the heap was built from
        super().__init__(*args, **kwargs)
        # Wake at least once per reload, so a new schedule is seen in time, and three times
        # per lock lifetime, so the lock is renewed long before it could expire.
        self.max_interval: float = min(float(self.max_interval), self.refresh_interval, self.lock_ttl / 3)

    def tick(self, *args: Any, **kwargs: Any) -> float:
        if not self._lead():
            return min(self.max_interval, STANDBY_POLL)  # another beat sends; ask again soon
        if self._took_over:
            self._took_over = False
            self._reload()  # the previous holder recorded runs since this beat last read them
        paused = self._paused_until - time.monotonic()
        if paused > 0:
            return min(paused, self.max_interval)
        # A stop signal waits for the end of the tick: a run recorded is then a run sent.
        with _stop_signals_held():
            return float(super().tick(*args, **kwargs))

    def schedules_equal(self, old_schedules: Any, new_schedules: Any) -> bool:
        """Whether the heap was built from the schedule as it stands. Celery compares every
        entry on every tick (O(schedules) with nothing due); here `data` changes only where
        this class replaces or edits it (a read of the rows, a one-off's removal), which
        count a generation: a tick compares two numbers, and the heap is rebuilt on a change."""
        return self._heap_generation == self._generation

    def populate_heap(self, *args: Any, **kwargs: Any) -> None:
        super().populate_heap(*args, **kwargs)
        self._heap_generation = self._generation

    def _lead(self) -> bool:
        """Hold the beat lock: take it when free, renew it when ours."""
        url = get_settings().message_broker_url
        if url.startswith("memory://"):
            return True  # one process is the whole system
        try:
            if self._lock is None:
                import redis

                client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
                self._lock = client.lock(BEAT_LOCK, timeout=self.lock_ttl, blocking=False)
            leading = bool(self._lock.reacquire() if self._lock.owned() else self._lock.acquire(token=_identity()))
            if leading and time.monotonic() - self._heartbeat_at >= 1:
                self._lock.redis.set(BEAT_HEARTBEAT, f"{time.time():.3f}")
                self._heartbeat_at = time.monotonic()
        except LockError:
            leading = False  # it expired and another beat took it between our two calls
        except Exception:
            log.exception("could not reach the beat lock; sending nothing until it is back")
            leading = False
        if leading != self._leading:
            log.info("this beat %s", "sends the schedule" if leading else "stands by: another beat holds the lock")
            self._took_over = leading
            self._leading = leading
        return leading

    @property
    def refresh_interval(self) -> float:
        return float(self.app.conf.get("beat_refresh_interval") or 60)

    @property
    def full_reload_interval(self) -> float:
        return float(self.app.conf.get("beat_full_reload_interval") or 300)

    @property
    def lock_ttl(self) -> float:
        return float(get_settings().beat_lock_ttl)

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

    def _reload(self) -> None:
        """Read the schedules again (all of them) before the next run is chosen."""
        self._loaded_at = None
        self._seen_version = None
        self._heap = None

    def reserve(self, entry: ScheduleEntry) -> ScheduleEntry:
        """Advance an entry; a database entry's run is recorded first, and withheld unless ours."""
        new_entry = super().reserve(entry)
        if not isinstance(entry, DatabaseEntry):
            return new_entry  # type: ignore[no-any-return]
        log.info("recording run %d of %s", new_entry.total_run_count, entry.name)
        try:
            recorded = _run(self._record(entry, new_entry))
        except Exception:
            log.exception("could not record a run of %s; it is not sent", entry.name)
            self._paused_until = time.monotonic() + self.max_interval  # the database may be back by then
            recorded = False
        else:
            if not recorded:
                log.warning(
                    "not sending %s: its run was recorded by another beat, or it was disabled or deleted", entry.name
                )
        if not recorded:
            self._withheld = entry
            self._reload()
            return new_entry  # type: ignore[no-any-return]
        if entry.one_off:
            self.data.pop(entry.name, None)
            self._generation += 1
        if entry.owner is not None and not self._admit(entry, new_entry.total_run_count):
            self._withheld = entry  # recorded (its time has passed), not sent
        return new_entry  # type: ignore[no-any-return]

    def _admit(self, entry: DatabaseEntry, number: int) -> bool:
        """Draw a run from its owner's budget, the one their runs through the API draw on
        (runs per minute, runs queued at once). A run over budget is skipped, never sent
        later: its schedule keeps its times, and the log says why. Fails closed."""
        from ..errors import TooManyRequests
        from ..redis import get_redis

        assert entry.owner is not None
        run_id = str(uuid.uuid4())
        try:
            _run(budget.admit(get_redis(), entry.owner, run_id, time.time()))
        except TooManyRequests as exc:
            log.warning(
                "skipping run %d of %s: its owner is over their budget of task runs (%s)", number, entry.name, exc.error
            )
            return False
        except Exception:
            log.exception("could not count run %d of %s against its owner's budget; it is not sent", number, entry.name)
            return False
        entry.run_id = run_id
        return True

    def apply_entry(self, entry: ScheduleEntry, producer: Any = None) -> None:
        if entry is self._withheld:
            self._withheld = None
            return
        super().apply_entry(entry, producer=producer)

    def apply_async(self, entry: ScheduleEntry, producer: Any = None, advance: bool = True, **kwargs: Any) -> Any:
        if not isinstance(entry, DatabaseEntry):
            return super().apply_async(entry, producer=producer, advance=advance, **kwargs)
        # Its run number is the count recorded for it: one past the entry's (advanced or not).
        headers = {**entry.options.get("headers", {}), RUN_HEADER: entry.total_run_count + 1}
        options = {**entry.options, "headers": headers}
        owner, run_id = entry.owner, entry.run_id
        entry.run_id = None
        if run_id is not None:
            options["task_id"] = run_id  # the id its owner's queued runs hold, which the worker takes off
        try:
            return super().apply_async(entry.__class__(**dict(entry, options=options)), producer, advance, **kwargs)
        except Exception:
            if owner is not None and run_id is not None:
                with suppress(Exception):  # the budget heals within the hour anyway
                    from ..redis import get_redis

                    _run(budget.release(get_redis(), owner, run_id))
            raise

    def _refresh(self) -> None:
        """Read the schedules when the change marker moved since the last read, or when the
        last full read is `full_reload_interval` old (one small query otherwise)."""
        now = self._loaded_at = time.monotonic()
        backstop = self._read_at is None or now - self._read_at >= self.full_reload_interval
        try:
            found = _run(self._read(unless_version=None if backstop else self._seen_version))
        except Exception:
            log.exception("could not read the schedules; keeping the ones loaded before")
            return
        if found is None:
            return  # nothing changed
        version, rows = found
        self._seen_version, self._read_at = version, now
        # The app's own entries as they stand now: each carries its last run, and a reload
        # must not put back the entry as first loaded (it would be due again at every reload).
        current: dict[str, ScheduleEntry] = getattr(self, "data", None) or {}
        entries: dict[str, ScheduleEntry] = {name: current.get(name, entry) for name, entry in self._static.items()}
        for row in rows:
            name = entry_name(row)
            if name in self._static:
                log.error("skipping schedule %s: the app's own schedule has that name", name)
                continue
            try:
                entries[name] = self._entry(row)
            except ValueError:
                log.error("skipping schedule %s: its timing is invalid", name)
        self.data: dict[str, ScheduleEntry] = entries
        self._generation += 1
        names = set(entries) - set(self._static)
        if names != self._loaded_names:
            log.info("schedules from the database: %s", ", ".join(sorted(names)) or "none")
            self._loaded_names = names

    def _entry(self, row: PeriodicTask) -> "DatabaseEntry":
        # The row is the truth: every run is recorded there before it is sent.
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
            last_run_at=as_utc(row.last_run_at or row.created_at),
            total_run_count=row.total_run_count,
            app=self.app,
            row_id=row.id,
            one_off=row.one_off,
            owner=None if row.owner_id is None else str(row.owner_id),
        )

    async def _read(self, unless_version: int | None = None) -> tuple[int, list[PeriodicTask]] | None:
        """The change marker and the enabled schedules of the app's own and of active users (a
        disabled user's schedules rest; the worker refuses any run whose owner lost the task's
        code) — or None when the marker still reads `unless_version`. The marker is read
        first: a write committed between the two reads is read again next time, never missed."""
        owner_active = or_(col(PeriodicTask.owner_id).is_(None), col(User.status))
        query = (
            select(PeriodicTask)
            .outerjoin(User, col(User.id) == col(PeriodicTask.owner_id))
            .where(col(PeriodicTask.enabled), owner_active)
            .order_by(col(PeriodicTask.name))
        )
        async with session_scope() as session:
            version = await ScheduleRepository(session).version()
            if version == unless_version:
                return None
            return version, list((await session.exec(query)).all())

    async def _record(self, entry: DatabaseEntry, ran: ScheduleEntry) -> bool:
        """Write a run unless another beat wrote it first (or the row was disabled or deleted).

        The run count is the version: the update lands only on the row as this beat last
        read it, so of two beats that both hold a run as due, one records it and sends it.
        """
        values: dict[str, Any] = {"last_run_at": as_utc(ran.last_run_at), "total_run_count": ran.total_run_count}
        if entry.one_off:
            values["enabled"] = False
        statement = (
            update(PeriodicTask)
            .where(
                col(PeriodicTask.id) == entry.row_id,
                col(PeriodicTask.total_run_count) == entry.total_run_count,
                col(PeriodicTask.enabled),
            )
            .values(**values)
        )
        async with session_scope() as session:
            result = await session.exec(statement)  # type: ignore[call-overload]
        return bool(result.rowcount == 1)

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
        return (
            f"    . db -> {len(self.data) - len(self._static)} schedules, reloaded every {self.refresh_interval:g}s"
            f" (all of them every {self.full_reload_interval:g}s)"
        )


def _identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"
