"""A caller hands out only what it holds, through every permission-like field: a role's
interface, button and router permissions (declared codes only), its code (reserved codes
are admins'), the roles it assigns (disabled ones included), the passwords it resets; a role
above the editor, or held by someone above it, is not the editor's to change, enable or
delete; and the audit log shows what a role change changed."""

from typing import Any

import pytest
from sqlmodel.ext.asyncio.session import AsyncSession

from multidb import runtime
from multidb.db import get_engine
from multidb.models import Role, User
from multidb.rbac import grantable
from multidb.security.passwords import hash_password
from tests.helpers import Api, create_user, new_user, role_id, snapshot

ROLES = "/api/v1/roles"
USERS = "/api/v1/users"
RESET = "PUT:/api/v1/users/{user_id}/password"  # rbac.PASSWORD_RESET
ROLE_EDITOR = ("POST:/api/v1/roles", "PUT:/api/v1/roles/{role_id}")
USER_MANAGER = ("POST:/api/v1/users", "PUT:/api/v1/users/{user_id}", RESET)


async def _user(username: str, status: bool, roles: list[dict[str, Any]]) -> str:
    async with AsyncSession(get_engine(), expire_on_commit=False) as session:
        user = User(
            name=username.title(),
            email=f"{username}@example.com",
            username=username,
            password_hash=hash_password(f"{username}-password"),
            status=status,
            roles=[Role(name=r["code"], **r) for r in roles],
        )
        session.add(user)
        await session.commit()
        return str(user.id)


def user(
    username: str,
    interface: tuple[str, ...] = (),
    button: tuple[str, ...] = (),
    router: tuple[str, ...] = (),
    *,
    role_status: bool = True,
) -> str:
    """A user with one role (code `<username>-role`) granting these codes; returns the id."""
    role = {
        "code": f"{username}-role",
        "status": role_status,
        "interface_permissions": list(interface),
        "button_permissions": list(button),
        "router_permissions": list(router),
    }
    return runtime.run(_user(username, True, [role]))


def token(api: Api, username: str) -> str:
    return api.login(username, f"{username}-password").access


def refused(response: Any, status: int, error: str) -> None:
    assert (response.status_code, response.json()["error"]) == (status, error), response.body


def refused_to_assign(api: Api, manager: str, target: str, role: str, error: str) -> None:
    """Neither given to a user nor to a new one; nothing written."""
    before = snapshot()
    refused(api.put(f"{USERS}/{target}", token=manager, json_body={"roleIds": [role]}), 403, error)
    refused(api.post(USERS, token=manager, json_body=new_user(api, roleIds=[role])), 403, error)
    assert snapshot() == before


# ---- 1 and 20: editing a role grants only what the editor holds ------------------------------


def test_a_role_editor_cannot_put_codes_it_lacks_into_its_own_role(api: Api) -> None:
    create_user("eve", "eve-password", codes=("PUT:/api/v1/roles/{role_id}",))
    eve = api.login("eve", "eve-password").access
    mine = api.get(f"{ROLES}/mine", token=eve).json()["data"]
    before = snapshot()
    everything = {"interfacePermissions": sorted(grantable())}
    response = api.put(f"{ROLES}/{mine[0]['id']}", token=eve, json_body=everything)
    assert response.status_code == 403
    assert response.json()["message"] == "you can only grant permissions you hold yourself"
    assert snapshot() == before
    assert api.get(USERS, token=eve).status_code == 403  # still nothing more than before


def test_a_role_creator_grants_only_codes_it_holds(api: Api) -> None:
    create_user("carol", "carol-password", codes=("POST:/api/v1/roles", "GET:/api/v1/roles"))
    carol = api.login("carol", "carol-password").access
    lower = {"name": "Readers", "code": "readers", "interfacePermissions": ["GET:/api/v1/roles"]}
    assert api.post(ROLES, token=carol, json_body=lower).status_code == 201
    higher = {"name": "Admins", "code": "admins", "interfacePermissions": ["DELETE:/api/v1/users/{user_id}"]}
    assert api.post(ROLES, token=carol, json_body=higher).status_code == 403
    # Any-user routes need no grant, so listing them is handing out nothing.
    mine = {"name": "Mine", "code": "mine", "interfacePermissions": ["GET:/api/v1/roles/mine"]}
    assert api.post(ROLES, token=carol, json_body=mine).status_code == 201


