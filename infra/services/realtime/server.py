"""The Socket.IO server: authenticated connections, a room per user, client events with
RBAC, revocations pushed from Redis, events relayed from functions and tasks.

Clients connect with their access token in the Socket.IO `auth` payload
(`io(url, {auth: {token}})`) or an `Authorization: Bearer` header, never in the URL, which
proxies log. A connection joins `user:<id>` (and `admins` for admins).

- Client events are the handlers of the modules REALTIME_HANDLERS names (by default
  `multidb.sockets.handlers`); each emit is checked against the user's current grants
  (`SOCKET:<event>`) and acknowledged in the response envelope.
- Logout, refresh reuse, password changes and resets, disabling and deleting a user are
  published on `multidb:notices` as they happen; every server ends the matching sockets at
  once, each first hearing `session:revoked` with the reason. A user whose grants changed
  hears `permissions:changed`.
- A sweep every REALTIME_SWEEP_INTERVAL ends sockets whose token expired (and, as a
  backstop, any that no longer pass), and keeps this server's presence entries alive.
"""

import asyncio
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import socketio
from socketio.exceptions import ConnectionRefusedError as Refused

from multidb import logs, notices
from multidb.authz import check
from multidb.errors import AppError, ServiceUnavailable
from multidb.realtime import ADMINS_ROOM, CHANNEL, user_room
from multidb.redis import get_redis
from multidb.security.tokens import Claims, TokenType, bearer, verify
from multidb.settings import get_settings
from multidb.sockets import presence

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from multidb.sockets.registry import EventRegistry

log = logs.get_logger("realtime")

REVOKED_EVENT = "session:revoked"
GRANTS_EVENT = "permissions:changed"


def _token(environ: dict[str, Any], auth: Any) -> str:
    """The token of the `auth` payload (`{token}`, with or without "Bearer"), else the header."""
    if isinstance(auth, dict) and isinstance(auth.get("token"), str):
        return bearer(auth["token"], bare=True)
    return bearer(environ.get("HTTP_AUTHORIZATION"))


