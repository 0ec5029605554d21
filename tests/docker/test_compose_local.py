"""compose.yaml's `--profile app` on images built here: a task run from an API call reaches a browser's socket.

Runs only under `make test-docker` (DOCKER_TESTS=1: tests/conftest.py leaves this folder out
of every other run): it needs the engine `make docker` runs (DOCKER_HOST), root, and minutes
the first time (the images: infra/local/compose.py).

`python -m infra.local.compose -p <project> --profile app up -d --build` starts the seven
containers of compose.yaml, on the images of compose.local.yaml, on free ports. The gateway is
make dev's (`python -m infra.local.gateway serve`), alone on the host, on the containers'
PostgreSQL, Redis and MongoDB through their published ports; nothing on the host consumes the
queue, so the run can only finish on the compose worker. A headless Chromium page holds a
socket.io-client (the npm package's browser build) to the compose realtime container, as a
frontend would. Every datastore URL inside the containers is a compose service name: the
worker reaches postgres and redis over the project's bridge network, the host reaches the
containers through Docker's userland proxy (the engine sets no iptables rule).
"""

import contextlib
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from multidb.security.login_crypto import encrypt_password
from tests.helpers import ROOT
from tests.processes import free_port

pytestmark = pytest.mark.process

DOCKER_HOST = os.environ.get("DOCKER_HOST", "")
PROJECT = "multidb-compose-test"
CLIENT = ROOT / "tests" / "fixtures" / "socketio_client"  # socket.io-client, installed by npm ci
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
ADMIN_PASSWORD = "123456"  # initdb's local admin
APP_UID = 10001  # the app images' user (infra/services/Dockerfile)
PAGE = """<!doctype html>
<meta charset="utf-8"><title>compose</title>
<script type="module">
import { io } from "/socket.io.esm.min.js";
const params = new URLSearchParams(location.search);
window.heard = [];
const socket = io(params.get("socket"), { auth: { token: params.get("token") }, transports: ["websocket"] });
socket.on("connect", () => { window.connected = true; });
socket.on("connect_error", (error) => { window.refused = String(error); });
socket.onAny((event, data) => window.heard.push([event, data]));
</script>
"""


def accepting(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def wait(condition: Callable[[], bool], timeout: float, what: str, log: Callable[[], str] = lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError(f"{what} within {timeout:.0f} s\n{log()[-6000:]}")


@dataclass
class Compose:
    ports: dict[str, int]
    env: dict[str, str]  # the gateway's settings: the containers' datastores, from the host
    log: Path

    def run(self, *args: str, timeout: float = 1800) -> str:
        command = [sys.executable, "-m", "infra.local.compose", "-p", PROJECT, "--profile", "app", *args]
        variables = {**os.environ, **{f"{name.upper()}_PORT": str(port) for name, port in self.ports.items()}}
        variables["LOCAL_KEYS_DIR"] = self.env["KEYS_DIR"]
        with self.log.open("a") as sink:
            sink.write(f"$ {' '.join(args)}\n")
            sink.flush()
            done = subprocess.run(
                command, cwd=ROOT, env=variables, stdout=sink, stderr=subprocess.STDOUT, timeout=timeout, check=False
            )
        assert done.returncode == 0, f"compose {' '.join(args)} exited {done.returncode}:\n{self.tail()}"
        return self.log.read_text()

    def logs(self, service: str) -> str:
        (container,) = containers(service, "-a")
        done = subprocess.run(
            ["docker", "-H", DOCKER_HOST, "logs", container], capture_output=True, text=True, check=True
        )
        return done.stdout + done.stderr

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-6000:]


def containers(service: str, *options: str, template: str = "{{.ID}}") -> list[str]:
    """`docker ps` of the test project's containers of one service, one line each."""
    labels = [f"label=com.docker.compose.project={PROJECT}", f"label=com.docker.compose.service={service}"]
    argv = ["docker", "-H", DOCKER_HOST, "ps", *options, *(a for label in labels for a in ("--filter", label))]
    done = subprocess.run([*argv, "--format", template], capture_output=True, text=True, check=True)
    return done.stdout.split("\n")[:-1]


def keys_for_the_containers(folder: Path, env: dict[str, str]) -> None:
    """make dev's keys, made by the host's settings code, readable by the containers' user."""
    code = "from multidb.security.keys import signing_key, login_key; signing_key(); login_key()"
    subprocess.run([sys.executable, "-c", code], env=env, check=True, cwd=ROOT)
    for path in [folder, *folder.iterdir()]:
        os.chown(path, APP_UID, APP_UID)  # the gateway runs as root and reads them all the same


@pytest.fixture(scope="module")
def compose(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Compose]:
    assert DOCKER_HOST, "no DOCKER_HOST: run make test-docker (it starts the engine: make docker)"
    assert os.geteuid() == 0, "the engine and the keys' owner need root"
    work = tmp_path_factory.mktemp("compose")
    names = ("postgres", "redis", "mongo", "minio", "minio_console", "realtime")
    ports = {name: free_port() for name in names}
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/root"),
        "PYTHONPATH": f"{ROOT}:{ROOT / 'shared'}",
        "APP_ENV": "LOCAL",
        "KEYS_DIR": str(work / "keys"),
        "DATABASE_URL": f"postgresql+asyncpg://postgres:postgres@127.0.0.1:{ports['postgres']}/multidb",
        "REDIS_URL": f"redis://127.0.0.1:{ports['redis']}/0",
        "MONGO_URL": f"mongodb://127.0.0.1:{ports['mongo']}",
        "S3_ENDPOINT_URL": f"http://127.0.0.1:{ports['minio']}",
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    keys_for_the_containers(work / "keys", env)
    stack = Compose(ports, env, work / "compose.log")
    stack.run("down", "-v", "--remove-orphans", timeout=300)  # a run killed before its teardown
    try:
        begin = time.monotonic()
        stack.run("up", "-d", "--build")
        for name in ("postgres", "redis", "mongo", "minio", "realtime"):
            wait(lambda p=ports[name]: accepting(p), 180, f"{name} did not answer on its published port", stack.tail)  # type: ignore[misc]
        print(f"compose up --build: {time.monotonic() - begin:.1f} s")
        yield stack
    finally:
        with contextlib.suppress(AssertionError, subprocess.SubprocessError):
            stack.run("down", "-v", "--remove-orphans", timeout=300)


@dataclass
class Gateway:
    url: str
    process: subprocess.Popen[bytes]
    log: Path


@pytest.fixture(scope="module")
def gateway(compose: Compose) -> Iterator[Gateway]:
    """make dev's gateway alone (no worker on the host), after initdb on the compose PostgreSQL."""
    log = compose.log.with_name("gateway.log")
    wait(lambda: initdb(compose, log), 120, "initdb did not reach the compose PostgreSQL", log.read_text)
    port = free_port()
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "infra.local.gateway", "serve", "--port", str(port)],
            cwd=ROOT,
            env=compose.env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    running = Gateway(f"http://127.0.0.1:{port}", process, log)

    def answers() -> bool:
        assert process.poll() is None, log.read_text()[-4000:]
        try:
            return httpx.get(f"{running.url}/api/v1/auth/keys/public", timeout=30).status_code == 200
        except httpx.TransportError:
            return False

    wait(answers, 180, "the gateway did not answer", log.read_text)
    yield running
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def initdb(compose: Compose, log: Path) -> bool:
    """Migrations, the route catalogue and the admin; False while PostgreSQL still starts."""
    with log.open("ab") as sink:
        done = subprocess.run(
            [sys.executable, "-m", "infra.deploy.initdb"], cwd=ROOT, env=compose.env, stdout=sink, stderr=sink
        )
    return done.returncode == 0


