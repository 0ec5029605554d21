"""The Socket.IO server: authenticated connections, a room per user, client events with
RBAC, revocations pushed from Redis, events relayed from functions and tasks.

Clients connect with their access token in the Socket.IO `auth` payload
(`io(url, {auth: {token}})`) or an `Authorization: Bearer` header, never in the URL, which
proxies log. A connection joins `user:<id>` (and `admins` for admins).

- Client events are the handlers of `infra.services.realtime.handlers`, the events the route
  catalogue lists; each emit is checked against the user's current grants
  (`SOCKET:<event>`) and acknowledged in the response envelope.
- Logout, refresh reuse, password changes and resets, disabling and deleting a user are
  published on `multidb:notices` as they happen; every server ends the matching sockets at
  once, each first hearing `session:revoked` with the reason. A user whose grants changed
  hears `permissions:changed`.
- Client events are rate limited per connection and per user (`limits.py`):
  over the limit an event is acknowledged 429, and a connection that keeps sending while
  refused is closed.
- Each socket is closed when its token expires (a timer per connection), and an event sent
  by an expired session is refused at once.
- A sweep every REALTIME_SWEEP_INTERVAL ends sockets that no longer pass (a backstop behind
  the push), renews this server's presence entries and closes idle Redis connections.
"""

import asyncio
import json
import re
import time
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import socketio
from socketio.exceptions import ConnectionRefusedError as Refused

from multidb import logs, notices
from multidb import redis as clients
from multidb.authz import check
from multidb.errors import AppError, Forbidden, ServiceUnavailable, Unauthorized
from multidb.realtime import ADMINS_ROOM, manager, user_room
from multidb.redis import client_of, get_redis
from multidb.security.tokens import Claims, TokenExpired, TokenType, bearer, verify
from multidb.settings import Environment, get_settings

from . import handlers, limits, presence
from .registry import UnknownEvent

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from .registry import EventRegistry

log = logs.get_logger("realtime")

REVOKED_EVENT = "session:revoked"
GRANTS_EVENT = "permissions:changed"
EXPIRED = "token expired"


def _token(environ: dict[str, Any], auth: Any) -> str:
    """The token of the `auth` payload (`{token}`, with or without "Bearer"), else the header."""
    if isinstance(auth, dict) and isinstance(auth.get("token"), str):
        return bearer(auth["token"], bare=True)
    return bearer(environ.get("HTTP_AUTHORIZATION"))


@dataclass(slots=True)
class Session:
    """One open connection: its claims, its presence entry, its bucket and its expiry timer."""

    claims: Claims
    entry: str  # its presence entry, as recorded at connect and renewed by the sweep
    bucket: limits.Bucket
    expiry: asyncio.TimerHandle | None = None


class OriginNotAccepted(Forbidden, error="origin_not_accepted"):
    """A Socket.IO connection from an origin outside `REALTIME_CORS_ORIGINS`."""


def _ack(exc: AppError) -> dict[str, Any]:
    return {
        "code": exc.status_code,
        "error": exc.error,
        "message": exc.message,
        "ts": int(time.time() * 1000),
        "data": None,
    }


def _refuse(exc: AppError) -> Refused:
    """A refusal the client reads in `connect_error`: `err.message` is the reason and `err.data`
    the error envelope's fields (`{code, error, message}`)."""
    return Refused(exc.message, {"code": exc.status_code, "error": exc.error, "message": exc.message})


# Under `make dev` (APP_ENV=LOCAL) any local dev server or script may connect.
LOCAL_ORIGIN = re.compile(r"http://(localhost|127\.0\.0\.1)(:\d{1,5})?")


@dataclass(frozen=True)
class Origins:
    """The origins a browser may connect from: the exact list (REALTIME_CORS_ORIGINS), and under
    APP_ENV=LOCAL every `http://localhost:<port>` and `http://127.0.0.1:<port>` too."""

    exact: frozenset[str]
    local: bool

    @classmethod
    def from_settings(cls) -> "Origins":
        settings = get_settings()
        exact = frozenset(origin.strip() for origin in settings.realtime_cors_origins.split(",") if origin.strip())
        return cls(exact, settings.app_env == Environment.LOCAL)

    def accepts(self, origin: str) -> bool:
        return origin in self.exact or (self.local and LOCAL_ORIGIN.fullmatch(origin) is not None)

    def describe(self) -> str:
        listed = ", ".join(sorted(self.exact)) or "none"
        return f"{listed}, any http://localhost:<port> or http://127.0.0.1:<port>" if self.local else listed

    def transport(self) -> list[str] | Any:
        """What Engine.IO checks before Socket.IO runs. In production the exact list: a refused
        origin gets a bare 400. Under LOCAL every origin passes the transport, and `connect`
        refuses the others with the reason, which the client's `connect_error` shows."""
        if self.local:
            return lambda origin, environ=None: True
        return sorted(self.exact)


