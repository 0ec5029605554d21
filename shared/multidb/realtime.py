"""Emit Socket.IO events from anywhere: functions and Celery tasks publish them on Redis,
and the Socket.IO server (infra/services/realtime) delivers them to the connected clients.

Rooms: every connection joins `user:<id>` of its user, and admins also join `admins`.
"""

import asyncio
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from .settings import get_settings

if TYPE_CHECKING:
    from socketio import AsyncRedisManager

CHANNEL = "multidb:socketio"
ADMINS_ROOM = "admins"


def user_room(user_id: str) -> str:
    return f"user:{user_id}"


def manager(url: str, *, write_only: bool = False) -> "AsyncRedisManager":
    """A Socket.IO Redis manager on this process's bounded clients (`multidb.redis.client_of`):
    it publishes through a pool of REDIS_MAX_CONNECTIONS that replaces connections Redis
    closed, and listens on a subscriber connection of its own."""
    return _manager_class()(url, channel=CHANNEL, write_only=write_only)


@lru_cache(maxsize=1)
def _manager_class() -> "type[AsyncRedisManager]":
    import socketio

    from .redis import client_of

    class Manager(socketio.AsyncRedisManager):  # type: ignore[misc]
        closing: "set[asyncio.Task[None]]" = set()

        def _redis_connect(self) -> None:
            # python-socketio would make a new client (and pool) per (re)connect, with no
            # bound and no retry: a connection Redis closed then fails a publish, and the
            # pool it leaves behind is never closed.
            self.redis = client_of(self.redis_url, raw=True)
            failed = getattr(self, "pubsub", None)
            if failed is not None:  # it failed: give its connection back to the pool
                task = asyncio.get_running_loop().create_task(failed.aclose())
                self.closing.add(task)
                task.add_done_callback(self.closing.discard)
            self.pubsub = client_of(self.redis_url, subscriber=True, raw=True).pubsub(ignore_subscribe_messages=True)
            self.connected = True

    return Manager


@lru_cache
def _manager() -> "AsyncRedisManager":
    """A write-only manager: it publishes and never listens (created on first emit)."""
    return manager(get_settings().message_broker_url, write_only=True)


async def emit(event: str, data: Any = None, *, room: str | None = None) -> None:
    """Send `event` to a room (a user's, `admins`), or to every connection when room is None."""
    await _manager().emit(event, data, room=room, namespace="/")
