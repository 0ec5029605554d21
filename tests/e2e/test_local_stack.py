"""`make dev` as a new user runs it, driven over HTTP on the gateway port like a frontend."""

import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import boto3
import httpx
from pymongo import MongoClient

from infra.deploy.template import load
from multidb.security.login_crypto import encrypt_password
from tests.helpers import ROOT

ORIGIN = "http://localhost:5173"  # the template's default CorsAllowOrigins
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
UA = {"user-agent": "Mozilla/5.0 e2e"}


@dataclass
class Stack:
    process: subprocess.Popen[str]
    url: str
    ports: dict[str, int]
    log: Path

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=UA, timeout=30)


def start(state: Path, ports: dict[str, int], log: Path) -> Stack:
    test_only = (
        *("DATABASE_URL", "REDIS_URL", "BROKER_URL", "ADMIN_PASSWORD", "KEYS_DIR", "BEAT_REFRESH_INTERVAL"),
        *(
            "MONGO_URL",
            "MONGO_DATABASE",
            "S3_ENDPOINT_URL",
            "FILES_BUCKET",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
        ),
    )
    env = {k: v for k, v in os.environ.items() if k not in test_only}
    env.update(
        {
            "APP_ENV": "LOCAL",
            "LOCAL_STATE_DIR": str(state),
            "GATEWAY_PORT": str(ports["gateway"]),
            "DEV_REDIS_PORT": str(ports["redis"]),
            "DEV_MONGO_PORT": str(ports["mongo"]),
            "DEV_S3_PORT": str(ports["s3"]),
            "REALTIME_PORT": str(ports["realtime"]),
            # Its own origin (http://127.0.0.1:<port>) passes as every local one does under make dev.
            "REALTIME_CORS_ORIGINS": ORIGIN,
            # No console: the tests serve the built one where they need it (5173 stays free).
            "DEV_CONSOLE": "0",
        }
    )
    handle = log.open("a")
    process = subprocess.Popen(
        ["make", "dev"], cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    url = f"http://127.0.0.1:{ports['gateway']}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()[-3000:]
        try:
            if httpx.get(f"{url}/api/v1/auth/keys/public", timeout=2).status_code == 200:
                return Stack(process, url, ports, log)
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    process.kill()
    raise AssertionError("the gateway did not come up:\n" + log.read_text()[-3000:])


def stop(stack: Stack) -> int:
    """Ctrl-C: the terminal sends SIGINT to the whole foreground process group.

    Returns make's status: make re-raises the SIGINT it received once its child is done.
    """
    os.killpg(stack.process.pid, signal.SIGINT)
    try:
        return stack.process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(stack.process.pid, signal.SIGKILL)
        raise


def login(client: httpx.Client, password: str = "123456") -> dict[str, str]:
    pem = client.get("/api/v1/auth/keys/public").json()["data"]["publicKey"]
    response = client.post(
        "/api/v1/auth/login", json={"username": "admin", "password": encrypt_password(password, pem)}
    )
    assert response.status_code == 200, response.text
    return response.json()["data"]  # type: ignore[no-any-return]


def test_a_frontend_session(stack: Stack) -> None:
    with stack.client() as client:
        tokens = login(client)  # the seed's local admin / 123456
        bearer = {"authorization": f"Bearer {tokens['accessToken']}"}
        info = client.get("/api/v1/auth/user/info", headers=bearer)
        assert info.status_code == 200
        assert info.json()["data"]["username"] == "admin"
        assert info.headers["x-request-id"]
        assert client.get("/api/v1/auth/user/info", headers={"authorization": "Bearer forged"}).status_code == 403
        assert client.get("/api/v1/auth/user/info").status_code == 401

        refreshed = client.post("/api/v1/auth/token/refresh", headers={"x-refresh-token": tokens["refreshToken"]})
        assert refreshed.status_code == 200
        access = refreshed.json()["data"]["accessToken"]
        assert client.post("/api/v1/auth/logout", headers={"authorization": f"Bearer {access}"}).status_code == 200
        assert client.get("/api/v1/auth/user/info", headers={"authorization": f"Bearer {access}"}).status_code in (
            401,
            403,
        )


def test_every_template_route_answers_through_the_gateway(stack: Stack) -> None:
    with stack.client() as client:
        for route in load().routes:
            path = route.path.replace("{", "").replace("}", "")  # any value for path parameters
            response = client.request(route.method, path)
            if route.authorizer is not None:
                assert response.status_code == 401, route.route_key
            else:
                assert response.status_code != 404, route.route_key
                assert response.status_code < 500, route.route_key


def test_merged_openapi_lists_exactly_the_template_routes(stack: Stack) -> None:
    with stack.client() as client:
        document = client.get("/openapi.json").json()
        listed = {f"{method.upper()} {path}" for path, ops in document["paths"].items() for method in ops}
        assert listed == {route.route_key for route in load().routes}
        schemes = document["components"]["securitySchemes"]
        assert schemes["BearerToken"]["scheme"] == "bearer"
        assert schemes["SwaggerLogin"]["flows"]["password"]["tokenUrl"] == "/api/v1/auth/login/swagger"
        docs = client.get("/docs")
        assert docs.status_code == 200
        assert "swagger-ui" in docs.text


def test_the_docs_login_works(stack: Stack) -> None:
    with stack.client() as client:
        token = client.post("/api/v1/auth/login/swagger", data={"username": "admin", "password": "123456"})
        assert token.status_code == 200
        headers = {"authorization": f"Bearer {token.json()['access_token']}"}
        assert client.get("/api/v1/auth/user/info", headers=headers).status_code == 200


def test_cors_as_the_template_configures_it(stack: Stack) -> None:
    preflight = {"access-control-request-method": "POST", "access-control-request-headers": "content-type"}
    with stack.client() as client:
        allowed = client.options("/api/v1/auth/login", headers={"origin": ORIGIN, **preflight})
        assert allowed.status_code == 204
        assert allowed.headers["access-control-allow-origin"] == ORIGIN
        assert "x-refresh-token" in allowed.headers["access-control-allow-headers"]
        refused = client.options("/api/v1/auth/login", headers={"origin": "https://evil.example", **preflight})
        assert "access-control-allow-origin" not in refused.headers
        simple = client.get("/api/v1/auth/keys/public", headers={"origin": ORIGIN})
        assert simple.headers["access-control-allow-origin"] == ORIGIN
        assert simple.headers["access-control-expose-headers"] == "x-request-id"


def test_the_embedded_datastores_answer(stack: Stack) -> None:
    mongo: MongoClient[dict[str, object]] = MongoClient(
        f"mongodb://127.0.0.1:{stack.ports['mongo']}", serverSelectionTimeoutMS=5000
    )
    assert mongo.admin.command("ping")["ok"] == 1
    mongo.close()
    s3 = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{stack.ports['s3']}",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        region_name="us-east-1",
    )
    s3.create_bucket(Bucket="e2e")
    assert "e2e" in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_a_file_goes_up_and_comes_back_through_the_embedded_s3_and_mongodb(stack: Stack) -> None:
    """What a browser does: ask for an upload URL, PUT the bytes there, complete, download."""
    content = b"%PDF-1.7 quarterly report\n" * 100
    with stack.client() as client:
        token = {"Authorization": f"Bearer {login(client)['accessToken']}"}
        body = {"name": "report.pdf", "contentType": "application/pdf", "size": len(content)}
        upload = client.post("/api/v1/files/uploads", json=body, headers=token)
        assert upload.status_code == 201, upload.text
        data = upload.json()["data"]
        assert data["uploadUrl"].startswith(f"http://127.0.0.1:{stack.ports['s3']}/")
        assert httpx.put(data["uploadUrl"], content=content, headers=data["headers"], timeout=10).status_code == 200
        file_id = data["file"]["id"]
        done = client.post(f"/api/v1/files/{file_id}/complete", headers=token)
        assert (done.status_code, done.json()["data"]["status"]) == (200, "ready"), done.text
        link = client.get(f"/api/v1/files/{file_id}/download", headers=token).json()["data"]["url"]
        assert httpx.get(link, timeout=10).content == content
        assert client.delete(f"/api/v1/files/{file_id}", headers=token).status_code == 200


