"""`sam local start-api` and `make dev`'s gateway, side by side: one table of requests, the same answers.

Runs only under `make test-docker` (DOCKER_TESTS=1: tests/conftest.py leaves this folder out
of every other run): it needs the engine `make docker` runs (DOCKER_HOST), the base image of
`make images-local` and the x86_64 build in SAM_BUILD_DIR, and takes minutes.

Both gateways run on the same datastores, the stand-ins `make dev` runs (a Redis server, the
embedded MongoDB and S3) bound to the Docker bridge's host address, so that SAM's containers
reach them at the same URLs as make dev's processes, and PostgreSQL (SQLite is a file no
container shares) through a relay on that address. The same keys sign on both sides: the
env-vars file hands the containers make dev's (infra/local/sam_local_env.py).

Every request is sent to make dev's gateway and then to sam local's; the statuses and the
bodies must be the same, byte for byte once ids, times, tokens and signatures are replaced by
placeholders. The table is printed (`-rP`), with sam local's time to its first answer.
"""

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from multidb.security.login_crypto import encrypt_password
from tests.conftest import PG_DATABASE, PG_HOST, PG_PORT, USE_POSTGRES
from tests.helpers import ROOT
from tests.processes import Process, free_port

pytestmark = pytest.mark.process

DOCKER_HOST = os.environ.get("DOCKER_HOST", "")
BUILD_DIR = ROOT / os.environ.get("SAM_BUILD_DIR", ".aws-sam/build-x86_64")
SAM = ROOT / ".venv-sam" / "bin" / "sam"
LAMBDA_IMAGE = "public.ecr.aws/lambda/python:3.12-x86_64"
DATABASE = f"{PG_DATABASE}_sam_parity"
ADMIN_PASSWORD = "123456"  # make dev's local admin
AWS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_DEFAULT_REGION": "us-east-1"}


def docker(*args: str) -> str:
    out = subprocess.run(["docker", "-H", DOCKER_HOST, *args], capture_output=True, text=True, check=False)
    assert out.returncode == 0, f"docker {' '.join(args)}: {out.stderr}"
    return out.stdout.strip()


@pytest.fixture(scope="module")
def bridge() -> str:
    """The host's address on the Docker bridge: what containers reach this machine at."""
    assert DOCKER_HOST, "no DOCKER_HOST: run make test-docker (it starts the engine: make docker)"
    assert USE_POSTGRES, "PostgreSQL is needed (SQLite is a file no container can share)"
    assert docker("image", "inspect", "--format", "{{.Id}}", LAMBDA_IMAGE), "run make images-local"
    assert (BUILD_DIR / "template.yaml").exists(), f"no build in {BUILD_DIR}: make build ARCH=x86_64"
    return docker("network", "inspect", "bridge", "--format", "{{(index .IPAM.Config 0).Gateway}}")


def accepting(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait(condition: Callable[[], bool], timeout: float, what: str, log: Callable[[], str] = lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.25)
    raise AssertionError(f"{what} within {timeout:.0f} s\n{log()[-4000:]}")


class Relay:
    """Forward connections on (host, port) to a local address: PostgreSQL listens on 127.0.0.1 alone."""

    def __init__(self, host: str, target: tuple[str, int]) -> None:
        self.host, self.port, self.target = host, free_port(), target
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self.thread.start()
        ready.wait(10)

    def _run(self, ready: threading.Event) -> None:
        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            writer.close()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
            await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

        async def serve() -> None:
            server = await asyncio.start_server(handle, self.host, self.port)
            ready.set()
            async with server:
                await server.serve_forever()

        with contextlib.suppress(RuntimeError):
            self.loop.run_until_complete(serve())

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)


def psql(sql: str) -> None:
    async def run() -> None:
        import asyncpg

        connection = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user="postgres", database="postgres")
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(run())


@dataclass
class Datastores:
    env: dict[str, str]  # make dev's URLs (on the bridge address)
    sql_for_containers: str  # PostgreSQL through the relay


