"""The application's Socket.IO client events. Each needs its code `SOCKET:<event>`, granted
through roles like a route's (admins pass); `make catalogue` lists them."""

import uuid
from datetime import datetime

from pydantic import Field
from redis.asyncio import Redis

from ..api.requests import RequestBody
from ..api.responses import CamelModel
from ..authz import Principal
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


class MessageSend(RequestBody):
    to: uuid.UUID = Field(description="The user to reach")
    text: str = Field(min_length=1, max_length=2000)


class MessageSent(CamelModel):
    delivered_to: int = Field(description="How many open connections of the user it reached")


@events.on("message:send")
async def send_message(principal: Principal, body: MessageSend, redis: Redis, outbox: Outbox) -> MessageSent:
    """Send a user a `message` {from, data: {text}} on all their open connections."""
    reached = len(await presence.connections(redis, str(body.to)))
    await outbox.to_user(str(body.to), "message", {"from": principal.user_id, "data": {"text": body.text}})
    return MessageSent(delivered_to=reached)
