"""The local API gateway over HTTP: what `sam local start-api` does, without Docker.

Routes, the authorizer and CORS come from template.yaml; requests become real payload 2.0
events for the real handlers. Functions run one request at a time on one worker thread
(each Lambda container serves one request at a time, and the handlers keep their event
loop and connection pools on that thread between requests).
"""

import asyncio
import json
import os
import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from typing import TYPE_CHECKING, Any

from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import Receive, Scope, Send

from ...deploy.template import load
from .docs import merged_openapi
from .invoke import GatewayResponse, LocalGateway

if TYPE_CHECKING:
    import uvicorn

STATIC = "/docs/static/"
# API Gateway refuses a payload over 10 MB before any function sees it; so does this gateway.
MAX_BODY_BYTES = 10 * 1024 * 1024
STATIC_FILES = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon.png": "image/png",
    "redoc.standalone.js": "text/javascript",
}
DOC_PAGES = ("/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect")
# Under `make dev` (APP_ENV=LOCAL) a page or script on any local port may call the API.
LOCAL_ORIGIN = re.compile(r"http://(localhost|127\.0\.0\.1)(:\d{1,5})?")
TEXT_TYPES = (
    "text/",
    "application/json",
    "application/x-www-form-urlencoded",
    "application/xml",
    "application/javascript",
)