@pytest.fixture(scope="module")
def datastores(bridge: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Datastores]:
    psql(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
    psql(f'CREATE DATABASE "{DATABASE}"')
    redis_port, mongo_port, s3_port = free_port(), free_port(), free_port()
    bin_dir = Path(sys.executable).parent
    servers = [
        Process(
            # Bound to the bridge's address alone, not the machine's network: no password needed.
            "redis",
            [
                *("redis-server", "--bind", bridge, "--port", str(redis_port), "--protected-mode", "no"),
                *("--save", "", "--appendonly", "no"),
            ],
        ),
        Process(
            "mongo",
            [
                *(str(bin_dir / "secantusd-py"), "--host", bridge, "--port", str(mongo_port)),
                *("--storage-path", str(tmp_path_factory.mktemp("mongo")), "--log-level", "WARNING"),
            ],
        ),
        Process("s3", [sys.executable, "-m", "infra.local.embedded_s3", "-H", bridge, "-p", str(s3_port)]),
    ]
    relay = Relay(bridge, (PG_HOST, PG_PORT))
    try:
        for server, port in zip(servers, (redis_port, mongo_port, s3_port), strict=True):
            wait(lambda p=port: accepting(bridge, p), 60, f"{server.name} did not listen", server.log)  # type: ignore[misc]
        yield Datastores(
            env={
                "DATABASE_URL": f"postgresql+asyncpg://postgres@{PG_HOST}:{PG_PORT}/{DATABASE}",
                "REDIS_URL": f"redis://{bridge}:{redis_port}/0",
                "BROKER_URL": f"redis://{bridge}:{redis_port}/1",
                "MONGO_URL": f"mongodb://{bridge}:{mongo_port}",
                "S3_ENDPOINT_URL": f"http://{bridge}:{s3_port}",
            },
            sql_for_containers=f"postgresql+asyncpg://postgres@{bridge}:{relay.port}/{DATABASE}",
        )
    finally:
        relay.close()
        for server in servers:
            server.stop()
        with contextlib.suppress(Exception):
            psql(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')


def clean_environment(**values: str) -> dict[str, str]:
    """This process's environment without what the test suite set for itself (tests/conftest.py)."""
    kept = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE")
    return {name: os.environ[name] for name in kept if name in os.environ} | values


@dataclass
class Gateway:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    first_answer: float = 0.0

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def started(name: str, argv: list[str], env: dict[str, str], port: int, log: Path, timeout: float) -> Gateway:
    """Start a gateway and wait until it answers the public-key route (its first answer, timed)."""
    begin = time.monotonic()
    with log.open("ab") as sink:
        process = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
    gateway = Gateway(name, f"http://127.0.0.1:{port}", process, log)

    def answers() -> bool:
        assert process.poll() is None, f"{name} stopped:\n{gateway.tail()}"
        try:
            return httpx.get(f"{gateway.url}/api/v1/auth/keys/public", timeout=60).status_code == 200
        except httpx.TransportError:
            return False

    wait(answers, timeout, f"{name} did not answer", gateway.tail)
    gateway.first_answer = time.monotonic() - begin
    return gateway


def stopped(gateway: Gateway) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(gateway.process.pid, signal.SIGINT)  # Ctrl-C
    try:
        gateway.process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(gateway.process.pid, signal.SIGKILL)
        gateway.process.wait()


@pytest.fixture(scope="module")
def dev(datastores: Datastores, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """`make dev` (its recipe: python -m infra.local.dev) on the shared datastores."""
    state = tmp_path_factory.mktemp("dev-state")
    port = free_port()  # not 3000: other runs on this machine (tests/e2e) prefer it
    env = clean_environment(
        APP_ENV="LOCAL",
        LOCAL_STATE_DIR=str(state),
        GATEWAY_PORT=str(port),
        REALTIME_PORT=str(free_port()),
        **datastores.env,
        **AWS,
    )
    gateway = started("make dev", [sys.executable, "-m", "infra.local.dev"], env, port, state / "dev.log", 180)
    yield gateway
    stopped(gateway)


@pytest.fixture(scope="module")
def sam(
    dev: Gateway, datastores: Datastores, tmp_path_factory: pytest.TempPathFactory, bridge: str
) -> Iterator[Gateway]:
    """`sam local start-api` on the x86_64 build, handed make dev's keys and datastores."""
    work = tmp_path_factory.mktemp("sam")
    state = dev.log.parent
    variables = subprocess.run(
        [sys.executable, "-m", "infra.local.sam_local_env", "--from-env", "--host", bridge],
        env=clean_environment(
            KEYS_DIR=str(state / "keys"),
            PYTHONPATH=f"{ROOT}:{ROOT / 'shared'}",
            **(datastores.env | {"DATABASE_URL": datastores.sql_for_containers}),
        ),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (work / "env.json").write_text(variables)
    template = subprocess.run(
        [sys.executable, "-m", "infra.local.sam_local_env", "--template", str(BUILD_DIR)],
        env=clean_environment(PYTHONPATH=f"{ROOT}:{ROOT / 'shared'}"),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    port = free_port()
    argv = [
        *(str(SAM), "local", "start-api", "--template", template),
        *("--env-vars", str(work / "env.json"), "--host", "127.0.0.1", "--port", str(port)),
        *("--skip-pull-image", "--warm-containers", "LAZY", "--parameter-overrides", "Architecture=x86_64"),
    ]
    env = clean_environment(DOCKER_HOST=DOCKER_HOST, SAM_CLI_TELEMETRY="0", **AWS)
    gateway = started("sam local", argv, env, port, work / "sam.log", 600)
    yield gateway
    # Its warm containers first, at once: on Ctrl-C the SAM CLI stops them one by one, a minute.
    containers = docker("ps", "-aq", "--filter", f"ancestor={LAMBDA_IMAGE}")
    if containers:
        docker("rm", "-f", *containers.split())
    stopped(gateway)


# What differs between two answers that are the same: ids, times, tokens, signatures.
PLACEHOLDERS = [
    (re.compile(r'"ts":\d+'), '"ts":<ms>'),
    (re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]+"), "<jwt>"),
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "<uuid>"),
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?"), "<time>"),
    (re.compile(r"\d{8}T\d{6}Z"), "<amz-date>"),
    (re.compile(r"%2F\d{8}%2F"), "%2F<date>%2F"),
    (re.compile(r"\b[0-9a-f]{64}\b"), "<signature>"),
    (re.compile(r"\b[0-9a-f]{32}\b"), "<hex-id>"),
    (re.compile(r"\b[0-9a-f]{24}\b"), "<object-id>"),
]


# Where the SAM CLI is known to answer otherwise than API Gateway, make dev's gateway answering
# as API Gateway does: the step, and sam local's exact answer (so a SAM CLI that changes shows).
SAM_CLI_DIFFERS = {
    # An HTTP API answers a simple-response authorizer's `isAuthorized: false` with 403
    # {"message":"Forbidden"}; the SAM CLI sends its REST-API-style message for any Lambda
    # authorizer's refusal (samcli/local/apigw/service_error_responses.py).
    "GET roles without the permission": (403, '{"message":"User is not authorized to access this resource"}\n'),
    # The same answer as API Gateway's and make dev's, but for the newline Flask's jsonify ends
    # every body with (the SAM CLI's gateway is a Flask app).
    "GET user/info, no token": (401, '{"message":"Unauthorized"}\n'),
}


def normalized(body: bytes) -> str:
    text = body.decode(errors="replace")
    for pattern, placeholder in PLACEHOLDERS:
        text = pattern.sub(placeholder, text)
    return text


@dataclass
class Answer:
    status: int
    content_type: str
    body: str
    raw: bytes


Step = tuple[str, Callable[[httpx.Client, dict[str, Any]], httpx.Response]]


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def login(client: httpx.Client, username: str, password: str) -> httpx.Response:
    pem = client.get("/api/v1/auth/keys/public").json()["data"]["publicKey"]
    body = {"username": username, "password": encrypt_password(password, pem)}
    return client.post("/api/v1/auth/login", json=body)


def expired_token(variables: dict[str, str], user_id: str) -> str:
    """An access token that expired two minutes ago, signed with the shared key."""
    now = int(time.time())
    payload = {
        "iss": variables["JWT_ISSUER"],
        "aud": variables["JWT_AUDIENCE"],
        "sub": user_id,
        "iat": now - 600,
        "nbf": now - 600,
        "exp": now - 120,
        "jti": uuid.uuid4().hex,
        "typ": "access",
        "fam": uuid.uuid4().hex,
    }
    return jwt.encode(
        payload, variables["JWT_PRIVATE_KEY"], algorithm="RS256", headers={"kid": variables["JWT_KEY_ID"]}
    )


def steps(variables: dict[str, str]) -> list[Step]:
    """The table: each step gets the client and what earlier steps kept (tokens, ids)."""

    def logged_in(client: httpx.Client, kept: dict[str, Any]) -> httpx.Response:
        response = login(client, "admin", ADMIN_PASSWORD)
        kept["admin"] = response.json()["data"]["accessToken"]
        return response

    def user_info(client: httpx.Client, kept: dict[str, Any]) -> httpx.Response:
        response = client.get("/api/v1/auth/user/info", headers=bearer(kept["admin"]))
        kept["admin_id"] = response.json()["data"]["id"]
        return response

    def refused(client: httpx.Client, kept: dict[str, Any]) -> httpx.Response:
        token = login(client, "parity", "parity-password").json()["data"]["accessToken"]
        return client.get("/api/v1/roles", headers=bearer(token))

    def role_created(client: httpx.Client, kept: dict[str, Any]) -> httpx.Response:
        body = {"name": "Parity", "code": "parity", "description": "sent to both gateways"}
        response = client.post("/api/v1/roles", json=body, headers=bearer(kept["admin"]))
        if response.status_code == 201:  # the other gateway creates the same role next
            role = response.json()["data"]["id"]
            client.delete(f"/api/v1/roles/{role}", headers=bearer(kept["admin"])).raise_for_status()
        return response

    def upload_url(client: httpx.Client, kept: dict[str, Any]) -> httpx.Response:
        body = {"name": "parity.txt", "size": 3, "contentType": "text/plain"}
        return client.post("/api/v1/files/uploads", json=body, headers=bearer(kept["admin"]))

    def task_run(client: httpx.Client, kept: dict[str, Any]) -> httpx.Response:
        response = client.post("/api/v1/tasks/runs", json={"task": "multidb.ping"}, headers=bearer(kept["admin"]))
        kept["run"] = response.json()["data"]["taskId"]
        return response

    def task_finished(client: httpx.Client, kept: dict[str, Any]) -> httpx.Response:
        """The run as make dev's worker finished it (both gateways enqueue on the same broker)."""
        path = f"/api/v1/tasks/runs/{kept['run']}"
        deadline = time.monotonic() + 60
        while True:
            response = client.get(path, headers=bearer(kept["admin"]))
            if response.json()["data"]["state"] in ("SUCCESS", "FAILURE") or time.monotonic() > deadline:
                return response
            time.sleep(0.5)

    return [
        ("GET public key", lambda c, k: c.get("/api/v1/auth/keys/public")),
        ("POST login (RSA password)", logged_in),
        ("GET user/info", user_info),
        ("GET roles without the permission", refused),
        ("POST roles (create)", role_created),
        ("POST files/uploads (upload URL)", upload_url),
        ("POST tasks/runs", task_run),
        ("GET tasks/runs/{id} once finished", task_finished),
        ("GET user/info, no token", lambda c, k: c.get("/api/v1/auth/user/info")),
        (
            "GET user/info, expired token",
            lambda c, k: c.get("/api/v1/auth/user/info", headers=bearer(expired_token(variables, k["admin_id"]))),
        ),
    ]


def answers(gateway: Gateway, table: list[Step]) -> list[Answer]:
    kept: dict[str, Any] = {}
    result = []
    with httpx.Client(base_url=gateway.url, timeout=120, headers={"user-agent": "parity"}) as client:
        for _, step in table:
            response = step(client, kept)
            result.append(
                Answer(
                    response.status_code,
                    response.headers.get("content-type", ""),
                    normalized(response.content),
                    response.content,
                )
            )
    return result


def create_parity_user(dev: Gateway) -> None:
    """A user with no role (the permission refusal), made once through make dev's gateway."""
    with httpx.Client(base_url=dev.url, timeout=60) as client:
        response = login(client, "admin", ADMIN_PASSWORD)
        assert response.status_code == 200, response.text
        admin = response.json()["data"]["accessToken"]
        pem = client.get("/api/v1/auth/keys/public").json()["data"]["publicKey"]
        body = {
            "name": "Parity",
            "email": "parity@example.com",
            "username": "parity",
            "password": encrypt_password("parity-password", pem),
        }
        response = client.post("/api/v1/users", json=body, headers=bearer(admin))
        assert response.status_code == 201, response.text


def test_sam_local_answers_as_make_dev_does(dev: Gateway, sam: Gateway) -> None:
    variables = json.loads((sam.log.parent / "env.json").read_text())["Parameters"]
    create_parity_user(dev)
    table = steps(variables)
    on_dev = answers(dev, table)
    on_sam = answers(sam, table)

    rows = [
        f"sam local's first answer (a cold container): {sam.first_answer:.1f} s,"
        f" the make dev gateway's {dev.first_answer:.1f} s"
    ]
    differences = []
    for (name, _), mine, theirs in zip(table, on_dev, on_sam, strict=True):
        same = (mine.status, mine.content_type, mine.body) == (theirs.status, theirs.content_type, theirs.body)
        verdict = "same" if same else "DIFFERENT"
        if name in SAM_CLI_DIFFERS:
            expected_status, expected_body = SAM_CLI_DIFFERS[name]
            same = mine.status == theirs.status == expected_status and theirs.body == expected_body
            verdict = "same status; the SAM CLI's own body (known)" if same else "DIFFERENT"
        rows.append(f"{name:<36} make dev {mine.status}  sam local {theirs.status}  {verdict}")
        if not same:
            differences.append(
                f"{name}\n  make dev  {mine.status} {mine.content_type} {mine.body!r}\n"
                f"  sam local {theirs.status} {theirs.content_type} {theirs.body!r}"
            )
    print("\n".join(rows))
    for line in differences:
        print(line)
    assert not differences, "\n".join(differences)
