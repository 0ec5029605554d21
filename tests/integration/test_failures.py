"""Unexpected failures: 503 when a backend is out of reach, 500 otherwise; never internals, never tokens in logs."""

import io
import logging
from collections.abc import Iterator

import bcrypt
import pytest

from multidb.logs import JsonFormatter
from multidb.security import passwords
from tests.conftest import ADMIN_PASSWORD
from tests.helpers import Api, create_user, reset_clients

ENVELOPE = {"code", "error", "message", "ts", "data"}  # an error's


@pytest.fixture
def outage(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    yield monkeypatch
    monkeypatch.undo()
    reset_clients()


@pytest.mark.parametrize(
    ("variable", "unreachable"),
    [("DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:1/none"), ("REDIS_URL", "redis://127.0.0.1:1/0")],
    ids=["database", "redis"],
)
def test_login_with_a_backend_down_is_503(
    api: Api, outage: pytest.MonkeyPatch, variable: str, unreachable: str
) -> None:
    password = api.encrypt(ADMIN_PASSWORD)
    outage.setenv(variable, unreachable)
    reset_clients()
    response = api.post("/api/v1/auth/login", json_body={"username": "admin", "password": password})
    assert response.status_code == 503
    assert set(response.json()) == ENVELOPE
    assert "127.0.0.1" not in response.body.decode()
    assert "Error" not in response.json()["message"]


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
