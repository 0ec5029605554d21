"""RBAC administration through the gateway: the roles, users and routers functions."""

import asyncio
import time
import uuid
from typing import Any

import pytest

from multidb.rbac import Access, catalogue, listed
from tests.conftest import ADMIN_PASSWORD, USE_POSTGRES
from tests.helpers import Api, create_user, get_user_id, role_id, snapshot

ADMIN_ROUTES = sorted(
    (entry["method"], entry["path"])
    for entry in catalogue().values()
    if entry["function"] in ("RolesFunction", "UsersFunction", "RoutersFunction")
    and entry["access"] == Access.PERMISSION
)


def concrete(path: str) -> str:
    return path.replace("{role_id}", str(uuid.uuid4())).replace("{user_id}", str(uuid.uuid4()))


@pytest.fixture
def nobody(api: Api) -> str:
    create_user("nobody", "nobody-password")
    return api.login("nobody", "nobody-password").access


def body_of(response: Any) -> Any:
    payload = response.json()
    errors = {"error"} if payload["code"] >= 400 else set()  # an error names itself
    assert set(payload) == {"code", "message", "ts", "data"} | errors, payload
    assert payload["code"] == response.status_code
    return payload["data"]


@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES, ids=[f"{m} {p}" for m, p in ADMIN_ROUTES])
def test_anonymous_is_401_and_without_permission_is_403(api: Api, nobody: str, method: str, path: str) -> None:
    assert api.request(method, concrete(path)).status_code == 401
    before = snapshot()
    response = api.request(method, concrete(path), token=nobody, json_body={"ids": [str(uuid.uuid4())]})
    assert response.status_code == 403
    assert snapshot() == before


# ---- the scenario the issue asks for -------------------------------------------------------


def test_a_grant_counts_on_the_next_request_and_disabling_on_the_one_after(api: Api, admin: str) -> None:
    user_id = create_user("reader", "reader-password", codes=("GET:/api/v1/roles",))
    reader = api.login("reader", "reader-password").access
    assert api.get("/api/v1/roles", token=reader).status_code == 200
    new_role = {"name": "Made by reader", "code": "by-reader"}
    assert api.post("/api/v1/roles", token=reader, json_body=new_role).status_code == 403

    role = role_id("reader-role")
    grant = {"interfacePermissions": ["GET:/api/v1/roles", "POST:/api/v1/roles"]}
    assert api.request("PUT", f"/api/v1/roles/{role}", token=admin, json_body=grant).status_code == 200
    assert api.post("/api/v1/roles", token=reader, json_body=new_role).status_code == 201  # same token

    assert api.request("PUT", f"/api/v1/users/{user_id}", token=admin, json_body={"status": False}).status_code == 200
    refused = api.get("/api/v1/roles", token=reader)
    assert refused.status_code in (401, 403)


def test_the_same_holds_behind_a_caching_gateway(caching_api: Api) -> None:
    """With AuthorizerCacheTtl > 0 a cached Allow still meets the function's live check."""
    api = caching_api
    admin = api.login("admin", ADMIN_PASSWORD).access
    user_id = create_user("cached", "cached-password", codes=("GET:/api/v1/roles",))
    token = api.login("cached", "cached-password").access
    assert api.get("/api/v1/roles", token=token).status_code == 200  # Allow now cached
    role = role_id("cached-role")
    assert api.request("PUT", f"/api/v1/roles/{role}", token=admin, json_body={"status": False}).status_code == 200
    assert api.get("/api/v1/roles", token=token).status_code == 403  # the role is off: no grant
    assert api.request("PUT", f"/api/v1/users/{user_id}", token=admin, json_body={"status": False}).status_code == 200
    assert api.get("/api/v1/roles", token=token).status_code in (401, 403)


# ---- roles ----------------------------------------------------------------------------------