@dataclass
class Realtime:
    """The server, and the sessions of every open connection (to check, limit, end and sweep them)."""

    sio: socketio.AsyncServer
    origins: Origins = field(default_factory=Origins.from_settings)
    sessions: dict[str, Session] = field(default_factory=dict)
    server: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    tasks: list[Any] = field(default_factory=list)
    spawned: set[Any] = field(default_factory=set)

    @property
    def presence_ttl(self) -> int:
        return max(int(3 * get_settings().realtime_sweep_interval), 5)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run `coro` in the background, referenced until it ends (asyncio keeps only weak ones)."""
        task = asyncio.ensure_future(coro)
        self.spawned.add(task)
        task.add_done_callback(self.spawned.discard)

    async def connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        origin = environ.get("HTTP_ORIGIN")
        if origin and not self.origins.accepts(str(origin)):
            message = f"origin {origin} is not accepted (accepted: {self.origins.describe()}; REALTIME_CORS_ORIGINS)"
            raise _refuse(OriginNotAccepted(message))
        try:
            token = _token(environ, auth)
        except AppError as exc:
            raise _refuse(Unauthorized("authentication required")) from exc
        try:
            claims = verify(token, TokenType.ACCESS)
            if claims.exp <= time.time():  # within JWT_LEEWAY: it would be closed at once
                raise _refuse(TokenExpired(EXPIRED))
            principal = await check(claims, None)
            await presence.alive(get_redis(), self.server, self.presence_ttl)
            agent = str(environ.get("HTTP_USER_AGENT", ""))
            entry = presence.entry(agent)
            await presence.record(get_redis(), principal.user_id, self.server, sid, entry, self.presence_ttl)
        except ServiceUnavailable as exc:
            raise _refuse(ServiceUnavailable("service unavailable")) from exc
        except AppError as exc:
            raise _refuse(exc) from exc
        settings = get_settings()
        bucket = limits.Bucket(
            settings.realtime_events_per_second, settings.realtime_events_burst, settings.realtime_events_hard_limit
        )
        session = self.sessions[sid] = Session(claims, entry, bucket)
        # Closed at `exp`, not at the first sweep after it.
        delay = claims.exp - time.time()
        session.expiry = asyncio.get_running_loop().call_later(delay, lambda: self.spawn(self.end(sid, EXPIRED)))
        await self.sio.enter_room(sid, user_room(principal.user_id))
        if principal.admin:
            await self.sio.enter_room(sid, ADMINS_ROOM)
        log.info("connected", extra={"fields": {"sid": sid, "user": principal.user_id}})

    async def drop(self, sid: str) -> Session | None:
        """Forget a connection, whoever ends it first (the client, or `end`): its session, its
        timer and its presence entry; returns the session, or None if it was gone already."""
        session = self.sessions.pop(sid, None)
        if session is None:
            return None
        if session.expiry is not None:
            session.expiry.cancel()
        try:
            await presence.forget(get_redis(), session.claims.sub, self.server, sid)
        except Exception as exc:  # the entry goes with this server's key anyway
            log.warning("could not forget a connection: %s", type(exc).__name__)
        return session

    async def disconnect(self, sid: str, reason: Any = None) -> None:
        await self.drop(sid)

    async def ping(self, sid: str, data: Any = None) -> str | dict[str, Any]:
        """Answer "pong" (with an ack): lets a client check its connection end to end. Limited
        like every client event (a refusal is the error envelope)."""
        return await self.admit(sid) or "pong"

    async def to_user(self, user_id: str, event: str, data: Any) -> None:
        """Every open socket of the user, on every server (the Redis manager relays it)."""
        await self.sio.emit(event, data, room=user_room(user_id))

    async def unknown(self, event: str, sid: str, *data: Any) -> dict[str, Any]:
        """Any event no handler serves: acknowledged 404 when the client asked for an ack (so
        `emitWithAck` does not wait forever), and limited like every client event."""
        return await self.admit(sid) or _ack(UnknownEvent(f"Unknown event: {event[:100]}."))

    def handler(self, registry: "EventRegistry", name: str) -> Any:
        async def handle(sid: str, data: Any = None) -> dict[str, Any]:
            refused = await self.admit(sid)
            if refused is not None:
                return refused
            session = self.sessions.get(sid)
            if session is None:  # closed while it waited for the user's bucket: a flood's last events
                return _ack(Unauthorized())
            return await registry.dispatch(name, sid, session.claims, data, self)

        return handle

    async def admit(self, sid: str) -> dict[str, Any] | None:
        """None if the connection may send this event now, else the acknowledgement that refuses it."""
        session = self.sessions.get(sid)
        if session is None:  # ended meanwhile
            return _ack(Unauthorized())
        if session.claims.exp <= time.time():  # its timer is due, or late: refuse now, close now
            self.spawn(self.end(sid, EXPIRED))
            return _ack(TokenExpired("Token expired."))
        match session.bucket.take():
            case limits.Verdict.CLOSE:
                log.warning("closing a connection over its event limit", extra={"fields": {"sid": sid}})
                self.spawn(self.close(sid))  # after this acknowledgement has gone out
                return _ack(limits.TooManyEvents("Too many events: the connection is closed."))
            case limits.Verdict.REFUSE:
                wait = session.bucket.wait()
                return _ack(limits.TooManyEvents(f"Too many events on this connection; retry in {wait:.1f} s."))
        settings = get_settings()
        try:
            wait = await limits.take_user(
                get_redis(),
                session.claims.sub,
                settings.realtime_user_events_per_second,
                settings.realtime_user_events_burst,
            )
        except Exception as exc:  # fail closed, as every check does
            log.error("the user's event limit is unavailable: %s", type(exc).__name__)
            return _ack(ServiceUnavailable())
        if wait:
            return _ack(limits.TooManyEvents(f"Too many events from your connections; retry in {wait:.1f} s."))
        return None

    async def close(self, sid: str) -> None:
        await self.drop(sid)
        await self.sio.disconnect(sid, ignore_queue=True)

    async def end(self, sid: str, reason: str) -> None:
        """Tell the socket why its session ended, then close it (once, whoever asks twice)."""
        if await self.drop(sid) is None:
            return
        await self.sio.emit(REVOKED_EVENT, {"reason": reason}, to=sid, ignore_queue=True)
        await self.sio.disconnect(sid, ignore_queue=True)

    async def on_notice(self, notice: dict[str, Any]) -> int:
        """Act on a notice from `multidb:notices` for this server's own sockets; returns how many."""
        acted = 0
        if notice.get("type") == "revoked":
            for sid, session in list(self.sessions.items()):
                claims = session.claims
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
            for sid, session in list(self.sessions.items()):
                if session.claims.sub in users:
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
        """End every connection whose token has expired or no longer passes, renew this
        server's presence, close idle Redis connections; returns how many sockets it ended."""
        now = time.time()
        ended = 0
        try:
            await self.renew()
        except Exception as exc:  # an outage must not stop the checks below
            log.warning("could not renew presence: %s", type(exc).__name__)
        for sid, session in list(self.sessions.items()):
            if session.claims.exp > now:
                try:
                    await check(session.claims, None)
                    continue
                except ServiceUnavailable:
                    continue  # an outage is not a revocation; the next sweep decides
                except AppError as exc:
                    reason = exc.message
            else:
                reason = EXPIRED
            await self.end(sid, reason)
            ended += 1
        await clients.shrink()
        return ended

    async def renew(self) -> None:
        """Keep this server's key and its sockets' presence entries alive for another ttl:
        a socket held open for hours stays listed."""
        held = [(sid, session.claims.sub, session.entry) for sid, session in self.sessions.items()]
        await presence.renew(get_redis(), self.server, held, self.presence_ttl)
        # A socket dropped while that ran may have had its entry written back after it was
        # forgotten: forget it again (a drop after it finished found the entry written).
        gone = [(sid, user) for sid, user, _ in held if sid not in self.sessions]
        for sid, user in gone:
            await presence.forget(get_redis(), user, self.server, sid)

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
    return client_of(get_settings().redis_url, subscriber=True)


def create_realtime() -> Realtime:
    settings = get_settings()
    origins = Origins.from_settings()
    sio = socketio.AsyncServer(
        async_mode="asgi",
        client_manager=manager(settings.message_broker_url),
        cors_allowed_origins=origins.transport(),
    )
    realtime = Realtime(sio, origins)
    sio.on("connect", realtime.connect)
    sio.on("disconnect", realtime.disconnect)
    sio.on("ping", realtime.ping)
    sio.on("*", realtime.unknown)
    for name in handlers.events.events:
        sio.on(name, realtime.handler(handlers.events, name))
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