def test_a_role_above_the_editor_cannot_be_changed_enabled_or_deleted(api: Api, admin: str) -> None:
    create_user("ed", "ed-password", codes=("PUT:/api/v1/roles/{role_id}", "DELETE:/api/v1/roles/{role_id}"))
    create_user("boss", "boss-password", codes=("DELETE:/api/v1/users/{user_id}",), role_status=False)
    ed = api.login("ed", "ed-password").access
    boss_role = role_id("boss-role")
    before = snapshot()
    assert api.put(f"{ROLES}/{boss_role}", token=ed, json_body={"status": True}).status_code == 403
    assert api.put(f"{ROLES}/{boss_role}", token=ed, json_body={"name": "renamed"}).status_code == 403
    assert api.delete(f"{ROLES}/{boss_role}", token=ed).status_code == 403
    assert api.delete(ROLES, token=ed, json_body={"ids": [boss_role]}).status_code == 403
    assert snapshot() == before
    assert api.put(f"{ROLES}/{boss_role}", token=admin, json_body={"status": True}).status_code == 200


def test_a_role_held_by_someone_above_the_editor_cannot_be_disabled_stripped_or_deleted(api: Api, admin: str) -> None:
    """Changing a role acts on its holders: the users route's rule (nobody acts on a user
    above them) holds here too."""
    editor_codes = (
        "PUT:/api/v1/roles/{role_id}",
        "DELETE:/api/v1/roles/{role_id}",
        "DELETE:/api/v1/roles",
        "GET:/api/v1/roles",
    )
    create_user("ed", "ed-password", codes=editor_codes)
    boss = create_user("boss", "boss-password", codes=("DELETE:/api/v1/users/{user_id}",))
    clerk = create_user("clerk", "clerk-password")
    shared = {"name": "Readers", "code": "readers", "interfacePermissions": ["GET:/api/v1/roles"]}
    shared_id = api.post(ROLES, token=admin, json_body=shared).json()["data"]["id"]
    for user, roles in [(boss, [role_id("boss-role"), shared_id]), (clerk, [shared_id])]:
        assert api.put(f"{USERS}/{user}", token=admin, json_body={"roleIds": roles}).status_code == 200
    ed = api.login("ed", "ed-password").access
    before = snapshot()
    for method, path, body in [
        ("PUT", f"{ROLES}/{shared_id}", {"status": False}),
        ("PUT", f"{ROLES}/{shared_id}", {"interfacePermissions": []}),
        ("DELETE", f"{ROLES}/{shared_id}", None),
        ("DELETE", ROLES, {"ids": [shared_id]}),
    ]:
        response = api.request(method, path, token=ed, json_body=body)
        assert (response.status_code, response.json().get("error")) == (403, "role_holder_above_you"), response.json()
    assert snapshot() == before
    # once only users the editor could manage hold it, the editor may
    assert api.put(f"{USERS}/{boss}", token=admin, json_body={"roleIds": [role_id("boss-role")]}).status_code == 200
    assert api.put(f"{ROLES}/{shared_id}", token=ed, json_body={"status": False}).status_code == 200


# ---- 21.4: button and router permissions are declared codes, handed out only by holders -----


def test_the_catalogue_declares_the_consoles_pages_and_buttons_apart_from_the_routes() -> None:
    from multidb.rbac import declared, grantable

    pages, buttons = declared("router_permissions"), declared("button_permissions")
    assert {"/system/roles", "/system/users"} <= pages
    assert {"role:view", "user:delete", "user:reset-password"} <= buttons
    assert not any("*" in code for code in pages | buttons)
    assert (pages | buttons).isdisjoint(grantable())  # never an interface permission
    assert RESET in declared("interface_permissions")


def test_router_backend_serves_the_pages_and_buttons(api: Api, admin: str) -> None:
    listed = api.get("/api/v1/router/backend", token=admin).json()["data"]
    by_code = {entry["code"]: entry for entry in listed}
    assert by_code["/system/roles"]["methods"] == ["ROUTER"]
    assert by_code["role:create"]["methods"] == ["BUTTON"]


@pytest.mark.parametrize(
    ("field", "codes"),
    [
        ("buttonPermissions", ["*"]),
        ("buttonPermissions", ["role:view", "role:*"]),
        ("routerPermissions", ["/admin/*"]),
        ("routerPermissions", ["*"]),
        ("interfacePermissions", ["*"]),
    ],
)
def test_undeclared_and_wildcard_codes_are_422_even_for_an_admin(
    api: Api, admin: str, field: str, codes: list[str]
) -> None:
    before = snapshot()
    response = api.post(ROLES, token=admin, json_body={"name": "Wild", "code": "wild", field: codes})
    refused(response, 422, "unknown_permission")
    assert response.json()["data"][0]["field"] == field
    role = api.post(ROLES, token=admin, json_body={"name": "Tame", "code": "tame"}).json()["data"]
    refused(api.put(f"{ROLES}/{role['id']}", token=admin, json_body={field: codes}), 422, "unknown_permission")
    assert api.get("/api/v1/auth/user/info", token=admin).json()["data"]["permissions"]["button"] == []
    assert snapshot()["roles"] == sorted([*before["roles"], ("tame", True)])