def make_role(api: Api, admin: str, code: str, codes: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    body = {"name": code.title(), "code": code, "interfacePermissions": codes or [], **extra}
    response = api.post("/api/v1/roles", token=admin, json_body=body)
    assert response.status_code == 201, response.body
    return body_of(response)  # type: ignore[no-any-return]


def test_roles_list_pages_and_filters(api: Api, admin: str) -> None:
    for index in range(12):
        make_role(api, admin, f"role-{index:02d}", status=index % 2 == 0)
    make_role(api, admin, "under_score")
    first = body_of(api.get("/api/v1/roles?page=1&pageSize=5", token=admin))
    second = body_of(api.get("/api/v1/roles?page=2&pageSize=5", token=admin))
    assert (first["page"], first["pageSize"], first["total"]) == (1, 5, 13)
    assert len(first["records"]) == len(second["records"]) == 5
    assert not {r["id"] for r in first["records"]} & {r["id"] for r in second["records"]}
    assert body_of(api.get("/api/v1/roles?status=false", token=admin))["total"] == 6
    assert body_of(api.get("/api/v1/roles?keyword=ROLE-0", token=admin))["total"] == 10
    # LIKE wildcards are literal: "_" matches only an underscore.
    assert [r["code"] for r in body_of(api.get("/api/v1/roles?keyword=_", token=admin))["records"]] == ["under_score"]
    assert body_of(api.get("/api/v1/roles?keyword=%25", token=admin))["total"] == 0


@pytest.mark.parametrize("query", ["pageSize=101", "pageSize=0", "page=0", "status=maybe", "keyword=" + "k" * 65])
def test_roles_list_bad_query_is_422(api: Api, admin: str, query: str) -> None:
    assert api.get(f"/api/v1/roles?{query}", token=admin).status_code == 422


def test_roles_all_and_mine(api: Api, admin: str) -> None:
    make_role(api, admin, "a-on")
    make_role(api, admin, "b-off", status=False)
    assert [r["code"] for r in body_of(api.get("/api/v1/roles/all", token=admin))] == ["a-on", "b-off"]
    assert [r["code"] for r in body_of(api.get("/api/v1/roles/all?status=true", token=admin))] == ["a-on"]
    assert api.get("/api/v1/roles/all?status=x", token=admin).status_code == 422
    create_user("mia", "mia-password", codes=("GET:/api/v1/roles",))
    token = api.login("mia", "mia-password").access
    assert [r["code"] for r in body_of(api.get("/api/v1/roles/mine", token=token))] == ["mia-role"]
    assert body_of(api.get("/api/v1/roles/mine", token=admin)) == []


def test_role_create(api: Api, admin: str) -> None:
    role = make_role(api, admin, "viewer", ["GET:/api/v1/roles"], buttonPermissions=["role:view"])
    assert role["interfacePermissions"] == ["GET:/api/v1/roles"]
    assert role["buttonPermissions"] == ["role:view"]
    before = snapshot()
    duplicate = api.post("/api/v1/roles", token=admin, json_body={"name": "Again", "code": "viewer"})
    assert duplicate.status_code == 409
    assert snapshot() == before


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": "No code"},
        {"name": "", "code": "empty-name"},
        {"name": "Bad code", "code": "has space"},
        {"name": "Bad code", "code": "9starts-with-digit"},
        {"name": "Unknown", "code": "unknown", "interfacePermissions": ["GET:/api/v1/nothing"]},
        {"name": "Wrong type", "code": "wrong", "interfacePermissions": "GET:/api/v1/roles"},
        {"name": "Null", "code": "null", "status": None},
    ],
)
def test_role_create_bad_input_is_422_and_stores_nothing(api: Api, admin: str, body: dict[str, Any]) -> None:
    before = snapshot()
    assert api.post("/api/v1/roles", token=admin, json_body=body).status_code == 422
    assert snapshot() == before


