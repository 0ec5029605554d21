"""The Socket.IO server: authenticated connections, a room per user, events from Redis.

Clients connect with their access token in the Socket.IO `auth` payload
(`io(url, {auth: {token}})`) or an `Authorization: Bearer` header, never in the URL, which
proxies log. A connection joins `user:<id>` (and `admins` for admins). Functions and Celery
tasks emit through `multidb.realtime`; the Redis manager relays those to the sockets here.
A sweep ends connections whose token expired or was revoked (logout, a disabled user).
"""

import time
from dataclasses import dataclass, field
from typing import Any

import socketio
from socketio.exceptions import ConnectionRefusedError as Refused

from multidb import logs
from multidb.authz import check
from multidb.errors import AppError, ServiceUnavailable
from multidb.realtime import ADMINS_ROOM, CHANNEL, user_room
from multidb.security.tokens import Claims, TokenType, verify
from multidb.settings import get_settings

log = logs.get_logger("realtime")


def _token(environ: dict[str, Any], auth: Any) -> str | None:
    if isinstance(auth, dict) and isinstance(auth.get("token"), str):
        return str(auth["token"]).removeprefix("Bearer ").strip() or None
    header = str(environ.get("HTTP_AUTHORIZATION", ""))
    scheme, _, credentials = header.partition(" ")
    return credentials.strip() or None if scheme.lower() == "bearer" else None


@dataclass
class Realtime:
    """The server and the claims of every open connection (to sweep them)."""

    sio: socketio.AsyncServer
    sessions: dict[str, Claims] = field(default_factory=dict)

    async def connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        token = _token(environ, auth)
        if token is None:
            raise Refused("authentication required")
        try:
            claims = verify(token, TokenType.ACCESS)
            principal = await check(claims, None)
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
        self.sessions.pop(sid, None)

    async def ping(self, sid: str, data: Any = None) -> str:
        """Answer "pong" (with an ack): lets a client check its connection end to end."""
        return "pong"

    async def sweep_once(self) -> int:
        """Disconnect every connection whose token has expired or no longer passes; returns how many."""
        now = time.time()
        ended = 0
        for sid, claims in list(self.sessions.items()):
            if claims.exp > now:
                try:
                    await check(claims, None)
                    continue
                except ServiceUnavailable:
                    continue  # an outage is not a revocation; the next sweep decides
                except AppError:
                    pass
            self.sessions.pop(sid, None)
            await self.sio.disconnect(sid)
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


def create_realtime() -> Realtime:
    settings = get_settings()
    origins = [origin.strip() for origin in settings.realtime_cors_origins.split(",") if origin.strip()]
    manager = socketio.AsyncRedisManager(settings.message_broker_url, channel=CHANNEL)
    sio = socketio.AsyncServer(async_mode="asgi", client_manager=manager, cors_allowed_origins=origins)
    realtime = Realtime(sio)
    sio.on("connect", realtime.connect)
    sio.on("disconnect", realtime.disconnect)
    sio.on("ping", realtime.ping)
    return realtime


def create_app() -> socketio.ASGIApp:
    realtime = create_realtime()

    async def start_sweep() -> None:
        realtime.sio.start_background_task(realtime.sweep)

    return socketio.ASGIApp(realtime.sio, on_startup=start_sweep)