def test_tasks_run_on_the_worker_and_beat_and_the_frontend_hears_them(stack: Stack) -> None:
    """A Socket.IO client on the realtime port, as a browser app would hold one open."""
    import queue

    import socketio

    with stack.client() as client:
        tokens = login(client)
        bearer = {"authorization": f"Bearer {tokens['accessToken']}"}
        me = client.get("/api/v1/auth/user/info", headers=bearer).json()["data"]["id"]
        heard: queue.Queue[tuple[str, object]] = queue.Queue()
        sio = socketio.Client(reconnection=False)
        sio.on("*", lambda event, data: heard.put((event, data)))
        sio.connect(
            f"http://127.0.0.1:{stack.ports['realtime']}",
            auth={"token": tokens["accessToken"]},
            transports=["websocket"],
            wait_timeout=10,
        )
        try:
            run = client.post("/api/v1/tasks/runs", headers=bearer, json={"task": "multidb.add", "args": [2, 40]})
            assert run.status_code == 202, run.text
            assert heard.get(timeout=30) == (
                "task:finished",
                {"taskId": run.json()["data"]["taskId"], "task": "multidb.add", "state": "SUCCESS"},
            )
            result = client.get(f"/api/v1/tasks/runs/{run.json()['data']['taskId']}", headers=bearer)
            assert result.json()["data"]["result"] == 42
            args = [me, "message", {"text": "hi"}]
            schedule = {"name": "e2e", "task": "multidb.notify", "args": args, "intervalSeconds": 5, "oneOff": True}
            assert client.post("/api/v1/tasks/schedules", headers=bearer, json=schedule).status_code == 201
            # make dev: beat reloads every 5 s, and a schedule may run every 5 s
            assert heard.get(timeout=30) == ("message", {"from": me, "data": {"text": "hi"}})
        finally:
            sio.disconnect()


CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def test_a_person_logs_in_on_the_docs_page_and_calls_a_route(stack: Stack, tmp_path: Path) -> None:
    """Headless Chromium: Authorize with admin / 123456, then Try it out on GET /auth/user/info."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{stack.url}/docs")
            page.locator(".auth-wrapper .authorize").click()
            page.locator("#oauth_username").fill("admin")
            page.locator("#oauth_password").fill("123456")
            page.get_by_role("button", name="Apply given OAuth2 credentials").click()
            page.get_by_role("button", name="Remove authorization").first.wait_for()
            page.locator(".close-modal").click()
            operation = page.locator(".opblock", has_text="/api/v1/auth/user/info").first
            operation.locator(".opblock-summary").click()
            operation.get_by_role("button", name="Try it out").click()
            operation.get_by_role("button", name="Execute").click()
            status = operation.locator(".live-responses-table .response .response-col_status")
            status.wait_for()
            code = status.inner_text().strip()
            body = operation.locator(".live-responses-table .response .microlight").first.inner_text()
            page.screenshot(path=str(tmp_path / "docs.png"))
        finally:
            browser.close()
    assert code.startswith("200")
    assert '"username": "admin"' in body


def test_ctrl_c_stops_everything_and_a_restart_keeps_sessions(stack: Stack, state: Path, ports: dict[str, int]) -> None:
    with stack.client() as client:
        tokens = login(client)
    assert stop(stack) in (0, -signal.SIGINT)
    log = stack.log.read_text()
    assert "all processes stopped" in log
    for name in ("redis", "mongodb", "s3", "gateway", "realtime", "worker", "beat"):
        assert f"{name} stopped" in log, name
    leftovers = subprocess.run(["pgrep", "-f", str(state)], capture_output=True, text=True)
    assert leftovers.stdout.strip() == "", leftovers.stdout

    again = start(state, ports, stack.log)
    try:
        with again.client() as client:
            bearer = {"authorization": f"Bearer {tokens['accessToken']}"}
            assert client.get("/api/v1/auth/user/info", headers=bearer).status_code == 200  # same keys
            refreshed = client.post("/api/v1/auth/token/refresh", headers={"x-refresh-token": tokens["refreshToken"]})
            assert refreshed.status_code == 200  # the refresh token survived in the Redis snapshot
    finally:
        assert stop(again) in (0, -signal.SIGINT)


def test_the_state_folder_is_private(stack: Stack, state: Path) -> None:
    """It holds password hashes, keys and Redis data: nobody but its owner may read any of it."""
    assert state.stat().st_mode & 0o777 == 0o700
    created = [path for path in state.rglob("*") if path != stack.log]
    assert any(path.name.endswith(".pem") for path in created)
    for path in created:
        assert path.stat().st_mode & 0o077 == 0, f"{path} is {oct(path.stat().st_mode & 0o777)}"


SECRETS_IN_LOGS = {
    "a JWT": re.compile(r"eyJ[\w-]{10,}\.[\w-]{10,}"),
    "a PEM key": re.compile(r"-----BEGIN [A-Z ]*KEY-----"),
    "a presigned URL's signature": re.compile(r"(?i)X-Amz-Signature=|[?&]Signature="),
    "the admin password": re.compile(r"(?<![\d-])123456(?![\d-])"),
    "an encrypted password": re.compile(r"[A-Za-z0-9+/]{300,}={0,2}"),
}


def test_the_whole_runs_logs_hold_no_password_token_key_or_signature(stack: Stack) -> None:
    """Every line every process wrote while the tests above drove the stack (the last test here)."""
    log = stack.log.read_text()
    assert "POST /api/v1/auth/login" in log  # the requests are in it
    for what, pattern in SECRETS_IN_LOGS.items():
        found = pattern.search(log)
        assert found is None, f"{what} in the logs: …{log[max(0, found.start() - 80) : found.end() + 20]}…"