def test_role_update(api: Api, admin: str) -> None:
    role = make_role(api, admin, "editor")
    make_role(api, admin, "taken")
    path = f"/api/v1/roles/{role['id']}"
    updated = body_of(api.request("PUT", path, token=admin, json_body={"description": "Edits", "status": False}))
    assert (updated["description"], updated["status"], updated["code"]) == ("Edits", False, "editor")
    before = snapshot()
    assert api.request("PUT", path, token=admin, json_body={"code": "taken"}).status_code == 409
    assert api.request("PUT", path, token=admin, json_body={}).status_code == 422
    assert api.request("PUT", path, token=admin, json_body={"name": None}).status_code == 422
    assert api.request("PUT", path, token=admin, json_body={"interfacePermissions": ["GET:/nope"]}).status_code == 422
    assert api.request("PUT", "/api/v1/roles/not-a-uuid", token=admin, json_body={"name": "x"}).status_code == 422
    missing = api.request("PUT", f"/api/v1/roles/{uuid.uuid4()}", token=admin, json_body={"name": "x"})
    assert missing.status_code == 404
    assert snapshot() == before


def test_role_delete_one_and_many(api: Api, admin: str) -> None:
    a, b, c = (make_role(api, admin, code) for code in ("del-a", "del-b", "del-c"))
    before = snapshot()
    partly_missing = {"ids": [a["id"], str(uuid.uuid4())]}
    assert api.request("DELETE", "/api/v1/roles", token=admin, json_body=partly_missing).status_code == 404
    assert api.request("DELETE", "/api/v1/roles", token=admin, json_body={"ids": []}).status_code == 422
    assert api.request("DELETE", "/api/v1/roles", token=admin, json_body={"ids": ["x"]}).status_code == 422
    assert api.request("DELETE", f"/api/v1/roles/{uuid.uuid4()}", token=admin).status_code == 404
    assert api.request("DELETE", "/api/v1/roles/nope", token=admin).status_code == 422
    assert snapshot() == before
    assert body_of(api.request("DELETE", "/api/v1/roles", token=admin, json_body={"ids": [a["id"], b["id"]]})) == 2
    assert body_of(api.request("DELETE", f"/api/v1/roles/{c['id']}", token=admin)) == 1
    assert body_of(api.get("/api/v1/roles", token=admin))["total"] == 0


def test_deleting_a_role_in_use_takes_its_permissions_at_once(api: Api, admin: str) -> None:
    create_user("olga", "olga-password", codes=("GET:/api/v1/roles",))
    token = api.login("olga", "olga-password").access
    assert api.get("/api/v1/roles", token=token).status_code == 200
    assert api.request("DELETE", f"/api/v1/roles/{role_id('olga-role')}", token=admin).status_code == 200
    assert api.get("/api/v1/roles", token=token).status_code == 403


# ---- users ----------------------------------------------------------------------------------


def new_user(api: Api, admin: str, username: str, password: str = "a-good-password", **extra: Any) -> dict[str, Any]:
    body = {
        "name": username.title(),
        "email": f"{username}@example.com",
        "username": username,
        "password": api.encrypt(password),
        **extra,
    }
    response = api.post("/api/v1/users", token=admin, json_body=body)
    assert response.status_code == 201, response.body
    return body_of(response)  # type: ignore[no-any-return]


def test_user_create_then_log_in(api: Api, admin: str) -> None:
    role = make_role(api, admin, "staff", ["GET:/api/v1/roles"])
    user = new_user(api, admin, "paul", roleIds=[role["id"]])
    assert user["roles"] == [{"id": role["id"], "code": "staff", "name": "Staff", "status": True}]
    assert "password" not in user
    assert "passwordHash" not in user
    token = api.login("paul", "a-good-password").access
    assert api.get("/api/v1/roles", token=token).status_code == 200
    before = snapshot()
    again = {"name": "P", "email": "p@example.com", "username": "paul", "password": api.encrypt("another-password")}
    assert api.post("/api/v1/users", token=admin, json_body=again).status_code == 409
    assert snapshot() == before


