"""What every route keeps to, whatever its domain: answers neither cached, sniffed nor
downgraded, a 429 that says when to try again, and a body with a field the route does not
know refused with a 422 naming it, not ignored (issue #8's holes 10 and 12, through the real
handlers)."""

from typing import Any

import pytest

from tests.conftest import ADMIN_PASSWORD
from tests.helpers import Api, get_user_id, new_user, snapshot

ROLES = "/api/v1/roles"
USERS = "/api/v1/users"
RUNS = "/api/v1/tasks/runs"
LOGIN = "/api/v1/auth/login"


def login(api: Api, username: str, password: str, **body: Any) -> Any:
    return api.post(LOGIN, json_body={"username": username, "password": api.encrypt(password), **body})


# ---- 10. headers -----------------------------------------------------------------------------


def test_responses_are_not_cached_sniffed_or_downgraded(api: Api) -> None:
    for response in (
        api.get("/api/v1/auth/keys/public"),
        api.post(LOGIN, json_body={"username": "admin", "password": api.encrypt(ADMIN_PASSWORD)}),
    ):
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["strict-transport-security"].startswith("max-age=")
    plain = api.gateway.request("GET", "/api/v1/auth/keys/public", scheme="http")
    assert "strict-transport-security" not in plain.headers  # HSTS only where it means something


def test_a_429_says_when_to_try_again(api: Api) -> None:
    for _ in range(5):
        login(api, "admin", "guess")
    limited = login(api, "admin", "guess")
    assert limited.status_code == 429
    assert limited.json()["code"] == 429
    assert 0 < int(limited.headers["retry-after"]) <= 900


# ---- 12. unknown fields are refused, not ignored ---------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", USERS, {"roles": []}, "roles"),
        ("POST", ROLES, {"name": "R", "code": "r", "permissions": []}, "permissions"),
        ("PUT", f"{USERS}/{{admin}}", {"name": "A", "isSuperuser": True}, "isSuperuser"),
        ("POST", RUNS, {"task": "multidb.ping", "queue": "celery"}, "queue"),
        ("POST", LOGIN, {"username": "admin", "password": "x", "remember": True}, "remember"),
    ],
)
def test_a_body_with_an_unknown_field_is_422_naming_it(
    api: Api, admin: str, method: str, path: str, body: dict[str, Any], field: str
) -> None:
    if path == USERS:
        body = new_user(api, **body)
    path = path.replace("{admin}", get_user_id("admin"))
    before = snapshot()
    response = api.request(method, path, token=admin, json_body=body)
    assert response.status_code == 422, response.body
    assert {"field": field, "message": "Extra inputs are not permitted"} in response.json()["data"]
    assert snapshot() == before
