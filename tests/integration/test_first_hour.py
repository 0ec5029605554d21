"""What a frontend developer meets in the first hour of `make dev`: local origins accepted by
the gateway and the Socket.IO server (and only under APP_ENV=LOCAL), refusals that say why,
acks for unknown events, and functions loaded before the first request."""

import asyncio
import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import socketio

from infra.deploy.template import load
from infra.local.dev import plan
from infra.local.gateway.invoke import LocalGateway
from infra.local.gateway.server import GatewayServer
from tests.conftest import ADMIN_PASSWORD
from tests.helpers import ROOT, Api
from tests.processes import Process, free_port
from tests.tasks.test_tasks import body_of

pytestmark = pytest.mark.process

PREFLIGHT = {"access-control-request-method": "POST", "access-control-request-headers": "content-type"}
LOCAL_ORIGINS = ("http://localhost:8080", "http://127.0.0.1:4173", "http://localhost")
NOT_LOCAL = ("https://localhost:8080", "http://localhost.evil.example", "http://10.0.0.1:3000", "https://evil.example")


def preflight(app: GatewayServer, origin: str) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            return await client.options("/api/v1/auth/login", headers={"origin": origin, **PREFLIGHT})

    return asyncio.run(go())


@pytest.mark.parametrize("origin", LOCAL_ORIGINS)
def test_make_devs_gateway_answers_any_local_origins_preflight(origin: str) -> None:
    answer = preflight(GatewayServer(LocalGateway(load()), local_origins=True), origin)
    assert answer.headers["access-control-allow-origin"] == origin
    # As API Gateway does with the template's list: the list alone, without `make dev`.
    assert "access-control-allow-origin" not in preflight(GatewayServer(LocalGateway(load())), origin).headers


@pytest.mark.parametrize("origin", NOT_LOCAL)
def test_make_devs_gateway_still_refuses_other_origins(origin: str) -> None:
    answer = preflight(GatewayServer(LocalGateway(load()), local_origins=True), origin)
    assert "access-control-allow-origin" not in answer.headers


def test_the_gateway_loads_every_function_and_the_document_before_the_first_request() -> None:
    app = GatewayServer(LocalGateway(load()), preload=True)

    async def go() -> tuple[set[str], float]:
        sent: list[dict[str, Any]] = []
        inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        await inbox.put({"type": "lifespan.startup"})

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        lifespan = asyncio.create_task(app({"type": "lifespan"}, inbox.get, send))  # type: ignore[arg-type]
        while app._preloading is None:  # noqa: ASYNC110  (set by the startup this task runs)
            await asyncio.sleep(0.01)
        await app._preloading
        loaded = set(app.gateway._handlers)
        assert app._openapi is not None
        assert app._openapi.done()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            started = time.perf_counter()
            document = await client.get("/openapi.json")
            elapsed = time.perf_counter() - started
        assert document.status_code == 200
        await inbox.put({"type": "lifespan.shutdown"})
        await lifespan
        return loaded, elapsed

    loaded, elapsed = asyncio.run(go())
    assert loaded == set(load().functions)
    assert elapsed < 1.0  # served from memory (a cold build of it takes seconds)


@pytest.fixture(scope="module")
def local_realtime() -> Any:
    """The Socket.IO server as `make dev` runs it (APP_ENV=LOCAL); yields its URL."""
    port = free_port()
    command = [sys.executable, "-m", "infra.services.realtime", "--port", str(port)]
    local = Process("realtime-local", command, {"APP_ENV": "LOCAL", "REALTIME_CORS_ORIGINS": "http://localhost:5173"})
    try:
        local.wait_listening(port, "the Socket.IO server")
        yield f"http://127.0.0.1:{port}"
    finally:
        local.stop()


def refusal(url: str, token: str | None, origin: str | None = None) -> Any:
    """What a real client's `connect_error` hears (the server must refuse). A given Origin goes
    over long polling: over WebSocket python-socketio sends its own (the URL's) beside it."""
    client = socketio.Client(reconnection=False)
    reasons: list[Any] = []
    client.on("connect_error", reasons.append)
    auth = {"token": token} if token else None
    headers, transports = ({"Origin": origin}, ["polling"]) if origin else ({}, ["websocket"])
    with pytest.raises(socketio.exceptions.ConnectionError):
        client.connect(url, auth=auth, headers=headers, transports=transports, wait_timeout=10)
    return reasons[0] if reasons else None


def connected(url: str, token: str) -> socketio.Client:
    """A client whose Origin is its URL's (a page served from that origin would send the same)."""
    client = socketio.Client(reconnection=False)
    client.connect(url, auth={"token": token}, transports=["websocket"], wait_timeout=10)
    return client


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_make_devs_socket_server_accepts_any_local_origin(api: Api, local_realtime: str, host: str) -> None:
    # Its REALTIME_CORS_ORIGINS lists http://localhost:5173 alone; the client's origin is
    # http://<host>:<the server's port>.
    client = connected(local_realtime.replace("127.0.0.1", host), api.login("admin", ADMIN_PASSWORD).access)
    try:
        assert client.call("ping", timeout=10) == "pong"
    finally:
        client.disconnect()


def test_a_refused_origin_hears_why_under_make_dev(api: Api, local_realtime: str) -> None:
    token = api.login("admin", ADMIN_PASSWORD).access
    refused = refusal(local_realtime, token, "https://evil.example")
    assert refused["message"].startswith("origin https://evil.example is not accepted")
    assert "http://localhost:<port>" in refused["message"]
    assert refused["data"] == {"code": 403, "error": "origin_not_accepted", "message": refused["message"]}