@pytest.mark.parametrize(
    "change",
    [
        {"password": "plaintext-password"},
        {"password": "short"},  # encrypted below, but under 8 characters
        {"email": "not-an-email"},
        {"username": "has space"},
        {"roleIds": [str(uuid.uuid4())]},
        {"name": ""},
        {"isAdmin": "yes please"},
    ],
    ids=["plaintext", "weak", "email", "username", "unknown-role", "empty-name", "bad-flag"],
)
def test_user_create_bad_input_is_422(api: Api, admin: str, change: dict[str, Any]) -> None:
    body = {"name": "Q", "email": "q@example.com", "username": "quinn", "password": api.encrypt("a-good-password")}
    body.update(change)
    if change.get("password") == "short":
        body["password"] = api.encrypt("short")
    before = snapshot()
    assert api.post("/api/v1/users", token=admin, json_body=body).status_code == 422
    assert snapshot() == before


def test_user_list_get_and_filters(api: Api, admin: str) -> None:
    role = make_role(api, admin, "ops")
    new_user(api, admin, "rita", roleIds=[role["id"]])
    new_user(api, admin, "sam_b", status=False)
    page = body_of(api.get("/api/v1/users?pageSize=2", token=admin))
    assert (page["total"], len(page["records"]), page["pageSize"]) == (3, 2, 2)
    assert body_of(api.get(f"/api/v1/users?roleId={role['id']}", token=admin))["records"][0]["username"] == "rita"
    assert body_of(api.get("/api/v1/users?status=false", token=admin))["records"][0]["username"] == "sam_b"
    assert body_of(api.get("/api/v1/users?keyword=EXAMPLE.COM", token=admin))["total"] == 3
    assert body_of(api.get("/api/v1/users?keyword=m_b", token=admin))["total"] == 1
    assert api.get("/api/v1/users?roleId=nope", token=admin).status_code == 422
    rita = body_of(api.get("/api/v1/users?keyword=rita", token=admin))["records"][0]
    assert body_of(api.get(f"/api/v1/users/{rita['id']}", token=admin))["username"] == "rita"
    assert api.get(f"/api/v1/users/{uuid.uuid4()}", token=admin).status_code == 404
    assert api.get("/api/v1/users/nope", token=admin).status_code == 422


def test_user_update(api: Api, admin: str) -> None:
    viewer = make_role(api, admin, "viewer", ["GET:/api/v1/roles"])
    user = new_user(api, admin, "tom")
    token = api.login("tom", "a-good-password").access
    assert api.get("/api/v1/roles", token=token).status_code == 403
    path = f"/api/v1/users/{user['id']}"
    changed = body_of(api.request("PUT", path, token=admin, json_body={"roleIds": [viewer["id"]], "name": "Thomas"}))
    assert changed["name"] == "Thomas"
    assert [r["code"] for r in changed["roles"]] == ["viewer"]
    assert api.get("/api/v1/roles", token=token).status_code == 200  # on the very next request
    before = snapshot()
    assert api.request("PUT", path, token=admin, json_body={}).status_code == 422
    assert api.request("PUT", path, token=admin, json_body={"email": "nope"}).status_code == 422
    assert api.request("PUT", path, token=admin, json_body={"roleIds": [str(uuid.uuid4())]}).status_code == 422
    assert api.request("PUT", f"/api/v1/users/{uuid.uuid4()}", token=admin, json_body={"name": "x"}).status_code == 404
    assert snapshot() == before


def test_disabling_a_user_ends_their_sessions(api: Api, admin: str) -> None:
    user = new_user(api, admin, "uma")
    tokens = api.login("uma", "a-good-password")
    assert (
        api.request("PUT", f"/api/v1/users/{user['id']}", token=admin, json_body={"status": False}).status_code == 200
    )
    assert api.get("/api/v1/auth/user/info", token=tokens.access).status_code in (401, 403)
    assert api.post("/api/v1/auth/token/refresh", headers={"x-refresh-token": tokens.refresh}).status_code == 401


