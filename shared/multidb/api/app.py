"""The FastAPI app factory and the Mangum handler factory every API function uses."""

import time
import uuid
from collections.abc import Callable, Coroutine
from typing import Any, cast

from fastapi import APIRouter, FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_dependant
from fastapi.routing import APIRoute
from mangum import Mangum
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import logs, runtime, snapstart
from ..errors import AppError, BackendUnavailable, BadRequest, InternalError, InvalidInput, ServiceUnavailable
from ..secrets import ConfigurationUnavailable
from ..settings import get_settings
from .errors import ANSWERS, envelope, error_responses, is_outage, merged
from .requests import refuse_nul

API_PREFIX = "/api/v1"

log = logs.get_logger("access")


class RequestContextMiddleware:
    """Give every request a correlation id, log one line for it, and turn crashes into a 500
    envelope (503 when a database or cache is out of reach)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = _request_id(scope)
        token = logs.request_id.set(rid)
        client = scope.get("client")
        ip_token = logs.client_ip.set(client[0] if client else None)
        agent = next((v.decode("latin-1")[:512] for k, v in scope.get("headers", []) if k == b"user-agent"), None)
        agent_token = logs.user_agent.set(agent)
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                message["headers"] = _secure_headers(scope, message.get("headers", []), rid)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            if is_outage(exc):
                log.error("backend unavailable: %s", type(exc).__name__)
                answer = envelope(BackendUnavailable())
            else:
                log.exception("unhandled %s", type(exc).__name__)
                answer = envelope(InternalError(f"Internal server error (request {rid})."))
            if not response_started:
                await answer(scope, receive, send_with_id)
        finally:
            route = scope.get("route")
            log.info(
                "request",
                extra={
                    "fields": {
                        "method": scope["method"],
                        "route": getattr(route, "path", None),
                        "status": status,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    }
                },
            )
            logs.request_id.reset(token)
            logs.client_ip.reset(ip_token)
            logs.user_agent.reset(agent_token)


HSTS = b"max-age=31536000; includeSubDomains"


def _secure_headers(scope: Scope, headers: list[tuple[bytes, bytes]], rid: str) -> list[tuple[bytes, bytes]]:
    """Headers every API response carries: its request id, no MIME sniffing, no caching
    unless the route chose otherwise (tokens and personal data must not sit in a cache),
    and HSTS when it was served over HTTPS (always, behind API Gateway)."""
    present = {name.lower() for name, _ in headers}
    extra = [(b"x-request-id", rid.encode()), (b"x-content-type-options", b"nosniff")]
    if b"cache-control" not in present:
        extra.append((b"cache-control", b"no-store"))
    if scope.get("scheme") == "https":
        extra.append((b"strict-transport-security", HSTS))
    return [*headers, *extra]


def _request_id(scope: Scope) -> str:
    event = scope.get("aws.event") or {}
    rid = (event.get("requestContext") or {}).get("requestId")
    if not rid:
        for name, value in scope.get("headers", []):
            if name == b"x-request-id" and 0 < len(value) <= 128:
                rid = value.decode("latin-1")
                break
    return str(rid or uuid.uuid4())


# What every route may answer: anything unexpected (500); settings, keys or a datastore out of reach (503).
EVERY_ROUTE: tuple[type[AppError], ...] = (
    InternalError,
    ServiceUnavailable,
    BackendUnavailable,
    ConfigurationUnavailable,
)


def answers(dependant: Dependant) -> set[type[AppError]]:
    """The errors a route can answer without declaring them, as its OpenAPI document lists
    them: `EVERY_ROUTE`'s; 422 `invalid_input` when it takes parameters or a body, and 400
    when a body does not parse; what its dependencies declare (`ANSWERS`: the caller check
    adds its 401s and 403s, a database session `database_unavailable`). The route's own
    domain errors it declares itself (`responses=error_responses(RoleNotFound, RoleCodeTaken)`)."""
    found = set(EVERY_ROUTE)
    pending = [dependant]
    while pending:
        current = pending.pop()
        pending.extend(current.dependencies)
        if current.path_params or current.query_params or current.header_params or current.body_params:
            found.add(InvalidInput)
        if current.body_params:
            found.add(BadRequest)  # a body that does not even parse
        found.update(getattr(current.call, ANSWERS, ()))
    return found


class DocumentedRoute(APIRoute):
    """A route whose OpenAPI responses list the error envelope for each status it can answer
    (`answers`), and no other: routers use it as their `route_class`."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        dependant = get_dependant(path=path, call=endpoint)
        for depends in kwargs.get("dependencies") or ():
            dependant.dependencies.append(get_dependant(path=path, call=depends.dependency))
        derived = answers(dependant)
        kwargs["responses"] = merged(error_responses(*derived), kwargs.get("responses") or {})
        self._takes_input = InvalidInput in derived  # set first: APIRoute builds the handler in __init__
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The route's handler, refusing a NUL in any input first (`requests.refuse_nul`); a
        route that takes no input reads none, and is left as it is."""
        handler = super().get_route_handler()
        if not self._takes_input:
            return handler

        async def without_nul(request: Request) -> Response:
            await refuse_nul(request)
            return await handler(request)

        return without_nul


class DocumentedApp(FastAPI):
    """An app whose error responses state the `error` names they list as `allOf` the envelope
    and the names: FastAPI writes the model's `$ref` beside them, where generators
    (openapi-typescript) read the `$ref` alone."""

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            for methods in super().openapi().get("paths", {}).values():
                for operation in methods.values():
                    for response in operation.get("responses", {}).values():
                        content = response.get("content", {}).get("application/json", {})
                        schema = content.get("schema", {})
                        if "$ref" in schema and len(schema) > 1:
                            content["schema"] = {"allOf": [{"$ref": schema.pop("$ref")}, schema]}
        return cast(dict[str, Any], self.openapi_schema)


def create_app(title: str, *routers: APIRouter) -> FastAPI:
    """A function's FastAPI app: errors in the envelope (routers use `DocumentedRoute`).

    Routers carry their full prefix (`/api/v1/...`) themselves: the route a request
    matched then knows the whole path template its permission code is made from.
    """
    from .errors import install_error_handlers

    app = DocumentedApp(title=title, docs_url=None, redoc_url=None, openapi_url=None)
    for router in routers:
        app.include_router(router)
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware)
    return app


_UNROUTED: dict[str, Any] = {
    "version": "2.0",
    "routeKey": "$default",
    "rawPath": "/snapstart/warm-up",
    "rawQueryString": "",
    "headers": {"user-agent": "snapstart"},
    "requestContext": {
        "http": {"method": "GET", "path": "/snapstart/warm-up", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1"},
        "requestId": "snapstart-warm-up",
        "routeKey": "$default",
        "stage": "$default",
    },
    "isBase64Encoded": False,
}


def create_handler(
    app: FastAPI, *, prime: tuple[str, ...] = (), warm: Callable[[], None] | None = None
) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """Wrap an app for Lambda. Lifespan is off: it would run startup on every invocation.

    Under SnapStart, init also imports the modules a first request loads lazily (`prime`,
    beside the common ones) and runs `warm`, and the snapshot hooks are installed
    (`multidb.snapstart`); otherwise both wait for the first request, as they always did.
    """
    runtime.get_loop()
    adapter = Mangum(app, lifespan="off")

    def warm_up() -> None:
        # FastAPI builds every route's validators on the first request it routes: one to a
        # path no route serves builds them with no I/O (404, before any dependency runs).
        adapter(_UNROUTED, cast(Any, None))  # Mangum keeps the context in the scope only
        if warm is not None:
            warm()

    # anyio's asyncio backend: FastAPI loads it on the first request that runs a dependency.
    snapstart.prime("anyio._backends._asyncio", *prime, warm=warm_up)

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        try:
            logs.configure(get_settings().log_level)
        except AppError:  # unreadable settings: the request itself answers 503 in the envelope
            logs.configure()
        runtime.get_loop()
        return adapter(event, context)

    return handler
