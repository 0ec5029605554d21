"""Lambda SnapStart: init does a first request's work, the snapshot holds no socket, and a
restored container reopens what it needs lazily and forgets what the snapshot froze.

With `SnapStart=true` (template.yaml) Lambda initializes a function once, when a version is
published, snapshots the memory, and starts every new container from that snapshot. So:

- `prime(*modules)` runs during init when Lambda says it is a SnapStart init
  (`AWS_LAMBDA_INITIALIZATION_TYPE=snap-start`): it imports what a first request would
  import lazily (the SQL stack, PyMongo and Beanie, boto3) and builds the clients that need
  no network (the S3 client), so the snapshot holds the modules and what building the
  clients parsed (botocore's service models, kept by boto3's default session);
- `before_snapshot()` closes every socket and pool and forgets the clients that own them:
  PostgreSQL, Redis and MongoDB clients, the AWS clients, and the event loop itself (its
  self-pipe is a socket pair). A connection in a snapshot would be shared by every container
  restored from it;
- `after_restore()` re-seeds `random`, forgets every cached setting, secret and key (the
  snapshot may be hours old, and the monotonic clock that dates them did not run), and
  lets the clients reopen on first use.

`install()` hands both hooks to the Lambda runtime's `snapshot_restore_py` (present in the
managed Python runtime, absent elsewhere, where it does nothing). The tests and `make bench`
run the same hooks around an `os.fork()` to emulate a restore.
"""

import importlib
import os
import random
import sys
from collections.abc import Callable

from . import logs, runtime

log = logs.get_logger("snapstart")

Hook = Callable[[], None]
_before: list[Hook] = []
_after: list[Hook] = []
_installed = False

# What a first request of any function imports lazily; functions add their own to `prime`.
COMMON_MODULES = (
    "sqlalchemy.ext.asyncio",
    "sqlalchemy.dialects.postgresql.asyncpg",
    "asyncpg",
    "sqlmodel",
    "redis.asyncio",
    "multidb.models",
    "multidb.repository",
    "multidb.db",
)


def snapstart_init() -> bool:
    """Whether this init is the one Lambda snapshots."""
    return os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") == "snap-start"


def register_before_snapshot(hook: Hook) -> Hook:
    _before.append(hook)
    return hook


def register_after_restore(hook: Hook) -> Hook:
    _after.append(hook)
    return hook


def hooks() -> tuple[list[Hook], list[Hook]]:
    """The hooks registered, before-snapshot and after-restore, in the order they run."""
    return [*_before, _close_everything], [_fresh_state, *_after]


def before_snapshot() -> None:
    for hook in hooks()[0]:
        hook()


def after_restore() -> None:
    for hook in hooks()[1]:
        hook()


def install() -> None:
    """Register the hooks with the Lambda runtime, once (no-op where it is not there)."""
    global _installed
    if _installed:
        return
    _installed = True
    try:
        from snapshot_restore_py import (  # type: ignore[import-not-found]
            register_after_restore as runtime_after,
        )
        from snapshot_restore_py import (
            register_before_snapshot as runtime_before,
        )
    except ImportError:
        return
    runtime_before(before_snapshot)
    runtime_after(after_restore)


def prime(*modules: str, warm: Callable[[], None] | None = None) -> None:
    """Do a first request's offline work now: import `modules` (and the common ones), then
    run `warm` (build clients that need no network). Only during a SnapStart init."""
    if not snapstart_init():
        return
    install()
    for name in (*COMMON_MODULES, *modules):
        importlib.import_module(name)
    from sqlalchemy.orm import configure_mappers

    configure_mappers()  # the ORM's relationships, which the first query would set up
    if warm is not None:
        warm()
    # Convert the environment into settings once: msgspec builds its converter for the type
    # on first use, and that goes into the snapshot too. No secret is read (none belongs in
    # the snapshot), nothing is kept.
    from .settings import InvalidSettings, dotenv_files, from_environment

    try:
        from_environment(dotenv_files())
    except InvalidSettings:  # the first request after the restore says so (503)
        log.warning("settings invalid while priming")


def _close_everything() -> None:
    from . import db, mongo, redis, secrets
    from .files import storage

    async def close() -> None:
        await db.close()
        await redis.close()
        await mongo.close()

    runtime.run(close())
    runtime.close_loop()
    storage.close()
    secrets.close()
    log.info("closed every connection before the snapshot")


def _fresh_state() -> None:
    from . import config_cache

    random.seed()  # every restored container would otherwise draw the same numbers
    config_cache.forget_all()
    tokens = sys.modules.get("multidb.security.tokens")
    if tokens is not None:
        tokens.forget_verified()
