"""The local gateway over HTTP (ASGI): responses intact, requests shaped as API Gateway shapes them."""

import asyncio
import base64
import json
from typing import Any

import httpx
import pytest

from infra.deploy.template import load, parse
from infra.local.gateway.invoke import LocalGateway
from infra.local.gateway.server import GatewayServer
from tests.helpers import ROOT

pytestmark = [pytest.mark.process, pytest.mark.first_pass_only("the gateway, whatever the datastores")]

ECHO = """
Resources:
  Api:
    Type: AWS::Serverless::HttpApi
    Properties:
      CorsConfiguration: {AllowOrigins: ["*"], AllowMethods: [GET, POST]}
  Echo:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: tests/fixtures/echo/
      Handler: echo_fn.handler.handler
      Events:
        Any: {Type: HttpApi, Properties: {Method: ANY, Path: "/echo/{name}"}}
"""


def call(app: GatewayServer, method: str, url: str, **kwargs: Any) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            return await client.request(method, url, **kwargs)

    return asyncio.run(go())


def echo_app() -> GatewayServer:
    return GatewayServer(LocalGateway(parse(ECHO, ROOT)))


def test_status_headers_cookies_and_binary_bodies_come_back_intact() -> None:
    response = call(echo_app(), "GET", "/echo/binary")
    assert response.status_code == 206
    assert response.content == bytes(range(256))
    assert response.headers["x-custom"] == "kept"
    assert response.headers.get_list("set-cookie") == ["session=abc; Path=/; HttpOnly", "theme=dark; Path=/"]


def test_requests_become_payload_2_events() -> None:
    response = call(
        echo_app(),
        "POST",
        "/echo/thing?tag=a&tag=b&empty=",
        content=b"\x00\xffraw",
        headers={"content-type": "application/octet-stream", "cookie": "a=1; b=2"},
    )
    seen = response.json()
    assert seen["rawQueryString"] == "tag=a&tag=b&empty="
    assert seen["queryStringParameters"] == {"tag": "a,b", "empty": ""}  # repeated names joined by commas
    assert seen["cookies"] == ["a=1", "b=2"]
    assert seen["isBase64Encoded"] is True
    assert base64.b64decode(seen["body"]) == b"\x00\xffraw"
    assert seen["pathParameters"] == {"name": "thing"}
    text = call(echo_app(), "POST", "/echo/x", json={"k": "v"}).json()
    assert (text["isBase64Encoded"], json.loads(text["body"])) == (False, {"k": "v"})


def test_wildcard_cors_and_unknown_routes() -> None:
    app = echo_app()
    preflight = call(
        app, "OPTIONS", "/echo/x", headers={"origin": "https://any.example", "access-control-request-method": "POST"}
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "*"
    missing = call(app, "GET", "/nothing/here")
    assert missing.status_code == 404
    assert missing.json() == {"message": "Not Found"}


def test_the_docs_page_needs_no_internet() -> None:
    app = GatewayServer(LocalGateway(load()))
    page = call(app, "GET", "/docs")
    assert "/docs/static/swagger-ui-bundle.js" in page.text
    assert "cdn" not in page.text.lower()
    bundle = call(app, "GET", "/docs/static/swagger-ui-bundle.js")
    assert bundle.status_code == 200
    assert len(bundle.content) > 100_000
    assert call(app, "GET", "/docs/static/../../etc/passwd").status_code == 404


def test_a_body_over_api_gateways_10_mb_is_413_and_reaches_no_function() -> None:
    app = echo_app()
    invoked = []
    real = app.gateway.request
    app.gateway.request = lambda *a, **k: invoked.append(1) or real(*a, **k)  # type: ignore[method-assign]
    big = b"x" * (10 * 1024 * 1024 + 1)
    declared = call(app, "POST", "/echo/x", content=big)
    assert (declared.status_code, declared.json()) == (413, {"message": "Request Entity Too Large"})

    async def chunks() -> Any:  # no Content-Length: the limit must hold while reading
        for _ in range(11):
            yield b"y" * (1024 * 1024)

    streamed = call(app, "POST", "/echo/x", content=chunks())
    assert streamed.status_code == 413
    assert invoked == []
    assert call(app, "POST", "/echo/x", content=b"x" * (10 * 1024 * 1024)).status_code == 200


def test_the_event_says_who_sent_it_and_how_as_api_gateway_does() -> None:
    seen = call(echo_app(), "GET", "/echo/x", headers={"x-forwarded-for": "6.6.6.6"}).json()
    assert seen["sourceIp"] == "127.0.0.1"  # httpx's test transport's client address
    # What a client claims is kept in front; API Gateway appends the address it saw.
    assert seen["forwarded"] == {
        "x-forwarded-for": "6.6.6.6, 127.0.0.1",
        "x-forwarded-proto": "http",
        "x-forwarded-port": "80",
    }


def test_no_hsts_over_plain_http() -> None:
    response = call(GatewayServer(LocalGateway(load())), "GET", "/api/v1/auth/keys/public")
    assert response.status_code == 200
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "strict-transport-security" not in response.headers


def test_redoc_beside_swagger_needs_no_internet_either() -> None:
    app = GatewayServer(LocalGateway(load()))
    page = call(app, "GET", "/redoc")
    assert page.status_code == 200
    assert "/docs/static/redoc.standalone.js" in page.text
    assert "googleapis" not in page.text
    assert "cdn" not in page.text.lower()
    script = call(app, "GET", "/docs/static/redoc.standalone.js")
    assert script.status_code == 200
    assert len(script.content) > 100_000


def test_over_tcp_the_source_ip_is_the_peer_not_a_forwarded_for_header() -> None:
    """The login limits count per sourceIp: a header must not pick it (API Gateway ignores one)."""
    import threading

    import uvicorn

    from infra.local.gateway.server import server_config
    from tests.processes import free_port, listening, wait_for

    port = free_port()
    server = uvicorn.Server(server_config(echo_app(), "127.0.0.1", port))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: listening(port), what="the gateway")
        response = httpx.get(f"http://127.0.0.1:{port}/echo/x", headers={"x-forwarded-for": "203.0.113.7"})
        seen = response.json()
        assert seen["sourceIp"] == "127.0.0.1"
        assert (
            seen["forwarded"]["x-forwarded-for"] == "203.0.113.7, 127.0.0.1"
        )  # the peer appended, as API Gateway does
    finally:
        server.should_exit = True
        thread.join(timeout=10)