def test_reset_password_ends_sessions_and_sets_the_new_password(api: Api, admin: str) -> None:
    user = new_user(api, admin, "vera")
    tokens = api.login("vera", "a-good-password")
    path = f"/api/v1/users/{user['id']}/password"
    assert api.request("PUT", path, token=admin, json_body={"password": api.encrypt("tiny")}).status_code == 422
    assert api.request("PUT", path, token=admin, json_body={"password": "plain"}).status_code == 422
    missing = f"/api/v1/users/{uuid.uuid4()}/password"
    assert (
        api.request("PUT", missing, token=admin, json_body={"password": api.encrypt("long-enough")}).status_code == 404
    )
    assert api.get("/api/v1/auth/user/info", token=tokens.access).status_code == 200  # nothing happened yet
    reset = api.request("PUT", path, token=admin, json_body={"password": api.encrypt("brand-new-password")})
    assert reset.status_code == 200
    assert api.get("/api/v1/auth/user/info", token=tokens.access).status_code == 403  # the authorizer denies
    assert api.post("/api/v1/auth/token/refresh", headers={"x-refresh-token": tokens.refresh}).status_code == 401
    api.login("vera", "brand-new-password")


def test_user_delete_one_and_many(api: Api, admin: str) -> None:
    one, two, three = (new_user(api, admin, name) for name in ("wes", "xia", "yan"))
    tokens = api.login("wes", "a-good-password")
    before = snapshot()
    assert (
        api.request(
            "DELETE", "/api/v1/users", token=admin, json_body={"ids": [one["id"], str(uuid.uuid4())]}
        ).status_code
        == 404
    )
    assert api.request("DELETE", "/api/v1/users", token=admin, json_body={"ids": []}).status_code == 422
    assert api.request("DELETE", f"/api/v1/users/{uuid.uuid4()}", token=admin).status_code == 404
    assert api.request("DELETE", "/api/v1/users/nope", token=admin).status_code == 422
    assert snapshot() == before
    assert body_of(api.request("DELETE", f"/api/v1/users/{one['id']}", token=admin)) == 1
    assert api.get("/api/v1/auth/user/info", token=tokens.access).status_code in (401, 403)
    assert (
        body_of(api.request("DELETE", "/api/v1/users", token=admin, json_body={"ids": [two["id"], three["id"]]})) == 2
    )


# ---- safe defaults --------------------------------------------------------------------------


def manager(api: Api) -> str:
    """A non-admin who may manage users (and holds GET:/api/v1/roles)."""
    codes = ("GET:/api/v1/roles", "POST:/api/v1/users", "PUT:/api/v1/users/{user_id}", "DELETE:/api/v1/users/{user_id}")
    create_user("manager", "manager-password", codes=codes)
    return api.login("manager", "manager-password").access


def test_nobody_grants_themselves_roles_or_admin(api: Api, admin: str) -> None:
    token = manager(api)
    me = body_of(api.get("/api/v1/auth/user/info", token=token))["id"]
    extra = make_role(api, admin, "extra", ["GET:/api/v1/roles"])
    before = snapshot()
    assert api.request("PUT", f"/api/v1/users/{me}", token=token, json_body={"isAdmin": True}).status_code == 403
    assert (
        api.request("PUT", f"/api/v1/users/{me}", token=token, json_body={"roleIds": [extra["id"]]}).status_code == 403
    )
    admin_id = body_of(api.get("/api/v1/auth/user/info", token=admin))["id"]
    assert api.request("PUT", f"/api/v1/users/{admin_id}", token=admin, json_body={"isAdmin": False}).status_code == 403
    assert api.request("DELETE", f"/api/v1/users/{admin_id}", token=admin).status_code == 403
    assert snapshot() == before
    # Renaming yourself is fine.
    assert api.request("PUT", f"/api/v1/users/{me}", token=token, json_body={"name": "Manager"}).status_code == 200


