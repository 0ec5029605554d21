"""Nobody manages a user who holds more than they do, disabled roles counted, and a user
manager resets no password of their own without the current one (issue #8's holes 8 and 21,
through the real handlers)."""

from typing import Any

import pytest

from tests.helpers import Api, create_user, snapshot

USERS = "/api/v1/users"


# ---- 8. nobody manages a user who holds more than they do ------------------------------------

MANAGER_CODES = (
    f"PUT:{USERS}/{{user_id}}",
    f"PUT:{USERS}/{{user_id}}/password",
    f"DELETE:{USERS}/{{user_id}}",
    f"DELETE:{USERS}",
)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", "{id}", {"status": False}),
        ("PUT", "{id}", {"roleIds": []}),
        ("PUT", "{id}", {"email": "attacker@example.com"}),
        ("PUT", "{id}/password", {"password": "new-password"}),
        ("DELETE", "{id}", None),
        ("DELETE", "", {"ids": ["{id}"]}),
    ],
    ids=["disable", "strip-roles", "email", "reset", "delete", "delete-many"],
)
@pytest.mark.parametrize("role_enabled", [True, False], ids=["enabled-role", "disabled-role"])
def test_a_user_manager_cannot_act_on_a_user_holding_more(
    api: Api, method: str, path: str, body: Any, role_enabled: bool
) -> None:
    create_user("manager", "manager-password", codes=MANAGER_CODES)
    # The target's role grants a code the manager lacks; disabled or not, enabling it later would hand it over.
    target = create_user("target", "target-password", codes=("GET:/api/v1/roles",), role_status=role_enabled)
    manager = api.login("manager", "manager-password").access
    if isinstance(body, dict) and "password" in body:
        body = {"password": api.encrypt(body["password"])}
    if isinstance(body, dict) and "ids" in body:
        body = {"ids": [target]}
    before = snapshot()
    response = api.request(method, f"{USERS}/{path.format(id=target)}".rstrip("/"), token=manager, json_body=body)
    assert response.status_code == 403, response.body
    assert snapshot() == before


def test_a_user_manager_may_act_on_a_user_holding_no_more(api: Api) -> None:
    create_user("manager", "manager-password", codes=(*MANAGER_CODES, "GET:/api/v1/roles"))
    target = create_user("target", "target-password", codes=("GET:/api/v1/roles",))
    manager = api.login("manager", "manager-password").access
    assert api.put(f"{USERS}/{target}", token=manager, json_body={"email": "new@example.com"}).status_code == 200


# ---- 21. a user manager's own password needs the current one ---------------------------------


def test_a_user_manager_cannot_reset_their_own_password_without_the_current_one(api: Api) -> None:
    me = create_user("una", "una-password", codes=("PUT:/api/v1/users/{user_id}/password",))
    una = api.login("una", "una-password").access
    before = snapshot()
    response = api.put(f"{USERS}/{me}/password", token=una, json_body={"password": api.encrypt("taken-over")})
    assert (response.status_code, response.json()["error"]) == (403, "self_password_reset")
    assert snapshot() == before
