"""Text the API cannot store answers a clear 422 and changes nothing: a NUL character in
any field of any route (PostgreSQL's text cannot hold one), a file name whose object key
would pass S3's 1,024 bytes."""

from typing import Any

import pytest

from tests.conftest import USE_POSTGRES
from tests.helpers import Api, get_user_id, new_user, snapshot

NUL = "\x00"


def _role(api: Api, admin: str) -> str:
    response = api.post("/api/v1/roles", token=admin, json_body={"name": "Plain", "code": "plain"})
    assert response.status_code == 201, response.body
    return str(response.json()["data"]["id"])


def _user(api: Api, **fields: Any) -> dict[str, Any]:
    return new_user(api, "pass-word-1", **fields)


CASES = [
    # (method, path, body or None, field named in the answer)
    ("POST", "/api/v1/users", lambda api: _user(api, name=f"Eve{NUL}"), "name"),
    ("GET", "/api/v1/users?keyword=a%00b", None, "query.keyword"),
    ("PUT", "/api/v1/users/{admin_id}", lambda api: {"name": f"Admin{NUL}"}, "name"),
    ("POST", "/api/v1/roles", lambda api: {"name": f"R{NUL}", "code": "r"}, "name"),
    ("PUT", "/api/v1/roles/{role_id}", lambda api: {"description": f"about{NUL}"}, "description"),
    ("GET", "/api/v1/roles?keyword=%00", None, "query.keyword"),
    (
        "POST",
        "/api/v1/tasks/schedules",
        lambda api: {"name": f"nightly{NUL}", "task": "multidb.ping", "intervalSeconds": 60},
        "name",
    ),
    (
        "POST",
        "/api/v1/tasks/schedules",
        lambda api: {"name": "nightly", "task": "multidb.add", "args": [1, 2], "kwargs": {}, "description": NUL},
        "description",
    ),
    (
        "POST",
        "/api/v1/tasks/runs",
        lambda api: {"task": "multidb.ping", "kwargs": {"deep": [f"x{NUL}"]}},
        "kwargs.deep.0",
    ),
    ("POST", "/api/v1/files/uploads", lambda api: {"name": f"a{NUL}.txt", "size": 3}, "name"),
    ("GET", "/api/v1/audit?action=%00", None, "query.action"),
    ("POST", "/api/v1/auth/login", lambda api: {"username": f"admin{NUL}", "password": api.encrypt("x")}, "username"),
]


@pytest.mark.skipif(not USE_POSTGRES, reason="the NUL refusal is PostgreSQL's; SQLite stores it")
@pytest.mark.parametrize(("method", "path", "body", "field"), CASES, ids=[f"{c[0]} {c[1]} {c[3]}" for c in CASES])
def test_a_nul_in_any_text_field_is_422_naming_it_and_changes_nothing(
    api: Api, admin: str, empty_files: None, method: str, path: str, body: Any, field: str
) -> None:
    path = path.format(admin_id=get_user_id("admin"), role_id=_role(api, admin) if "{role_id}" in path else "")
    before = snapshot()
    response = api.request(method, path, token=admin, json_body=body(api) if body else None)
    assert response.status_code == 422, response.body
    answer = response.json()
    assert answer["error"] == "invalid_input"
    assert answer["data"] == [{"field": field, "message": "text cannot hold a NUL character (\\u0000)"}]
    assert NUL not in response.body.decode()  # the refused text is never echoed
    assert snapshot() == before


def test_a_nul_in_a_form_field_is_422(api: Api) -> None:
    form = {"content-type": "application/x-www-form-urlencoded"}
    response = api.post("/api/v1/auth/login/swagger", body="username=ad%00min&password=x", headers=form)
    assert response.status_code == 422, response.body
    assert response.json()["data"] == [{"field": "username", "message": "text cannot hold a NUL character (\\u0000)"}]


def test_a_nul_in_an_object_key_is_refused_without_echoing_the_key(api: Api, admin: str) -> None:
    body = {"task": "multidb.ping", "kwargs": {f"secret{NUL}": 1}}
    response = api.post("/api/v1/tasks/runs", token=admin, json_body=body)
    assert response.status_code == 422
    assert response.json()["data"][0]["field"] == "kwargs"


def test_text_around_the_nul_is_still_accepted(api: Api, admin: str) -> None:
    """Other control-free text, the escaped backslash `\\u0000` (six characters) included."""
    response = api.post(
        "/api/v1/roles", token=admin, json_body={"name": "R", "code": "r", "description": "\\u0000 é ✓"}
    )
    assert response.status_code == 201, response.body
    assert response.json()["data"]["description"] == "\\u0000 é ✓"


@pytest.mark.parametrize(
    ("longest", "too_long"), [("😀" * 238, "😀" * 239), ("a" * 18 + "😀" * 234, "a" * 19 + "😀" * 234)]
)
def test_a_file_name_whose_object_key_would_pass_1024_bytes_is_422(
    api: Api, admin: str, empty_files: None, longest: str, too_long: str
) -> None:
    """The key is `<owner id>/<32 hex>/<name>`: 70 bytes and the name's UTF-8 (at most 255
    characters: only names of 4-byte characters come near)."""
    before = snapshot()
    refused = api.post("/api/v1/files/uploads", token=admin, json_body={"name": too_long, "size": 3})
    assert refused.status_code == 422, refused.body
    assert refused.json()["data"][0]["field"] == "name"
    assert snapshot() == before
    accepted = api.post("/api/v1/files/uploads", token=admin, json_body={"name": longest, "size": 3})
    assert accepted.status_code == 201, accepted.body
    url = accepted.json()["data"]["uploadUrl"]
    from urllib.parse import unquote, urlsplit

    key = unquote(urlsplit(url).path).split("/", 2)[2]  # /<bucket>/<key>
    assert len(key.encode()) <= 1024
