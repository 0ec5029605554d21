"""The application's Socket.IO client events. Each needs its code `SOCKET:<event>`, granted
through roles like a route's (admins pass); `make catalogue` lists them.

Who may reach whom: `message:send` reaches a user who may message too (holds
`SOCKET:message:send`, or is an admin), so messaging is opt-in on both sides through roles;
admins reach any active user. Anyone else is refused alike, whether they exist or not.
Whether another user is connected, and on how many sockets, is told only to holders of
`SOCKET:presence:user` (admins included): `message:send`'s `deliveredTo` is null otherwise.
"""

import uuid
from datetime import datetime
from typing import cast

from pydantic import Field
from redis.asyncio import Redis

from multidb.api.requests import RequestBody
from multidb.api.responses import CamelModel
from multidb.authz import Principal
from multidb.errors import Forbidden
from multidb.rbac import cached_grants, event_code, permission_key, version_key

from . import presence
from .registry import EventRegistry, Outbox, SocketId

events = EventRegistry()


class SessionPublic(CamelModel):
    connected_at: datetime
    user_agent: str
    current: bool = Field(description="This very connection")


@events.on("presence:list")
async def list_presence(principal: Principal, sid: SocketId, redis: Redis) -> list[SessionPublic]:
    """List your open connections, on every server, oldest first."""
    return [
        SessionPublic(connected_at=c.connected_at, user_agent=c.user_agent, current=c.sid == sid)
        for c in await presence.connections(redis, principal.user_id)
    ]


MESSAGE_CODE = event_code("message:send")
PRESENCE_CODE = event_code("presence:user")


class RecipientUnreachable(Forbidden, error="recipient_unreachable", message="you cannot message this user"):
    """Socket.IO `message:send` to a user who may not be messaged by the caller (or does not
    exist, or is disabled: one answer for all)."""


def sees_presence(principal: Principal) -> bool:
    return principal.admin or PRESENCE_CODE in principal.codes


class PresenceOf(RequestBody):
    user_id: uuid.UUID = Field(description="The user to look up")


class UserPresence(CamelModel):
    connections: int = Field(description="How many open connections the user has, on every server")


@events.on("presence:user")
async def user_presence(principal: Principal, body: PresenceOf, redis: Redis) -> UserPresence:
    """Tell how many open connections a user has, on every server (0: offline)."""
    return UserPresence(connections=len(await presence.connections(redis, str(body.user_id))))


class MessageSend(RequestBody):
    to: uuid.UUID = Field(description="The user to reach")
    text: str = Field(min_length=1, max_length=2000)


class MessageSent(CamelModel):
    delivered_to: int | None = Field(
        description="How many open connections of the user it reached; null unless you hold SOCKET:presence:user"
    )


@events.on("message:send")
async def send_message(principal: Principal, body: MessageSend, redis: Redis, outbox: Outbox) -> MessageSent:
    """Send a user who may message too a `message` {from, data: {text}} on all their open connections."""
    recipient = str(body.to)
    cached, version = cast(list[str | None], await redis.mget(permission_key(recipient), version_key(recipient)))
    grants = await cached_grants(redis, recipient, cached, version)
    reachable = grants is not None and grants.active and (principal.admin or grants.allows(MESSAGE_CODE))
    if not reachable:
        raise RecipientUnreachable()
    reached = len(await presence.connections(redis, recipient)) if sees_presence(principal) else None
    await outbox.to_user(recipient, "message", {"from": principal.user_id, "data": {"text": body.text}})
    return MessageSent(delivered_to=reached)
