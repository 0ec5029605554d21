"""Socket.IO client events declared like routes: parameters resolved by type, RBAC per event,
and the answer sent back as the acknowledgement in the `{code, message, ts, data}` envelope.

    events = EventRegistry()

    @events.on("message:send")
    async def send(principal: Principal, body: MessageSend, outbox: Outbox) -> MessageSent: ...

A handler's parameters are filled by their annotations: the caller's `Principal` (checked
against the event's code `SOCKET:<event>` on every emit, so a revoked grant counts on the
very next one), one Pydantic model (the payload, validated), the `Redis` client, an
`AsyncSession` (closed after the handler), the `Settings`, an `Outbox` to reach users'
sockets, and `SocketId`. A bad payload acknowledges 422 with the field errors, a missing
grant 403 (and nothing runs), a failure 500 with a request id and no exception text; the
connection survives each. Handlers are registered by importing their module explicitly.
"""

import inspect
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any, NewType, Protocol, get_type_hints

from pydantic import BaseModel, ValidationError

from multidb import logs
from multidb.api.responses import ErrorResponse, FieldError, Response
from multidb.authz import Principal, check
from multidb.errors import AppError, InternalError, InvalidInput, NotFound
from multidb.rbac import event_code
from multidb.security.tokens import Claims

log = logs.get_logger("sockets")

SocketId = NewType("SocketId", str)


class UnknownEvent(NotFound, error="unknown_event", message="Unknown event."):
    """A Socket.IO event no handler serves, sent asking for an acknowledgement."""


Handler = Callable[..., Awaitable[Any]]


class Outbox(Protocol):
    """Reach sockets from a handler: every open socket of a user, on every server."""

    async def to_user(self, user_id: str, event: str, data: Any) -> None: ...


@dataclass(frozen=True, slots=True)
class Event:
    name: str
    handler: Handler
    description: str

    @property
    def code(self) -> str:
        return event_code(self.name)


class EventRegistry:
    def __init__(self) -> None:
        self.events: dict[str, Event] = {}

    def on(self, name: str) -> Callable[[Handler], Handler]:
        """Declare the handler of a client event."""

        def register(handler: Handler) -> Handler:
            if name in self.events:
                raise ValueError(f"event {name!r} is already handled")
            _check_resolvable(handler)
            summary = (inspect.getdoc(handler) or "").strip().split("\n")[0]
            self.events[name] = Event(name, handler, summary)
            return handler

        return register

    async def dispatch(self, name: str, sid: str, claims: Claims, data: Any, outbox: Outbox) -> dict[str, Any]:
        """Run the event's handler for this connection; always answer an acknowledgement."""
        event = self.events[name]
        rid = uuid.uuid4().hex
        token = logs.request_id.set(rid)
        try:
            principal = await check(claims, event.code)
            async with _Arguments(event.handler, principal, sid, data, outbox) as arguments:
                result = await event.handler(**arguments)
            payload = result.model_dump(mode="json", by_alias=True) if isinstance(result, BaseModel) else result
            return Response[Any](data=payload).model_dump(mode="json", by_alias=True)
        except ValidationError as exc:
            fields = [FieldError(field=".".join(map(str, e["loc"])), message=e["msg"]) for e in exc.errors()]
            return _error(InvalidInput(), fields)
        except AppError as exc:
            return _error(exc)
        except Exception as exc:
            log.exception("event %s failed: %s", name, type(exc).__name__)
            return _error(InternalError(f"Internal server error (request {rid})."))
        finally:
            log.info("event", extra={"fields": {"event": name, "sid": sid}})
            logs.request_id.reset(token)


def _error(exc: AppError, fields: list[FieldError] | None = None) -> dict[str, Any]:
    body = ErrorResponse(code=exc.status_code, error=exc.error, message=exc.message, data=fields)
    return body.model_dump(mode="json", by_alias=True)


def _kinds() -> dict[str, type]:
    from redis.asyncio import Redis
    from sqlmodel.ext.asyncio.session import AsyncSession

    from multidb.settings import Settings

    return {"principal": Principal, "redis": Redis, "session": AsyncSession, "settings": Settings}


def _parameters(handler: Handler) -> dict[str, Any]:
    hints = get_type_hints(handler)
    return {name: hints[name] for name in inspect.signature(handler).parameters}


def _check_resolvable(handler: Handler) -> None:
    """Fail at import, not at the first emit, when a parameter cannot be filled."""
    kinds = _kinds()
    payloads = 0
    for name, hint in _parameters(handler).items():
        if hint in kinds.values() or hint is SocketId or hint is Outbox:
            continue
        if isinstance(hint, type) and issubclass(hint, BaseModel):
            payloads += 1
            continue
        raise TypeError(f"{handler.__name__}: cannot fill parameter {name!r} of type {hint!r}")
    if payloads > 1:
        raise TypeError(f"{handler.__name__}: one payload model at most")


class _Arguments:
    """The handler's arguments, with a database session opened for it (and closed after)."""

    def __init__(self, handler: Handler, principal: Principal, sid: str, data: Any, outbox: Outbox) -> None:
        self.handler, self.principal, self.sid, self.data, self.outbox = handler, principal, sid, data, outbox
        self.stack = AsyncExitStack()

    async def __aenter__(self) -> dict[str, Any]:
        from redis.asyncio import Redis
        from sqlmodel.ext.asyncio.session import AsyncSession

        from multidb.db import session_scope
        from multidb.redis import get_redis
        from multidb.settings import Settings, get_settings

        arguments: dict[str, Any] = {}
        for name, hint in _parameters(self.handler).items():
            if hint is Principal:
                arguments[name] = self.principal
            elif hint is SocketId:
                arguments[name] = SocketId(self.sid)
            elif hint is Outbox:
                arguments[name] = self.outbox
            elif hint is Redis:
                arguments[name] = get_redis()
            elif hint is Settings:
                arguments[name] = get_settings()
            elif hint is AsyncSession:  # committed if the handler succeeds, like a request's
                arguments[name] = await self.stack.enter_async_context(session_scope())
            else:
                arguments[name] = hint.model_validate({} if self.data is None else self.data)
        return arguments

    async def __aexit__(self, *exc: Any) -> None:
        await self.stack.__aexit__(*exc)