def test_a_role_editor_grants_only_the_pages_and_buttons_it_holds(api: Api) -> None:
    user("ed", ROLE_EDITOR, button=("role:create",), router=("/system/roles",))
    ed = token(api, "ed")
    before = snapshot()
    for field, codes in [
        ("buttonPermissions", ["user:delete"]),
        ("buttonPermissions", ["role:create", "role:delete"]),
        ("routerPermissions", ["/system/users"]),
    ]:
        refused(
            api.post(ROLES, token=ed, json_body={"name": "X", "code": "x", field: codes}), 403, "permission_not_held"
        )
        # nor by editing a role it may otherwise change, its own included
        body = {field: codes}
        refused(api.put(f"{ROLES}/{role_id('ed-role')}", token=ed, json_body=body), 403, "permission_not_held")
    assert snapshot() == before
    held = {
        "name": "Mine",
        "code": "mine",
        "buttonPermissions": ["role:create"],
        "routerPermissions": ["/system/roles"],
    }
    assert api.post(ROLES, token=ed, json_body=held).status_code == 201


def test_a_role_granting_pages_or_buttons_the_editor_lacks_is_above_it(api: Api, admin: str) -> None:
    user("ed", ROLE_EDITOR)
    other = api.post(ROLES, token=admin, json_body={"name": "O", "code": "other", "buttonPermissions": ["role:delete"]})
    ed = token(api, "ed")
    response = api.put(f"{ROLES}/{other.json()['data']['id']}", token=ed, json_body={"name": "Mine now"})
    refused(response, 403, "role_above_you")


def test_a_user_manager_neither_assigns_nor_manages_pages_and_buttons_it_lacks(api: Api, admin: str) -> None:
    user("manager", USER_MANAGER)
    target = user("target", router=("/system/audit",))
    buttons = api.post(
        ROLES, token=admin, json_body={"name": "B", "code": "buttons", "buttonPermissions": ["file:delete"]}
    )
    manager = token(api, "manager")
    before = snapshot()
    refused(api.put(f"{USERS}/{target}", token=manager, json_body={"name": "Renamed"}), 403, "user_above_you")
    body = new_user(api, roleIds=[buttons.json()["data"]["id"]])
    refused(api.post(USERS, token=manager, json_body=body), 403, "role_above_you")
    assert snapshot() == before


# ---- 21.4: reserved role codes --------------------------------------------------------------


@pytest.mark.parametrize("code", ["admin", "Admin", "super_admin", "ROOT", "sys-admin", "administrator"])
def test_a_non_admin_cannot_create_or_rename_a_role_to_a_reserved_code(api: Api, code: str) -> None:
    user("ed", ROLE_EDITOR)
    ed = token(api, "ed")
    before = snapshot()
    refused(api.post(ROLES, token=ed, json_body={"name": "Sneaky", "code": code}), 403, "reserved_role_code")
    refused(api.put(f"{ROLES}/{role_id('ed-role')}", token=ed, json_body={"code": code}), 403, "reserved_role_code")
    assert snapshot() == before


def test_a_reserved_role_is_an_admins_to_create_change_and_delete(api: Api, admin: str) -> None:
    user("ed", (*ROLE_EDITOR, "DELETE:/api/v1/roles/{role_id}"))
    created = api.post(ROLES, token=admin, json_body={"name": "Administrators", "code": "admin"})
    assert created.status_code == 201, created.body
    reserved = created.json()["data"]["id"]
    ed = token(api, "ed")
    refused(api.put(f"{ROLES}/{reserved}", token=ed, json_body={"name": "Mine"}), 403, "reserved_role_code")
    refused(api.delete(f"{ROLES}/{reserved}", token=ed), 403, "reserved_role_code")
    assert api.put(f"{ROLES}/{reserved}", token=admin, json_body={"name": "Admins"}).status_code == 200


def test_a_reserved_role_is_assigned_by_admins_only(api: Api, admin: str) -> None:
    """Holding its codes is not enough: user/info would list the code `admin` for the user."""
    user("manager", USER_MANAGER)
    holder, target = user("holder"), user("target")
    reserved = api.post(ROLES, token=admin, json_body={"name": "Administrators", "code": "admin"}).json()["data"]["id"]
    plain = api.post(ROLES, token=admin, json_body={"name": "Plain", "code": "plain"}).json()["data"]["id"]
    assert api.put(f"{USERS}/{holder}", token=admin, json_body={"roleIds": [reserved]}).status_code == 200
    manager = token(api, "manager")
    refused_to_assign(api, manager, target, reserved, "reserved_role_code")
    # A user who has it keeps it through a change of their other roles.
    kept = api.put(f"{USERS}/{holder}", token=manager, json_body={"roleIds": [reserved, plain]})
    assert kept.status_code == 200, kept.body


