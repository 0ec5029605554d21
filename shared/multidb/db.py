"""SQLAlchemy async engine and sessions: one pool per container, reused across invocations."""

import asyncio
import os
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.orm import Session as SyncSession
from sqlmodel.ext.asyncio.session import AsyncSession

from . import logs
from .errors import ServiceUnavailable
from .settings import get_settings

log = logs.get_logger("db")

RDS_CA_BUNDLE = os.path.join(os.path.dirname(__file__), "certs", "rds-global-bundle.pem")
RESUME_SECONDS = 15  # Aurora Serverless v2 resumes from auto-pause in about this long


class DatabaseUnavailable(
    ServiceUnavailable, error="database_unavailable", message="The database is not reachable yet; try again shortly."
):
    """PostgreSQL did not answer two connection attempts (an Aurora resuming from auto-pause,
    in dev); with `Retry-After: 15`."""

    retry_after = RESUME_SECONDS


def ensure_sqlite_folder(url: str) -> None:
    """Create the folder of an embedded SQLite database file."""
    database = url.split("///", 1)[-1] if url.startswith("sqlite") else ""
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def _sqlite_foreign_keys(connection: Any, _: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def tls_arguments(url: str) -> tuple[str, dict[str, Any]]:
    """Turn `?ssl=verify-full` (or `sslmode=`) into an SSL context that trusts the system's CAs
    and Amazon RDS's roots.

    asyncpg given the string looks for ~/.postgresql/root.crt and never falls back to the
    system store, where RDS Proxy's (public, ACM) certificate chains. Aurora itself, reached
    without the proxy, presents a certificate of the RDS CA (rds-ca-rsa2048-g1, the stack's
    choice), whose roots are the layer's bundle. `verify-ca` checks the chain without the
    host name. A URL naming its own `sslrootcert` is left as it is.
    """
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    mode = parsed.query.get("ssl") or parsed.query.get("sslmode")
    if not parsed.drivername.startswith("postgresql") or mode not in ("verify-full", "verify-ca"):
        return url, {}
    if "sslrootcert" in parsed.query:
        return url, {}
    context = ssl.create_default_context()
    context.load_verify_locations(cafile=RDS_CA_BUNDLE)
    context.check_hostname = mode == "verify-full"
    bare = parsed.difference_update_query(["ssl", "sslmode"])
    return bare.render_as_string(hide_password=False), {"ssl": context}


def get_engine() -> AsyncEngine:
    """The engine (one pool per container) of the current DATABASE_URL: a rotated URL gets
    its own on first use, and the old pool's connections are closed (`_let_go`)."""
    settings = get_settings()
    return _engine(
        settings.database_url, settings.database_echo, settings.database_connect_timeout, settings.database_pool_size
    )


_made: list[AsyncEngine] = []  # what `close` closes
_letting_go: set[asyncio.Task[None]] = set()  # closings under way (a task needs a reference)


@lru_cache(maxsize=1)
def _engine(url: str, echo: bool, connect_timeout: float = 5.0, pool_size: int = 2) -> AsyncEngine:
    _let_go()  # the engines of a URL rotated since
    engine = _create_engine(url, echo, connect_timeout, pool_size)
    _made.append(engine)
    return engine


def _let_go() -> None:
    """Close the pools of the engines made before, on the running loop (without one, `close`
    closes them). Forgotten but open, each would hold its idle connections until the process
    ends: a container's share of the database's max_connections, lost at every rotation."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    while _made:
        task = loop.create_task(_made.pop().dispose())
        _letting_go.add(task)
        task.add_done_callback(_letting_go.discard)


def _create_engine(url: str, echo: bool, connect_timeout: float = 5.0, pool_size: int = 2) -> AsyncEngine:
    if url.startswith("sqlite"):
        ensure_sqlite_folder(url)
        engine = create_async_engine(url, echo=echo)
        event.listen(engine.sync_engine, "connect", _sqlite_foreign_keys)
        return engine
    # A Lambda container serves one request at a time: a tiny pool, no connection older than
    # five minutes, and a connection that sat idle (a frozen container's) checked before use.
    # Pool size 0: a connection per unit of work, none held idle (a process that must let an
    # auto-pausing Aurora pause, such as beat between its reads).
    url, tls = tls_arguments(url)
    connect_args = {"timeout": connect_timeout, "command_timeout": 10, **tls}
    if pool_size == 0:
        from sqlalchemy.pool import NullPool

        engine = create_async_engine(url, echo=echo, poolclass=NullPool, connect_args=connect_args)
    else:
        engine = create_async_engine(
            url, echo=echo, pool_size=pool_size, max_overflow=pool_size, pool_recycle=300, connect_args=connect_args
        )
        ping_when_idle(engine)
    event.listen(engine.sync_engine, "do_connect", _connect_twice)
    return engine


def _connect_twice(dialect: Any, record: Any, cargs: Any, cparams: Any) -> Any:
    """Open a connection, trying a second time once the first failed to reach the server.

    A paused Aurora Serverless v2 instance resumes when a connection asks for it, in about
    `RESUME_SECONDS`; the first attempt may time out (or be refused while the server starts)
    and the second, `connect_timeout` later, finds it awake. Both failing is
    `DatabaseUnavailable`: 503 with Retry-After. A server that answers with an error
    (a wrong password, say) is not retried.
    """
    for second in (False, True):
        try:
            return dialect.connect(*cargs, **cparams)
        except Exception as exc:
            if not _unreachable(exc):
                raise
            if second:
                log.error("database unreachable twice (%s)", type(exc).__name__)
                raise DatabaseUnavailable() from exc
            log.warning("database connection failed (%s); trying once more", type(exc).__name__)
    raise AssertionError("the second attempt returns or raises")


def _unreachable(exc: BaseException) -> bool:
    """A connection attempt that did not reach a server ready to answer: timed out, refused,
    reset, or the server said it is starting up (SQLSTATE 57P03). A certificate that fails
    verification is an answer (and a warning), never retried."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return False
        if isinstance(seen, TimeoutError | OSError):
            return True
        if getattr(seen, "sqlstate", None) == "57P03" or type(seen).__name__ == "CannotConnectNowError":
            return True
        seen = seen.__cause__ or seen.__context__
    return False


PING_AFTER_IDLE = 10.0  # seconds


def ping_when_idle(engine: AsyncEngine) -> None:
    """Check a pooled connection before use only if it sat idle `PING_AFTER_IDLE` seconds.

    SQLAlchemy's `pool_pre_ping` checks every checkout, and with asyncpg a check is three
    round trips (BEGIN, a ping, ROLLBACK): more than a warm page's whole query. A connection
    the server or RDS Proxy may have closed is one that sat idle — in a frozen container, say
    — so only those are checked; one that fails is replaced, as with pre-ping. A connection
    lost while in use fails its request (503) and the pool drops its connections, as before.
    """
    pool, dialect = engine.sync_engine.pool, engine.sync_engine.dialect

    def idle_since(dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    def check(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < PING_AFTER_IDLE:
            return  # just opened, or just used
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise DisconnectionError("the idle connection is gone") from exc  # the pool opens another

    event.listen(pool, "checkin", idle_since)
    event.listen(pool, "checkout", check)


async def close() -> None:
    """Close the pool's connections and forget the engine; the next `get_engine()` makes a new
    one (SnapStart: no socket may be in the snapshot)."""
    _engine.cache_clear()
    while _made:
        await _made.pop().dispose()


type AfterCommit = Callable[[], Awaitable[object]]


@asynccontextmanager
async def session_scope() -> AsyncIterator[AsyncSession]:
    """The one way a session opens: one transaction, committed when the block ends and
    rolled back on any error, then the actions `after_commit` registered, in order.

    Repositories and services only flush; whoever opens the scope owns the transaction
    (the request dependency, the authorizer's grants rebuild, beat, initdb).
    """
    async with AsyncSession(get_engine(), expire_on_commit=False) as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise
        actions: list[AfterCommit] = session.info.pop(AFTER_COMMIT, [])
    for action in actions:
        await action()


AFTER_COMMIT = "multidb.after_commit"
READ_ONLY = "multidb.read_only"


@asynccontextmanager
async def read_scope() -> AsyncIterator[AsyncSession]:
    """A session that only reads: no transaction, each statement stands alone (autocommit),
    which spares a read the BEGIN and COMMIT round trips. For a route whose reads need no
    common snapshot (one statement, or a page and the roles of its rows); a write in it (an
    ORM change, or an INSERT, UPDATE or DELETE statement) raises before it reaches the
    database."""
    async with AsyncSession(get_engine(), expire_on_commit=False, info={READ_ONLY: True}) as session:
        await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        yield session


def _refuse_writes(session: Any, *_: Any) -> None:
    if session.info.get(READ_ONLY):
        raise RuntimeError("a read-only session (read_scope) cannot write: use session_scope")


def _refuse_write_statements(state: Any) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        _refuse_writes(state.session)


event.listen(SyncSession, "before_flush", _refuse_writes)  # ORM changes
event.listen(SyncSession, "do_orm_execute", _refuse_write_statements)  # insert(), update(), delete()


def after_commit(session: AsyncSession, action: AfterCommit) -> None:
    """Run `action` once this session's transaction has committed (never if it rolls back):
    cache invalidations, revocations, notices — what must follow the data, not precede it."""
    session.info.setdefault(AFTER_COMMIT, []).append(action)