def test_non_admins_cannot_create_admins_or_hand_out_more_than_they_hold(api: Api, admin: str) -> None:
    token = manager(api)
    powerful = make_role(api, admin, "powerful", ["DELETE:/api/v1/roles"])
    modest = make_role(api, admin, "modest", ["GET:/api/v1/roles"])
    base = {"name": "N", "email": "n@example.com", "username": "newbie", "password": api.encrypt("a-good-password")}
    before = snapshot()
    assert api.post("/api/v1/users", token=token, json_body={**base, "isAdmin": True}).status_code == 403
    assert api.post("/api/v1/users", token=token, json_body={**base, "roleIds": [powerful["id"]]}).status_code == 403
    assert snapshot() == before
    assert api.post("/api/v1/users", token=token, json_body={**base, "roleIds": [modest["id"]]}).status_code == 201
    admin_id = body_of(api.get("/api/v1/auth/user/info", token=admin))["id"]
    before = snapshot()
    assert api.request("DELETE", f"/api/v1/users/{admin_id}", token=token).status_code == 403
    assert api.request("PUT", f"/api/v1/users/{admin_id}", token=token, json_body={"status": False}).status_code == 403
    assert api.request("PUT", f"/api/v1/users/{admin_id}", token=token, json_body={"name": "Pwned"}).status_code == 403
    assert snapshot() == before


def test_non_admins_cannot_take_over_accounts_above_them_by_resetting_passwords(api: Api, admin: str) -> None:
    create_user("resetter", "resetter-password", codes=("GET:/api/v1/roles", "PUT:/api/v1/users/{user_id}/password"))
    token = api.login("resetter", "resetter-password").access
    stronger = create_user("stronger", "stronger-password", codes=("DELETE:/api/v1/roles",))
    weaker = create_user("weaker", "weaker-password", codes=("GET:/api/v1/roles",))
    admin_id = body_of(api.get("/api/v1/auth/user/info", token=admin))["id"]
    body = {"password": api.encrypt("taken-over-password")}
    before = snapshot()
    for target in (admin_id, stronger):
        assert api.request("PUT", f"/api/v1/users/{target}/password", token=token, json_body=body).status_code == 403
    assert snapshot() == before
    assert api.request("PUT", f"/api/v1/users/{weaker}/password", token=token, json_body=body).status_code == 200
    api.login("weaker", "taken-over-password")


def test_the_last_active_admin_stays(api: Api, admin: str) -> None:
    """A backstop below the route rules: even an admin principal cannot leave the system adminless."""
    from multidb import runtime
    from multidb.authz import Principal
    from multidb.db import session_scope
    from multidb.errors import Conflict
    from multidb.redis import get_redis
    from multidb.security.tokens import Claims, TokenType
    from users_fn import service
    from users_fn.schemas import UserUpdate

    admin_id = uuid.UUID(body_of(api.get("/api/v1/auth/user/info", token=admin))["id"])
    operator = Principal(str(uuid.uuid4()), "ops", True, Claims("ops", "j", "f", TokenType.ACCESS, 0, 0))

    async def attempt(change: dict[str, Any]) -> None:
        async with session_scope() as session:  # what the request's unit of work opens
            await service.update(session, get_redis(), operator, admin_id, UserUpdate(**change))

    for change in ({"status": False}, {"is_admin": False}):
        with pytest.raises(Conflict):
            runtime.run(attempt(change))
    second = new_user(api, admin, "zoe", isAdmin=True)
    runtime.run(attempt({"is_admin": False}))  # another active admin exists now
    assert api.get("/api/v1/users", token=admin).status_code == 403  # demoted: on the next request
    zoe = api.login("zoe", "a-good-password").access
    assert body_of(api.get(f"/api/v1/users/{admin_id}", token=zoe))["isAdmin"] is False
    assert body_of(api.get(f"/api/v1/users/{second['id']}", token=zoe))["isAdmin"] is True


# ---- routers and the catalogue --------------------------------------------------------------


def test_backend_routes_list_every_operation_with_its_code(api: Api, admin: str) -> None:
    routes = body_of(api.get("/api/v1/router/backend", token=admin))
    assert {r["code"] for r in routes} == set(listed())  # routes, tasks, events, pages, buttons
    by_code = {r["code"]: r for r in routes}
    assert by_code["GET:/api/v1/roles"]["methods"] == ["GET"]
    assert by_code["POST:/api/v1/roles"]["methods"] == ["POST"]
    assert by_code["PUT:/api/v1/roles/{role_id}"]["path"] == "/api/v1/roles/{role_id}"
    assert by_code["GET:/api/v1/roles"]["name"]


