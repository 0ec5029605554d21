"""The registered tasks. A name here is what the API and schedules refer to.

Sync or `async def` alike (AsyncTask runs coroutines). Keep arguments JSON: that is all
the broker accepts.
"""

from typing import Any

from .app import app


@app.task(name="multidb.ping")
def ping() -> str:
    """Answer "pong": a health check for the worker."""
    return "pong"


@app.task(name="multidb.add")
def add(x: float, y: float) -> float:
    """Add two numbers (the seed's sample task)."""
    return x + y


@app.task(name="multidb.notify")
async def notify(user_id: str, event: str, data: Any = None) -> bool:
    """Push a Socket.IO event to one user's open connections."""
    from ..realtime import emit, user_room

    await emit(event, data, room=user_room(user_id))
    return True


@app.task(name="multidb.broadcast")
async def broadcast(event: str, data: Any = None) -> bool:
    """Push a Socket.IO event to every connected user."""
    from ..realtime import emit

    await emit(event, data)
    return True