@dataclass
class Realtime:
    """The server, and the claims of every open connection (to check, end and sweep them)."""

    sio: socketio.AsyncServer
    sessions: dict[str, Claims] = field(default_factory=dict)
    server: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    tasks: list[Any] = field(default_factory=list)

    @property
    def presence_ttl(self) -> int:
        return max(int(3 * get_settings().realtime_sweep_interval), 5)

    async def connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        try:
            token = _token(environ, auth)
        except AppError as exc:
            raise Refused("authentication required") from exc
        try:
            claims = verify(token, TokenType.ACCESS)
            principal = await check(claims, None)
            await presence.alive(get_redis(), self.server, self.presence_ttl)
            agent = str(environ.get("HTTP_USER_AGENT", ""))
            await presence.record(get_redis(), principal.user_id, self.server, sid, agent, self.presence_ttl)
        except ServiceUnavailable as exc:
            raise Refused("service unavailable") from exc
        except AppError as exc:
            raise Refused(exc.message) from exc
        self.sessions[sid] = claims
        await self.sio.enter_room(sid, user_room(principal.user_id))
        if principal.admin:
            await self.sio.enter_room(sid, ADMINS_ROOM)
        log.info("connected", extra={"fields": {"sid": sid, "user": principal.user_id}})

    async def disconnect(self, sid: str, reason: Any = None) -> None:
        claims = self.sessions.pop(sid, None)
        if claims is not None:
            try:
                await presence.forget(get_redis(), claims.sub, self.server, sid)
            except Exception as exc:  # the entry goes with this server's key anyway
                log.warning("could not forget a connection: %s", type(exc).__name__)

    async def ping(self, sid: str, data: Any = None) -> str:
        """Answer "pong" (with an ack): lets a client check its connection end to end."""
        return "pong"

    async def to_user(self, user_id: str, event: str, data: Any) -> None:
        """Every open socket of the user, on every server (the Redis manager relays it)."""
        await self.sio.emit(event, data, room=user_room(user_id))

    def handler(self, registry: "EventRegistry", name: str) -> Any:
        async def handle(sid: str, data: Any = None) -> dict[str, Any]:
            claims = self.sessions.get(sid)
            if claims is None:  # ended meanwhile
                return {"code": 401, "error": "not_authenticated", "message": "Not authenticated.", "data": None}
            return await registry.dispatch(name, sid, claims, data, self)

        return handle

    async def end(self, sid: str, reason: str) -> None:
        """Tell the socket why, then close it."""
        self.sessions.pop(sid, None)
        await self.sio.emit(REVOKED_EVENT, {"reason": reason}, to=sid, ignore_queue=True)
        await self.sio.disconnect(sid, ignore_queue=True)

    async def on_notice(self, notice: dict[str, Any]) -> int:
        """Act on a notice from `multidb:notices` for this server's own sockets; returns how many."""
        acted = 0
        if notice.get("type") == "revoked":
            for sid, claims in list(self.sessions.items()):
                if claims.sub != notice.get("user"):
                    continue
                if notice.get("family") and claims.fam != notice["family"]:
                    continue
                if notice.get("keep") and claims.fam == notice["keep"]:
                    continue
                await self.end(sid, str(notice.get("reason", "revoked")))
                acted += 1
        elif notice.get("type") == "grants":
            users = set(notice.get("users") or ())
            for sid, claims in list(self.sessions.items()):
                if claims.sub in users:
                    await self.sio.emit(GRANTS_EVENT, {}, to=sid, ignore_queue=True)
                    acted += 1
        return acted

    async def listen(self) -> None:
        """Follow `multidb:notices` for the server's life, reconnecting after an outage."""
        while True:
            try:
                async with _subscriber().pubsub() as pubsub:
                    await pubsub.subscribe(notices.CHANNEL)
                    log.info("following revocations and grant changes")
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            await self.on_notice(json.loads(message["data"]))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error("lost the notice channel (%s); again in 1 s", type(exc).__name__)
                await asyncio.sleep(1)

    async def sweep_once(self) -> int:
        """End every connection whose token has expired or no longer passes; returns how many."""
        now = time.time()
        ended = 0
        await presence.alive(get_redis(), self.server, self.presence_ttl)
        for sid, claims in list(self.sessions.items()):
            if claims.exp > now:
                try:
                    await check(claims, None)
                    continue
                except ServiceUnavailable:
                    continue  # an outage is not a revocation; the next sweep decides
                except AppError as exc:
                    reason = exc.message
            else:
                reason = "token expired"
            await self.end(sid, reason)
            ended += 1
        return ended

    async def sweep(self) -> None:
        interval = get_settings().realtime_sweep_interval
        while True:
            await self.sio.sleep(interval)
            try:
                await self.sweep_once()
            except Exception:
                log.exception("sweep failed")


def _subscriber() -> "Redis":
    """A connection of its own for the subscription: it waits for messages without a read
    timeout (the shared client's 2 s would drop it between notices)."""
    settings = get_settings()
    if settings.redis_url.startswith("memory://"):
        return get_redis()
    from redis.asyncio import Redis

    return Redis.from_url(
        settings.redis_url,
        decode_responses=True,
        socket_connect_timeout=2,
        socket_keepalive=True,
        health_check_interval=15,
    )


def registries() -> list["EventRegistry"]:
    """The client events of every module REALTIME_HANDLERS names, imported explicitly."""
    from importlib import import_module

    modules = [name.strip() for name in get_settings().realtime_handlers.split(",") if name.strip()]
    return [import_module(name).events for name in modules]


def create_realtime() -> Realtime:
    settings = get_settings()
    origins = [origin.strip() for origin in settings.realtime_cors_origins.split(",") if origin.strip()]
    manager = socketio.AsyncRedisManager(settings.message_broker_url, channel=CHANNEL)
    sio = socketio.AsyncServer(async_mode="asgi", client_manager=manager, cors_allowed_origins=origins)
    realtime = Realtime(sio)
    sio.on("connect", realtime.connect)
    sio.on("disconnect", realtime.disconnect)
    sio.on("ping", realtime.ping)
    for registry in registries():
        for name in registry.events:
            sio.on(name, realtime.handler(registry, name))
    return realtime


def create_app() -> socketio.ASGIApp:
    realtime = create_realtime()

    async def start() -> None:
        # Kept referenced: asyncio holds only weak references to tasks, and collects them.
        realtime.tasks = [
            realtime.sio.start_background_task(realtime.sweep),
            realtime.sio.start_background_task(realtime.listen),
        ]

    return socketio.ASGIApp(realtime.sio, on_startup=start)