def test_outside_make_dev_the_socket_server_keeps_its_exact_list(api: Api, realtime: str) -> None:
    token = api.login("admin", ADMIN_PASSWORD).access
    # Engine.IO refuses before Socket.IO runs, as in production (a browser cannot read why).
    assert refusal(realtime, token, "http://localhost:8080") == "http://localhost:8080 is not an accepted origin."


@pytest.mark.parametrize(
    ("token", "data"),
    [
        (None, {"code": 401, "error": "not_authenticated", "message": "authentication required"}),
        ("not-a-jwt", {"code": 401, "error": "invalid_token", "message": "invalid token"}),
    ],
)
def test_a_refused_socket_carries_the_reason_and_the_error(local_realtime: str, token: str | None, data: Any) -> None:
    assert refusal(local_realtime, token) == {"message": data["message"], "data": data}


def test_an_unknown_event_that_asks_for_an_ack_gets_an_error_ack(api: Api, realtime: str) -> None:
    client = connected(realtime, api.login("admin", ADMIN_PASSWORD).access)
    try:
        answer = client.call("no:such:event", {"x": 1}, timeout=10)
        expected = {"code": 404, "error": "unknown_event", "data": None}
        assert {k: answer[k] for k in ("code", "error", "data")} == expected
        assert answer["message"] == "Unknown event: no:such:event."
        client.emit("no:such:event")  # without an ack: nothing comes back, the socket stays
        assert client.call("ping", timeout=10) == "pong"
    finally:
        client.disconnect()


def test_make_dev_names_a_busy_port_and_its_variable_and_starts_nothing(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = holder.getsockname()[1]
        env = {
            **{k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "MONGO_URL", "S3_ENDPOINT_URL")},
            "APP_ENV": "LOCAL",
            "LOCAL_STATE_DIR": str(tmp_path / "state"),
            "GATEWAY_PORT": str(free_port()),
            "REALTIME_PORT": str(free_port()),
            "DEV_REDIS_PORT": str(free_port()),
            "DEV_MONGO_PORT": str(busy),
            "DEV_S3_PORT": str(free_port()),
            "DEV_CONSOLE": "0",  # no console: make would install its packages first
        }
        started = time.monotonic()
        # -o: the suite runs after `make install`; never reinstall the venv from here.
        make = ["make", "--no-print-directory", "-o", ".venv/.installed", "dev"]
        ran = subprocess.run(make, cwd=ROOT, env=env, capture_output=True, text=True)
    assert time.monotonic() - started < 15  # at once: no migration, no process started
    assert ran.returncode != 0
    assert ran.stdout.splitlines() == ["python -m infra.local.dev"]  # make's echo, and nothing started
    line = ran.stderr.splitlines()[0]
    assert line.startswith(f"Port {busy} (the embedded MongoDB) is in use")
    assert f"make dev DEV_MONGO_PORT={busy + 100}" in line
    assert not (tmp_path / "state").exists()


def test_make_help_names_the_port_variables() -> None:
    shown = subprocess.run(["make", "--no-print-directory", "help"], cwd=ROOT, capture_output=True, text=True).stdout
    for variable in (
        "GATEWAY_PORT",
        "REALTIME_PORT",
        "DEV_REDIS_PORT",
        "DEV_MONGO_PORT",
        "DEV_S3_PORT",
        "CONSOLE_PORT",
    ):
        assert variable in shown


def test_make_devs_banner_says_which_origins_it_accepts() -> None:
    banner = "\n".join(plan({"APP_ENV": "LOCAL"}).banner)
    assert "any http://localhost:<port> or http://127.0.0.1:<port>" in banner
    assert "HTTP: http://localhost:5173 (CorsAllowOrigins), any http://localhost:<port>" in banner
    assert "Socket.IO: http://localhost:5173 (REALTIME_CORS_ORIGINS)" in banner
    assert "any http" not in "\n".join(plan({"APP_ENV": "TESTING"}).banner)
    assert plan({"DEV_CONSOLE": "0"}).ports.keys() == {3000, 3001, 6390, 27027, 9000}
    elsewhere = plan({"REDIS_URL": "redis://10.0.0.5:6379/0", "GATEWAY_PORT": "3100", "DEV_CONSOLE": "0"})
    assert elsewhere.ports.keys() == {3100, 3001, 27027, 9000}  # a server of one's own binds nothing here


def test_make_dev_serves_the_console_on_the_origin_cors_allows_unless_told_not_to() -> None:
    planned = plan({"GATEWAY_PORT": "3100", "REALTIME_PORT": "3101", "CONSOLE_PORT": "5200", "DEV_CONSOLE": "1"})
    assert planned.processes["console"] == "npm --prefix console run dev -- --port 5200"
    assert planned.ports[5200] == ("CONSOLE_PORT", "the console")
    assert planned.env["VITE_API_URL"] == "http://127.0.0.1:3100"  # where the console's kit calls
    assert planned.env["VITE_SOCKET_URL"] == "http://127.0.0.1:3101"
    assert "Console    http://localhost:5200" in "\n".join(planned.banner)
    without = plan({"DEV_CONSOLE": "0"})
    assert "console" not in without.processes
    assert 5173 not in without.ports


def test_the_202_of_a_run_says_when_it_was_queued(api: Api) -> None:
    admin = api.login("admin", ADMIN_PASSWORD).access
    before = datetime.now(UTC)
    queued = body_of(api.post("/api/v1/tasks/runs", token=admin, json_body={"task": "multidb.ping"}), 202)
    after = datetime.now(UTC)
    assert queued["queuedAt"] is not None
    assert before <= datetime.fromisoformat(queued["queuedAt"]) <= after
    # The same instant the run's record keeps (no worker runs here: it stays queued).
    again = body_of(api.get(f"/api/v1/tasks/runs/{queued['taskId']}", token=admin))
    assert again["queuedAt"] == queued["queuedAt"]
