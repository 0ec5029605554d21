"""Failures: a backend out of reach answers 503, anything unexpected a bare 500; never
internals, never tokens or passwords in the logs.

Fault injection against the real servers: each datastore taken away mid-test, through a
TCP proxy (PostgreSQL, Redis, S3: stopped, connections reset) or by freezing the process
(MongoDB: paused with SIGSTOP). A request meeting the outage answers 503 in the envelope
(behind the gateway, the authorizer fails closed), leaves stored data as it was, and the
next request after the server is back succeeds without restarting anything."""

import io
import logging
import os
import signal
from collections.abc import Iterator
from typing import Any

import bcrypt
import pytest

from multidb.logs import JsonFormatter
from multidb.rbac import task_code
from multidb.security import passwords
from tests.conftest import ADMIN_PASSWORD, PG_PORT, REDIS_DB, REDIS_SERVER_PORT, S3_PORT, USE_POSTGRES
from tests.faults import Proxy
from tests.helpers import Api, create_user, load_event, new_user, point_celery_at, snapshot
from tests.processes import Process, wait_for

FILE_CODES = (
    "GET:/api/v1/files",
    "POST:/api/v1/files/uploads",
    "POST:/api/v1/files/{file_id}/complete",
    "GET:/api/v1/files/{file_id}",
)
ENVELOPE = {"code", "error", "message", "ts", "data"}  # an error's


@pytest.fixture
def proxy() -> Iterator[list[Proxy]]:
    opened: list[Proxy] = []
    yield opened
    for each in opened:
        each.close()


def unavailable(response: Any) -> None:
    assert response.status_code == 503, response.body
    body = response.json()
    assert set(body) == ENVELOPE
    assert (body["code"], body["data"]) == (503, None)
    assert "Error" not in body["message"]
    assert "127.0.0.1" not in response.body.decode()


def direct(api: Api, name: str, token: str) -> Any:
    """The function's own answer, without the gateway in front (as `make invoke` calls it)."""
    from infra.local.gateway.invoke import GatewayResponse

    event = load_event(name)
    event["headers"]["authorization"] = f"Bearer {token}"
    function = {"auth": "AuthFunction", "roles": "RolesFunction"}[name.split("/")[0]]
    return GatewayResponse.from_lambda(api.gateway.invoke(function, event))


def test_redis_stopped_mid_session(api: Api, configure: Any, proxy: list[Proxy]) -> None:
    redis = Proxy(REDIS_SERVER_PORT).start()
    proxy.append(redis)
    configure(REDIS_URL=f"redis://127.0.0.1:{redis.port}/{REDIS_DB}")
    create_user("alice", "alice-password", codes=("GET:/api/v1/roles",))
    alice = api.login("alice", "alice-password")
    assert api.get("/api/v1/roles", token=alice.access).status_code == 200
    before = snapshot()

    redis.stop()
    login = api.post("/api/v1/auth/login", json_body={"username": "alice", "password": api.encrypt("alice-password")})
    unavailable(login)
    # Behind the gateway the authorizer denies: it cannot tell whether the token was revoked.
    assert api.get("/api/v1/roles", token=alice.access).status_code == 403
    unavailable(direct(api, "roles/list_roles", alice.access))  # the function itself answers 503
    unavailable(direct(api, "auth/logout", alice.access))

    redis.start()
    assert snapshot() == before  # nothing was written while it was away
    assert api.get("/api/v1/roles", token=alice.access).status_code == 200  # no restart needed
    assert (
        api.post(
            "/api/v1/auth/login", json_body={"username": "alice", "password": api.encrypt("alice-password")}
        ).status_code
        == 200
    )


@pytest.mark.skipif(not USE_POSTGRES, reason="SQLite is a file, not a server to stop (the PostgreSQL pass runs this)")
def test_postgresql_stopped_mid_session(api: Api, configure: Any, proxy: list[Proxy]) -> None:
    database = Proxy(PG_PORT).start()
    proxy.append(database)
    configure(DATABASE_URL=os.environ["DATABASE_URL"].replace(f":{PG_PORT}/", f":{database.port}/"))
    admin = api.login("admin", ADMIN_PASSWORD).access
    assert api.get("/api/v1/users", token=admin).status_code == 200  # grants cached, pool warm
    target = create_user("target", "target-password")
    before = snapshot()

    database.stop()
    newbie = new_user(api)
    unavailable(api.post("/api/v1/users", token=admin, json_body=newbie))
    unavailable(api.put(f"/api/v1/users/{target}", token=admin, json_body={"status": False}))
    unavailable(
        api.post("/api/v1/auth/login", json_body={"username": "admin", "password": api.encrypt(ADMIN_PASSWORD)})
    )

    database.start()
    assert snapshot() == before  # no user created, none disabled, no session opened
    assert api.post("/api/v1/users", token=admin, json_body=newbie).status_code == 201
    assert api.put(f"/api/v1/users/{target}", token=admin, json_body={"status": False}).status_code == 200


def stopped(pid: int) -> bool:
    """Whether the kernel has stopped the process (state T in /proc/<pid>/status)."""
    with open(f"/proc/{pid}/status") as status:
        return any(line.startswith("State:") and line.split()[1] == "T" for line in status)


