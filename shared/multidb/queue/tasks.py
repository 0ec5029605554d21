"""The registered tasks. A name here is what the API and schedules refer to.

Sync or `async def` alike (AsyncTask runs coroutines), declared with `@task(name)` so that
calls are type-checked against the function (`add.delay("x")` is a mypy error; see
typed.py). Keep arguments JSON: that is all the broker accepts.
"""

from typing import Any, Literal

from .app import sender
from .typed import task


@task("multidb.ping")
def ping() -> str:
    """Answer "pong": a health check for the worker."""
    return "pong"


@task("multidb.add")
def add(x: float, y: float) -> float:
    """Add two numbers (the seed's sample task)."""
    return x + y


# The only events a task may push: a notice a user (or their schedule) sends, never one of
# the events the system itself speaks (`task:finished`, `session:revoked`, `disconnect`, …),
# which a page trusts. The payload says who sent it.
NOTICE_EVENTS = ("notification", "message")
NoticeEvent = Literal["notification", "message"]


def _notice(event: str, data: dict[str, Any] | None) -> dict[str, Any]:
    if event not in NOTICE_EVENTS:  # the API checks it too; the broker is not the API
        raise ValueError("not a notice event")
    return {"from": sender(), "data": data}


@task("multidb.notify")
async def notify(user_id: str, event: NoticeEvent, data: dict[str, Any] | None = None) -> bool:
    """Push a notice (`notification` or `message`) to one user's open connections."""
    from ..realtime import emit, user_room

    await emit(event, _notice(event, data), room=user_room(user_id))
    return True


@task("multidb.broadcast")
async def broadcast(event: NoticeEvent, data: dict[str, Any] | None = None) -> bool:
    """Push a notice (`notification` or `message`) to every connected user."""
    from ..realtime import emit

    await emit(event, _notice(event, data))
    return True


@task("multidb.files.sweep")
async def sweep_files() -> int:
    """Delete what uploads left behind: deleted files' late objects, and uploads never completed."""
    from ..files.lifecycle import sweep

    return await sweep()