def test_the_catalogue_keeps_every_method_of_a_path() -> None:
    assert {"GET:/api/v1/roles", "POST:/api/v1/roles", "DELETE:/api/v1/roles"} <= set(catalogue())
    assert {"PUT:/api/v1/roles/{role_id}", "DELETE:/api/v1/roles/{role_id}"} <= set(catalogue())


def test_change_own_password_ends_other_sessions_only(api: Api) -> None:
    create_user("kim", "kim-password")
    here = api.login("kim", "kim-password")
    elsewhere = api.login("kim", "kim-password", user_agent="other-device")
    body = {"oldPassword": api.encrypt("kim-password"), "newPassword": api.encrypt("kim-new-password")}
    before = snapshot()
    wrong = {"oldPassword": api.encrypt("not-it"), "newPassword": api.encrypt("kim-new-password")}
    assert api.request("PUT", "/api/v1/auth/user/password", token=here.access, json_body=wrong).status_code == 422
    weak = {"oldPassword": api.encrypt("kim-password"), "newPassword": api.encrypt("short")}
    assert api.request("PUT", "/api/v1/auth/user/password", token=here.access, json_body=weak).status_code == 422
    assert api.request("PUT", "/api/v1/auth/user/password", json_body=body).status_code == 401
    assert snapshot() == before
    assert api.request("PUT", "/api/v1/auth/user/password", token=here.access, json_body=body).status_code == 200
    assert api.get("/api/v1/auth/user/info", token=here.access).status_code == 200
    assert api.get("/api/v1/auth/user/info", token=elsewhere.access).status_code == 403  # the authorizer denies
    assert (
        api.post(
            "/api/v1/auth/token/refresh", headers={"x-refresh-token": elsewhere.refresh}, user_agent="other-device"
        ).status_code
        == 401
    )
    api.login("kim", "kim-new-password")


@pytest.mark.skipif(not USE_POSTGRES, reason="row locks: SQLite has one writer at a time, so no such race")
def test_a_role_edited_while_a_user_is_given_it_invalidates_that_users_grants(api: Api) -> None:
    """The role edit locks the role before reading its holders, and giving a user a role holds
    it FOR SHARE until that commits: the edit waits, then counts the new holder among the users
    whose cached grants it drops (no stale grant survives until the TTL)."""
    from multidb import runtime
    from multidb.authz import Principal
    from multidb.db import session_scope
    from multidb.models import Role, UserRole
    from multidb.rbac import version_key
    from multidb.redis import get_redis
    from multidb.repository import RoleRepository
    from multidb.security.tokens import Claims, TokenType
    from roles_fn import service
    from roles_fn.schemas import RoleUpdate

    user = create_user("joining", codes=())
    admin_id = get_user_id("admin")
    claims = Claims(sub=admin_id, jti="j", fam="f", typ=TokenType.ACCESS, iat=0, exp=2**31)
    admin = Principal(admin_id, "admin", True, claims)

    async def race() -> tuple[float, float]:
        async with session_scope() as session:
            role = await RoleRepository(session).create(Role(name="raced", code="raced"))
        given = asyncio.Event()

        async def give() -> float:  # what users_fn does when it gives a role: FOR SHARE, then the link
            async with session_scope() as session:
                await RoleRepository(session).lock([role.id], shared=True)
                session.add(UserRole(user_id=uuid.UUID(user), role_id=role.id))
                await session.flush()
                given.set()
                await asyncio.sleep(0.5)
            return time.monotonic()

        async def edit() -> float:
            await given.wait()
            async with session_scope() as session:
                await service.update(session, get_redis(), admin, role.id, RoleUpdate(status=False))
            return time.monotonic()

        return tuple(await asyncio.gather(give(), edit()))  # type: ignore[return-value]

    committed, edited = runtime.run(race())
    assert edited >= committed  # the edit waited for the grant to commit
    assert runtime.run(get_redis().get(version_key(user))) is not None  # and invalidated the new holder
