"""Emit Socket.IO events from anywhere: functions and Celery tasks publish them on Redis,
and the Socket.IO server (infra/services/realtime) delivers them to the connected clients.

Rooms: every connection joins `user:<id>` of its user, and admins also join `admins`.
"""

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from .settings import get_settings

if TYPE_CHECKING:
    from socketio import AsyncRedisManager

CHANNEL = "multidb:socketio"
ADMINS_ROOM = "admins"


def user_room(user_id: str) -> str:
    return f"user:{user_id}"


@lru_cache
def _manager() -> "AsyncRedisManager":
    """A write-only manager: it publishes and never listens (created on first emit)."""
    import socketio

    return socketio.AsyncRedisManager(
        get_settings().message_broker_url,
        channel=CHANNEL,
        write_only=True,
        redis_options={"socket_connect_timeout": 2, "socket_timeout": 2},
    )


async def emit(event: str, data: Any = None, *, room: str | None = None) -> None:
    """Send `event` to a room (a user's, `admins`), or to every connection when room is None."""
    await _manager().emit(event, data, room=room, namespace="/")
