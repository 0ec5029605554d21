"""Every auth route refuses bad input with a 4xx envelope and leaves storage as it was."""

import json
from typing import Any

import pytest

from tests.conftest import ADMIN_PASSWORD
from tests.helpers import Api, snapshot

FORM = {"content-type": "application/x-www-form-urlencoded"}


def assert_refused(response: Any, status: int) -> None:
    assert response.status_code == status, response.body
    body = response.json()
    if "code" in body:  # the function answered (the gateway's own 401/403 carry only a message)
        assert body["code"] == status
        assert set(body) == {"code", "error", "message", "ts", "data"}
    assert "Traceback" not in response.body.decode()


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (None, {}, 422),
        ("{not json", {"content-type": "application/json"}, 422),
        (json.dumps({"username": "admin"}), {"content-type": "application/json"}, 422),
        (json.dumps({"username": "", "password": "x"}), {"content-type": "application/json"}, 422),
        (json.dumps({"username": "a" * 65, "password": "x"}), {"content-type": "application/json"}, 422),
        (json.dumps({"username": "admin", "password": "not base64 !!"}), {"content-type": "application/json"}, 422),
        (json.dumps({"username": "admin", "password": "aGVsbG8="}), {"content-type": "application/json"}, 422),
        (json.dumps({"username": "admin", "password": ADMIN_PASSWORD}), {"content-type": "application/json"}, 422),
        (json.dumps([1, 2]), {"content-type": "application/json"}, 422),
    ],
    ids=[
        "empty",
        "broken-json",
        "no-password",
        "empty-username",
        "long-username",
        "not-base64",
        "not-oaep",
        "plaintext",
        "array",
    ],
)
def test_login_bad_input(api: Api, body: str | None, headers: dict[str, str], status: int) -> None:
    before = snapshot()
    assert_refused(api.post("/api/v1/auth/login", body=body, headers=headers), status)
    assert snapshot() == before


def test_login_without_user_agent_is_422(api: Api) -> None:
    before = snapshot()
    body = {"username": "admin", "password": api.encrypt(ADMIN_PASSWORD)}
    response = api.post("/api/v1/auth/login", json_body=body, user_agent=None)
    assert_refused(response, 422)
    assert response.json()["data"][0]["field"] == "header.user-agent"
    assert snapshot() == before


def test_validation_errors_never_echo_the_input(api: Api) -> None:
    response = api.post("/api/v1/auth/login", json_body={"username": "admin", "password": 12345678})
    assert_refused(response, 422)
    assert "12345678" not in response.body.decode()


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 422),
        ({"x-refresh-token": "garbage"}, 401),
        ({"x-refresh-token": "a.b.c"}, 401),
    ],
    ids=["missing", "garbage", "malformed"],
)
def test_refresh_bad_input(api: Api, headers: dict[str, str], status: int) -> None:
    api.login("admin", ADMIN_PASSWORD)
    before = snapshot()
    assert_refused(api.post("/api/v1/auth/token/refresh", headers=headers), status)
    assert snapshot() == before


def test_refresh_with_an_access_token_is_401_and_spends_nothing(api: Api) -> None:
    tokens = api.login("admin", ADMIN_PASSWORD)
    before = snapshot()
    assert_refused(api.post("/api/v1/auth/token/refresh", headers={"x-refresh-token": tokens.access}), 401)
    assert snapshot() == before


def test_refresh_without_user_agent_is_422_and_spends_nothing(api: Api) -> None:
    tokens = api.login("admin", ADMIN_PASSWORD)
    before = snapshot()
    response = api.post("/api/v1/auth/token/refresh", headers={"x-refresh-token": tokens.refresh}, user_agent=None)
    assert_refused(response, 422)
    assert snapshot() == before


@pytest.mark.parametrize(
    ("body", "status"),
    [("", 422), ("username=admin", 422), ("username=&password=x", 422), ("username=admin&password=wrong", 401)],
    ids=["empty", "no-password", "empty-username", "wrong-password"],
)
def test_swagger_login_bad_input(api: Api, body: str, status: int) -> None:
    before = snapshot()
    assert_refused(api.post("/api/v1/auth/login/swagger", body=body, headers=FORM), status)
    after = snapshot()
    for counter in ("auth:login-failures:user:admin", "auth:login-failures:ip:127.0.0.1"):
        after["redis"].pop(counter, None)  # a wrong password counts toward the login limits
    assert after == before


@pytest.mark.parametrize(
    ("method", "path"), [("POST", "/api/v1/auth/logout"), ("GET", "/api/v1/auth/user/info")], ids=["logout", "info"]
)
@pytest.mark.parametrize("token", [None, "garbage"], ids=["anonymous", "garbage"])
def test_authenticated_routes_refuse_without_a_valid_token(api: Api, method: str, path: str, token: str | None) -> None:
    api.login("admin", ADMIN_PASSWORD)
    before = snapshot()
    response = api.request(method, path, token=token)
    # API Gateway answers 401 when the Authorization header is missing, 403 when the authorizer denies.
    assert_refused(response, 401 if token is None else 403)
    assert snapshot() == before


@pytest.mark.parametrize(("method", "path"), [("POST", "/api/v1/auth/logout"), ("GET", "/api/v1/auth/user/info")])
def test_functions_verify_the_token_themselves_without_the_gateway(api: Api, method: str, path: str) -> None:
    """Invoked directly (local invoke, tests), a function trusts no authorizer context."""
    from tests.helpers import load_event

    event = load_event(f"auth/{'logout' if 'logout' in path else 'user_info'}")
    event["headers"]["authorization"] = "Bearer forged"
    response = api.gateway.invoke("AuthFunction", event)  # the stored event carries a forged context
    assert response["statusCode"] == 401
    assert json.loads(response["body"])["code"] == 401


def test_unknown_methods_answer_in_the_envelope(api: Api) -> None:
    event = api.gateway.template.find("GET", "/api/v1/auth/keys/public")
    assert event is not None
    from tests.helpers import load_event

    stored = load_event("auth/get_public_key")
    stored["requestContext"]["http"]["method"] = "DELETE"
    response = api.gateway.invoke("AuthFunction", stored)
    assert response["statusCode"] == 405
    assert json.loads(response["body"])["code"] == 405