class Site(http.server.SimpleHTTPRequestHandler):
    """The test page and socket.io-client's browser build."""

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        if path == "/index.html":
            body = PAGE.encode()
            self.send_response(200)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif path == "/socket.io.esm.min.js":
            super().do_GET()
        else:
            self.send_error(404)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def origin() -> Iterator[str]:
    """A page origin make dev's settings allow (any http://localhost:<port> under APP_ENV=LOCAL)."""
    dist = CLIENT / "node_modules" / "socket.io-client" / "dist"
    if not dist.is_dir():
        npm = shutil.which("npm")
        assert npm, "npm is needed for socket.io-client's browser build"
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=CLIENT, check=True, capture_output=True, timeout=300)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Site, directory=str(dist)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://localhost:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def login(client: httpx.Client) -> str:
    pem = client.get("/api/v1/auth/keys/public").json()["data"]["publicKey"]
    body = {"username": "admin", "password": encrypt_password(ADMIN_PASSWORD, pem)}
    response = client.post("/api/v1/auth/login", json=body)
    assert response.status_code == 200, response.text
    return str(response.json()["data"]["accessToken"])


def test_a_task_run_finishes_on_the_compose_worker_and_reaches_a_browser_socket(
    compose: Compose, gateway: Gateway, origin: str
) -> None:
    from playwright.sync_api import sync_playwright

    with httpx.Client(base_url=gateway.url, timeout=60) as client, sync_playwright() as playwright:
        token = login(client)
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            socket_url = f"http://127.0.0.1:{compose.ports['realtime']}"
            page.goto(f"{origin}/index.html?{httpx.QueryParams(socket=socket_url, token=token)}")
            page.wait_for_function("window.connected || window.refused", timeout=30_000)
            assert page.evaluate("window.refused || null") is None, page.evaluate("window.refused")

            begin = time.monotonic()
            run = client.post(
                "/api/v1/tasks/runs",
                json={"task": "multidb.add", "args": [2, 40]},
                headers={"authorization": f"Bearer {token}"},
            )
            assert run.status_code == 202, run.text
            task_id = run.json()["data"]["taskId"]
            page.wait_for_function(
                "id => window.heard.some(([event, data]) => event === 'task:finished' && data.taskId === id)",
                arg=task_id,
                timeout=60_000,
            )
            arrived = time.monotonic() - begin
            heard = page.evaluate("window.heard")
        finally:
            browser.close()
        result = client.get(f"/api/v1/tasks/runs/{task_id}", headers={"authorization": f"Bearer {token}"})

    finished = [data for event, data in heard if event == "task:finished"]
    assert finished == [{"taskId": task_id, "task": "multidb.add", "state": "SUCCESS"}], json.dumps(heard)
    assert result.json()["data"]["result"] == 42, result.text
    assert task_id in compose.logs("worker")  # the compose worker ran it: no other worker consumes
    print(f"task:finished in the browser {arrived:.1f} s after POST /api/v1/tasks/runs")


def test_beat_runs_its_database_scheduler_and_no_app_container_restarted(compose: Compose, gateway: Gateway) -> None:
    """Beat is up on the DatabaseScheduler; worker, beat and realtime never stopped (restarts would hide it)."""
    wait(lambda: "DatabaseScheduler" in compose.logs("beat"), 60, "beat did not start", lambda: compose.logs("beat"))
    for service in ("worker", "beat", "realtime"):
        (container,) = containers(service)
        inspect = ["docker", "-H", DOCKER_HOST, "inspect", "--format", "{{.State.Status}} {{.RestartCount}}", container]
        state = subprocess.run(inspect, capture_output=True, text=True, check=True).stdout.split()
        assert state == ["running", "0"], f"{service}: {state}\n{compose.logs(service)[-3000:]}"