class GatewayServer:
    """`local_origins`: accept every `http://localhost:<port>` and `http://127.0.0.1:<port>`
    origin besides the template's CorsAllowOrigins (`make dev`; API Gateway keeps the list)."""

    def __init__(self, gateway: LocalGateway, *, local_origins: bool = False, preload: bool = False) -> None:
        self.gateway = gateway
        self.preload = preload and not gateway.isolate  # isolated functions show their cold starts
        cors = gateway.template.cors or {}
        self.cors: dict[str, Any] = cors
        self.origins = set(cors.get("AllowOrigins", []))
        self.local_origins = local_origins
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lambda")
        self._openapi: asyncio.Future[dict[str, Any]] | None = None
        self._preloading: asyncio.Task[None] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        response = await self._respond(scope, receive)
        await response(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if self.executor._shutdown:  # started again in the same process (tests do)
                    self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lambda")
                if self.preload:
                    self._preloading = asyncio.create_task(self._load_everything())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._preloading is not None:
                    self._preloading.cancel()
                await asyncio.get_running_loop().run_in_executor(self.executor, self.gateway.close)
                self.executor.shutdown(wait=True)
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _load_everything(self) -> None:
        """Import every function, then build the OpenAPI document, in the background on the
        functions' thread: one at a time, so a request that comes meanwhile waits for one
        import at most, and the first requests after this find everything loaded."""
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        for name in self.gateway.template.functions:
            try:
                await loop.run_in_executor(self.executor, self.gateway.handler, name)
            except Exception as exc:  # its first request shows the same failure
                print(f"{name} failed to load: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        await self._openapi_document()
        count = len(self.gateway.template.functions)
        elapsed = time.perf_counter() - started
        print(f"{count} functions and the OpenAPI document loaded in {elapsed:.1f} s", file=sys.stderr, flush=True)

    async def _openapi_document(self) -> dict[str, Any]:
        if self._openapi is None:
            loop = asyncio.get_running_loop()
            self._openapi = loop.run_in_executor(self.executor, merged_openapi, self.gateway.template)
        try:
            return await asyncio.shield(self._openapi)
        except Exception:
            self._openapi = None  # the next request tries again
            raise

    async def _respond(self, scope: Scope, receive: Receive) -> Response:
        path, method = scope["path"], scope["method"]
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        origin = headers.get("origin")
        if method == "OPTIONS" and origin and "access-control-request-method" in headers:
            return self._preflight(origin)
        if method == "GET" and (path in DOC_PAGES or path.startswith(STATIC)):
            return await self._docs(path)
        declared = headers.get("content-length", "0")
        if not declared.isdigit() or int(declared) > MAX_BODY_BYTES:
            return JSONResponse({"message": "Request Entity Too Large"}, status_code=413)
        body = await _read_body(receive)
        if body is None:
            return JSONResponse({"message": "Request Entity Too Large"}, status_code=413)
        client = scope.get("client")
        started = time.perf_counter()
        result = await asyncio.get_running_loop().run_in_executor(
            self.executor,
            lambda: self.gateway.request(
                method,
                path,
                headers=headers,
                query=scope["query_string"].decode("latin-1"),
                body=_event_body(body, headers.get("content-type", "")),
                source_ip=client[0] if client else "127.0.0.1",
                scheme=scope.get("scheme", "http"),
            ),
        )
        elapsed = (time.perf_counter() - started) * 1000
        print(f"{method} {path} -> {result.status_code} ({elapsed:.1f} ms)", file=sys.stderr, flush=True)
        return self._to_response(result, origin)

    def _to_response(self, result: GatewayResponse, origin: str | None) -> Response:
        response = Response(result.body, status_code=result.status_code)
        for name, value in result.headers.items():
            if name != "content-length":
                response.headers[name] = value
        for cookie in result.cookies:
            response.headers.append("set-cookie", cookie)
        if origin and self._allowed(origin):
            response.headers["access-control-allow-origin"] = "*" if "*" in self.origins else origin
            if self.cors.get("ExposeHeaders"):
                response.headers["access-control-expose-headers"] = ",".join(self.cors["ExposeHeaders"])
            if self.cors.get("AllowCredentials"):
                response.headers["access-control-allow-credentials"] = "true"
        return response

    def _allowed(self, origin: str) -> bool:
        if self.local_origins and LOCAL_ORIGIN.fullmatch(origin):
            return True
        return "*" in self.origins or origin in self.origins

    def _preflight(self, origin: str) -> Response:
        """API Gateway answers CORS preflight itself; a disallowed origin gets no CORS headers."""
        response = Response(status_code=204)
        if self._allowed(origin):
            response.headers.update(
                {
                    "access-control-allow-origin": "*" if "*" in self.origins else origin,
                    "access-control-allow-methods": ",".join(self.cors.get("AllowMethods", [])),
                    "access-control-allow-headers": ",".join(self.cors.get("AllowHeaders", [])),
                    "access-control-max-age": str(self.cors.get("MaxAge", 0)),
                }
            )
        return response

    async def _docs(self, path: str) -> Response:
        if path == "/docs/oauth2-redirect":
            return get_swagger_ui_oauth2_redirect_html()
        if path.startswith(STATIC):
            # Swagger UI's own files, shipped by fastapi-offline: the docs work without internet.
            name = path.removeprefix(STATIC)
            if name not in STATIC_FILES:
                return JSONResponse({"message": "Not Found"}, status_code=404)
            asset = resources.files("fastapi_offline").joinpath("static", name)
            return Response(asset.read_bytes(), media_type=STATIC_FILES[name])
        if path == "/docs":
            html = get_swagger_ui_html(
                openapi_url="/openapi.json",
                title="API docs",
                oauth2_redirect_url="/docs/oauth2-redirect",
                swagger_js_url=f"{STATIC}swagger-ui-bundle.js",
                swagger_css_url=f"{STATIC}swagger-ui.css",
                swagger_favicon_url=f"{STATIC}favicon.png",
                swagger_ui_parameters={"persistAuthorization": True},
            )
            return HTMLResponse(html.body)
        if path == "/redoc":
            page = get_redoc_html(
                openapi_url="/openapi.json",
                title="API reference",
                redoc_js_url=f"{STATIC}redoc.standalone.js",
                redoc_favicon_url=f"{STATIC}favicon.png",
                with_google_fonts=False,
            )
            return HTMLResponse(page.body)
        return JSONResponse(await self._openapi_document())


async def _read_body(receive: Receive, limit: int = MAX_BODY_BYTES) -> bytes | None:
    """The request body, or None once it grows past `limit` (a chunked body declares no length)."""
    chunks = []
    size = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


def _event_body(body: bytes, content_type: str) -> str | bytes | None:
    """Text stays text; anything else travels base64-encoded, as API Gateway sends it."""
    if not body:
        return None
    if content_type.startswith(TEXT_TYPES):
        try:
            return body.decode()
        except UnicodeDecodeError:
            return body
    return body


def server_config(app: "GatewayServer", host: str, port: int) -> "uvicorn.Config":
    """uvicorn as API Gateway listens: `sourceIp` is the TCP peer. X-Forwarded-For is a header
    like any other (uvicorn would otherwise believe it from 127.0.0.1, and anyone could pick
    the address the login limits count)."""
    import uvicorn

    return uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on", proxy_headers=False)


def serve(host: str, port: int, *, isolate: bool, parameter_overrides: dict[str, str] | None = None) -> None:
    import uvicorn

    template = load(overrides=tuple(sorted((parameter_overrides or {}).items())))
    local = os.environ.get("APP_ENV") == "LOCAL"
    app = GatewayServer(LocalGateway(template, isolate=isolate), local_origins=local, preload=True)
    print(json.dumps({"gateway": f"http://{host}:{port}", "isolate": isolate}), file=sys.stderr)
    uvicorn.Server(server_config(app, host, port)).run()