@pytest.mark.first_pass_only("MongoDB is the same server in both passes")
def test_mongodb_paused_mid_session(api: Api, empty_files: None, configure: Any) -> None:
    from tests.processes import STARTED

    configure(MONGO_URL=os.environ["MONGO_URL"] + "/?serverSelectionTimeoutMS=1000&socketTimeoutMS=1000")
    create_user("alice", "alice-password", codes=FILE_CODES)
    alice = api.login("alice", "alice-password").access
    assert api.get("/api/v1/files", token=alice).status_code == 200
    mongodb: Process = next(p for p in STARTED if p.name == "mongodb" and p.alive())
    os.kill(mongodb.popen.pid, signal.SIGSTOP)
    try:
        # A signal is delivered asynchronously: on a busy machine the server may still answer
        # a request sent at once. Wait until the kernel reports it stopped.
        wait_for(lambda: stopped(mongodb.popen.pid), timeout=10, what="the MongoDB server to stop")
        unavailable(api.get("/api/v1/files", token=alice))
        unavailable(api.post("/api/v1/files/uploads", token=alice, json_body={"name": "a.txt", "size": 3}))
    finally:
        os.kill(mongodb.popen.pid, signal.SIGCONT)
    assert api.get("/api/v1/files", token=alice).json()["data"]["total"] == 0  # the upload was not stored
    assert api.post("/api/v1/files/uploads", token=alice, json_body={"name": "a.txt", "size": 3}).status_code == 201


@pytest.mark.first_pass_only("S3 is the same server in both passes")
def test_s3_stopped_mid_upload(api: Api, empty_files: None, configure: Any, proxy: list[Proxy]) -> None:
    import urllib.request

    s3 = Proxy(S3_PORT).start()
    proxy.append(s3)
    configure(S3_ENDPOINT_URL=f"http://127.0.0.1:{s3.port}")
    from multidb.files import storage

    storage.get_s3.cache_clear()
    try:
        create_user("alice", "alice-password", codes=FILE_CODES)
        alice = api.login("alice", "alice-password").access
        upload = api.post("/api/v1/files/uploads", token=alice, json_body={"name": "a.txt", "size": 3}).json()["data"]
        request = urllib.request.Request(upload["uploadUrl"], data=b"abc", method="PUT", headers=upload["headers"])
        urllib.request.urlopen(request, timeout=10).close()

        s3.stop()
        unavailable(api.post(f"/api/v1/files/{upload['file']['id']}/complete", token=alice))
        assert api.get(f"/api/v1/files/{upload['file']['id']}", token=alice).json()["data"]["status"] == "pending"

        s3.start()
        done = api.post(f"/api/v1/files/{upload['file']['id']}/complete", token=alice)
        assert (done.status_code, done.json()["data"]["status"]) == (200, "ready")
    finally:
        storage.get_s3.cache_clear()


def test_the_broker_stopped_mid_run(api: Api, configure: Any, proxy: list[Proxy], worker: Process) -> None:
    from tests.conftest import BROKER_DB, BROKER_URL

    broker = Proxy(REDIS_SERVER_PORT).start()
    proxy.append(broker)
    configure(BROKER_URL=f"redis://127.0.0.1:{broker.port}/{BROKER_DB}")
    create_user("alice", "alice-password", codes=("POST:/api/v1/tasks/runs", task_code("multidb.ping")))
    alice = api.login("alice", "alice-password").access
    point_celery_at(f"redis://127.0.0.1:{broker.port}/{BROKER_DB}")
    try:
        broker.stop()
        before = snapshot()
        unavailable(api.post("/api/v1/tasks/runs", token=alice, json_body={"task": "multidb.ping"}))
        assert snapshot() == before  # no run recorded, nothing counted
        broker.start()
        assert api.post("/api/v1/tasks/runs", token=alice, json_body={"task": "multidb.ping"}).status_code == 202
    finally:
        point_celery_at(BROKER_URL)  # the suite's broker, whatever the environment says now


def test_an_unexpected_error_is_a_bare_500_with_the_request_id(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    def explode() -> str:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr("auth_fn.routes.login_public_key_pem", explode)
    response = api.get("/api/v1/auth/keys/public")
    assert response.status_code == 500
    body = response.json()
    assert set(body) == ENVELOPE
    assert "secret internal detail" not in response.body.decode()
    assert response.headers["x-request-id"] in body["message"]


def test_unknown_user_and_wrong_password_do_the_same_bcrypt_work(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    create_user("ivan", "ivan-password")
    calls: list[bytes] = []
    real = bcrypt.checkpw

    def counting(password: bytes, hashed: bytes) -> bool:
        calls.append(hashed[:7])  # the algorithm and cost prefix, e.g. b"$2b$04$"
        return real(password, hashed)

    monkeypatch.setattr(passwords.bcrypt, "checkpw", counting)
    api.post("/api/v1/auth/login", json_body={"username": "ivan", "password": api.encrypt("wrong")})
    wrong_password = list(calls)
    calls.clear()
    api.post("/api/v1/auth/login", json_body={"username": "nobody", "password": api.encrypt("wrong")})
    assert calls == wrong_password  # one check, same cost: the same time class
    assert len(calls) == 1


def test_no_token_or_password_reaches_the_logs(api: Api) -> None:
    """Every record of a whole session, formatted as production formats it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("multidb")
    level = root.level
    root.addHandler(handler)
    root.setLevel("DEBUG")
    try:
        tokens = api.login("admin", ADMIN_PASSWORD)
        api.get("/api/v1/auth/user/info", token=tokens.access)
        api.post("/api/v1/auth/token/refresh", headers={"x-refresh-token": tokens.refresh})
        api.post("/api/v1/auth/token/refresh", headers={"x-refresh-token": tokens.refresh})  # reuse: a warning
        api.post("/api/v1/auth/logout", token=tokens.access)
        api.get("/api/v1/auth/user/info", token=tokens.access)  # denied: logged with its reason
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    logged = stream.getvalue()
    assert logged.count('"request_id"') >= 6
    assert "refresh token reuse" in logged
    for secret in (tokens.access, tokens.refresh, ADMIN_PASSWORD, tokens.access.split(".")[2]):
        assert secret not in logged