# ---- 21.4: the audit entry of a role change shows what changed -------------------------------


def test_a_role_change_is_audited_field_by_field_in_camel_case(api: Api, admin: str) -> None:
    role = api.post(ROLES, token=admin, json_body={"name": "R", "code": "r", "buttonPermissions": ["role:view"]})
    rid = role.json()["data"]["id"]
    change = {
        "buttonPermissions": ["role:create", "role:view"],
        "routerPermissions": ["/system/roles"],
        "status": False,
    }
    assert api.put(f"{ROLES}/{rid}", token=admin, json_body=change).status_code == 200
    entries = api.get(f"/api/v1/audit?action=role.update&targetId={rid}", token=admin).json()["data"]["records"]
    assert [entry["details"] for entry in entries] == [
        {
            "buttonPermissions": {"from": ["role:view"], "to": ["role:create", "role:view"]},
            "routerPermissions": {"from": [], "to": ["/system/roles"]},
            "status": {"from": True, "to": False},
        }
    ]
    created = api.get(f"/api/v1/audit?action=role.create&targetId={rid}", token=admin).json()["data"]["records"]
    assert created[0]["details"]["buttonPermissions"] == {"from": None, "to": ["role:view"]}


# ---- 21.9: resetting a password hands over the account ---------------------------------------


def test_a_user_manager_cannot_reset_the_password_of_a_peer_who_may_reset_passwords(api: Api, admin: str) -> None:
    user("una", USER_MANAGER)
    peer = user("peer", USER_MANAGER)  # exactly the same codes
    below = user("below", ("POST:/api/v1/users",))
    una = token(api, "una")
    before = snapshot()
    body = {"password": api.encrypt("taken-over")}
    refused(api.put(f"{USERS}/{peer}/password", token=una, json_body=body), 403, "user_resets_passwords")
    assert snapshot() == before
    assert api.put(f"{USERS}/{below}/password", token=una, json_body=body).status_code == 200
    assert api.put(f"{USERS}/{peer}/password", token=admin, json_body=body).status_code == 200


def test_a_peer_who_may_reset_passwords_cannot_be_stripped_of_it_first(api: Api) -> None:
    """The two-step way around: take the reset code away (the peer's roles, or the role they
    hold), then reset. A user who may reset passwords is an admin's to manage."""
    user("una", (*USER_MANAGER, *ROLE_EDITOR, "DELETE:/api/v1/users/{user_id}"))
    peer = user("peer", USER_MANAGER)
    lesser = runtime.run(_user("lesser-holder", True, [{"code": "lesser", "interface_permissions": []}]))
    una = token(api, "una")
    before = snapshot()
    lesser_role = role_id("lesser")
    for method, path, body in [
        ("PUT", f"{USERS}/{peer}", {"roleIds": [lesser_role]}),
        ("PUT", f"{USERS}/{peer}", {"status": False}),
        ("DELETE", f"{USERS}/{peer}", None),
    ]:
        refused(api.request(method, path, token=una, json_body=body), 403, "user_resets_passwords")
    stripped = {"interfacePermissions": ["POST:/api/v1/users"]}
    refused(api.put(f"{ROLES}/{role_id('peer-role')}", token=una, json_body=stripped), 403, "role_holder_above_you")
    assert snapshot() == before
    assert api.put(f"{USERS}/{lesser}", token=una, json_body={"name": "Renamed"}).status_code == 200  # below una


def test_a_peer_whose_reset_code_is_in_a_disabled_role_is_still_a_peer(api: Api) -> None:
    user("una", USER_MANAGER)
    peer = user("peer", USER_MANAGER, role_status=False)  # enabling it gives the code back
    refused(
        api.put(f"{USERS}/{peer}/password", token=token(api, "una"), json_body={"password": api.encrypt("x-x-x-x-x")}),
        403,
        "user_resets_passwords",
    )


# ---- 21.11: a disabled role's codes count when it is assigned --------------------------------


def test_a_non_admin_cannot_assign_a_disabled_role_whose_codes_it_lacks(api: Api, admin: str) -> None:
    user("manager", USER_MANAGER)
    target = user("target")
    dormant = api.post(
        ROLES,
        token=admin,
        json_body={
            "name": "Dormant",
            "code": "dormant",
            "status": False,
            "interfacePermissions": ["DELETE:/api/v1/users"],
        },
    ).json()["data"]["id"]
    manager = token(api, "manager")
    refused_to_assign(api, manager, target, dormant, "role_above_you")
    # A disabled role whose codes the manager holds is assigned.
    mine = api.post(
        ROLES, token=admin, json_body={"name": "Own", "code": "own", "status": False, "interfacePermissions": [RESET]}
    ).json()["data"]["id"]
    assert api.put(f"{USERS}/{target}", token=manager, json_body={"roleIds": [mine]}).status_code == 200
