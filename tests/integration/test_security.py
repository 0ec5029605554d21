"""The holes an outside attack found (issue #8), one regression test or more for each,
through the real handlers; the races with concurrent calls of the real service code on the
real Redis, repeated until an interleaving would show."""

import asyncio
import random
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlmodel.ext.asyncio.session import AsyncSession

from multidb import runtime
from multidb.authz import Principal, check
from multidb.db import session_scope
from multidb.errors import AppError, Unauthorized
from multidb.rbac import grantable, task_code
from multidb.redis import get_redis
from multidb.security import sessions
from multidb.security.tokens import TokenType, verify
from tests.conftest import ADMIN_PASSWORD
from tests.helpers import UA, Api, create_user, get_user_id, new_user, role_id, snapshot

ROLES = "/api/v1/roles"
USERS = "/api/v1/users"
RUNS = "/api/v1/tasks/runs"
SCHEDULES = "/api/v1/tasks/schedules"
LOGIN = "/api/v1/auth/login"


def login(api: Api, username: str, password: str, **body: Any) -> Any:
    return api.post(LOGIN, json_body={"username": username, "password": api.encrypt(password), **body})


# ---- 1. editing a role grants only what the editor holds -------------------------------------


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


def test_a_user_manager_cannot_reset_their_own_password_without_the_current_one(api: Api) -> None:
    me = create_user("una", "una-password", codes=("PUT:/api/v1/users/{user_id}/password",))
    una = api.login("una", "una-password").access
    before = snapshot()
    response = api.put(f"{USERS}/{me}/password", token=una, json_body={"password": api.encrypt("taken-over")})
    assert (response.status_code, response.json()["error"]) == (403, "self_password_reset")
    assert snapshot() == before


# ---- 2. schedules have an owner and limits ---------------------------------------------------

SCHEDULER_CODES = (
    f"GET:{SCHEDULES}",
    f"POST:{SCHEDULES}",
    f"GET:{SCHEDULES}/{{schedule_id}}",
    f"PUT:{SCHEDULES}/{{schedule_id}}",
    f"DELETE:{SCHEDULES}/{{schedule_id}}",
    task_code("multidb.ping"),
)


def scheduler(api: Api, name: str, *extra: str) -> str:
    create_user(name, f"{name}-password", codes=(*SCHEDULER_CODES, *extra))
    return api.login(name, f"{name}-password").access


def new_schedule(api: Api, token: str, name: str = "mine", **fields: Any) -> Any:
    body = {"name": name, "task": "multidb.ping", "intervalSeconds": 60, **fields}
    return api.post(SCHEDULES, token=token, json_body=body)


def test_schedules_of_others_do_not_exist_for_a_user_but_do_for_an_admin(api: Api, admin: str) -> None:
    alice, bob = scheduler(api, "alice"), scheduler(api, "bob")
    alices = new_schedule(api, alice).json()["data"]
    assert alices["ownerId"] == get_user_id("alice")
    assert new_schedule(api, bob).status_code == 201  # names are unique per owner only
    before = snapshot()
    for method, body in [("GET", None), ("PUT", {"task": "multidb.ping", "intervalSeconds": 1}), ("DELETE", None)]:
        response = api.request(method, f"{SCHEDULES}/{alices['id']}", token=bob, json_body=body)
        assert (response.status_code, response.json()["message"]) == (404, "schedule not found")
    assert snapshot() == before
    listed = api.get(SCHEDULES, token=bob).json()["data"]
    assert [r["ownerId"] for r in listed["records"]] == [get_user_id("bob")]
    assert api.get(SCHEDULES, token=admin).json()["data"]["total"] == 2
    assert api.get(f"{SCHEDULES}/{alices['id']}", token=admin).status_code == 200


def test_a_user_owns_at_most_the_configured_number_of_schedules(api: Api, configure: Any) -> None:
    configure(SCHEDULES_PER_USER=2)
    alice = scheduler(api, "alice")
    assert new_schedule(api, alice, "one").status_code == 201
    assert new_schedule(api, alice, "two").status_code == 201
    before = snapshot()
    third = new_schedule(api, alice, "three")
    assert third.status_code == 429
    assert int(third.headers["retry-after"]) > 0
    assert snapshot() == before


def test_a_schedule_runs_no_more_often_than_the_minimum_interval(api: Api, configure: Any) -> None:
    configure(SCHEDULE_MIN_INTERVAL=60)
    alice = scheduler(api, "alice")
    too_often = new_schedule(api, alice, intervalSeconds=1)
    assert too_often.status_code == 422
    assert too_often.json()["data"] == [{"field": "intervalSeconds", "message": "at least 60"}]
    created = new_schedule(api, alice, intervalSeconds=60).json()["data"]
    assert api.put(f"{SCHEDULES}/{created['id']}", token=alice, json_body={"intervalSeconds": 5}).status_code == 422


@pytest.mark.parametrize(
    ("crontab", "allowed"),
    [
        ("* * * * *", False),  # every minute
        ("0,30 * * * *", False),  # 30 minutes apart
        ("59 0,1 * * *", False),  # 00:59 and 01:59: an hour apart, refused against a minimum of 3601 s
        ("0 * * * *", True),  # hourly
        ("0 3 * * 1", True),  # weekly
        ("15,45 9 * * *", False),  # 09:15 and 09:45
    ],
)
def test_a_crontab_runs_no_more_often_than_the_minimum_interval(
    api: Api, configure: Any, crontab: str, allowed: bool
) -> None:
    configure(SCHEDULE_MIN_INTERVAL=3600 if crontab != "59 0,1 * * *" else 3601)
    alice = scheduler(api, "alice")
    response = new_schedule(api, alice, intervalSeconds=None, crontab=crontab)
    if allowed:
        assert response.status_code == 201, response.json()
        return
    assert response.status_code == 422, response.json()
    assert response.json()["data"][0]["field"] == "crontab"


def test_scheduling_a_task_needs_its_code(api: Api) -> None:
    create_user("mallory", "mallory-password", codes=SCHEDULER_CODES)
    mallory = api.login("mallory", "mallory-password").access
    body = {"name": "spam", "task": "multidb.broadcast", "args": ["notification", {"x": 1}], "intervalSeconds": 60}
    assert api.post(SCHEDULES, token=mallory, json_body=body).status_code == 403


RUNNER_CODES = (f"POST:{RUNS}", task_code("multidb.ping"), task_code("multidb.notify"))


def test_runs_per_minute_are_limited_per_user(api: Api, configure: Any) -> None:
    configure(TASK_RUNS_PER_MINUTE=3)
    create_user("alice", "alice-password", codes=RUNNER_CODES)
    create_user("bob", "bob-password", codes=RUNNER_CODES)
    alice, bob = api.login("alice", "alice-password").access, api.login("bob", "bob-password").access
    run = {"task": "multidb.ping", "countdown": 3600}  # stays queued: nothing runs it meanwhile
    assert [api.post(RUNS, token=alice, json_body=run).status_code for _ in range(4)] == [202, 202, 202, 429]
    assert api.post(RUNS, token=bob, json_body=run).status_code == 202  # others are not starved


def test_queued_runs_are_limited_per_user(api: Api, configure: Any) -> None:
    configure(TASK_RUNS_QUEUED=2)
    create_user("alice", "alice-password", codes=RUNNER_CODES)
    alice = api.login("alice", "alice-password").access
    run = {"task": "multidb.ping", "countdown": 3600}
    statuses = [api.post(RUNS, token=alice, json_body=run) for _ in range(3)]
    assert [r.status_code for r in statuses] == [202, 202, 429]
    assert statuses[-1].headers["retry-after"] == "30"
    # A refused run does not use up the rate either.
    assert runtime.run(get_redis().get(f"tasks:rate:{get_user_id('alice')}")) == "2"


# ---- 3. task runs push only notices, and only with their own codes ---------------------------


@pytest.mark.parametrize("event", ["task:finished", "disconnect", "session:revoked", "connect", ""])
def test_notify_cannot_push_system_events(api: Api, admin: str, event: str) -> None:
    before = snapshot()
    body = {"task": "multidb.notify", "args": [get_user_id("admin"), event, {"url": "https://evil.example"}]}
    response = api.post(RUNS, token=admin, json_body=body)
    assert response.status_code == 422
    assert response.json()["data"] == [{"field": "event", "message": "Input should be 'notification' or 'message'"}]
    broadcast = api.post(RUNS, token=admin, json_body={"task": "multidb.broadcast", "args": [event]})
    assert broadcast.status_code == 422
    assert snapshot() == before


def test_notify_and_broadcast_need_their_own_codes(api: Api) -> None:
    create_user("runner", "runner-password", codes=(f"POST:{RUNS}", task_code("multidb.ping")))
    runner = api.login("runner", "runner-password").access
    assert api.post(RUNS, token=runner, json_body={"task": "multidb.ping", "countdown": 60}).status_code == 202
    for task, args in [("multidb.notify", [get_user_id("admin"), "message"]), ("multidb.broadcast", ["message"])]:
        response = api.post(RUNS, token=runner, json_body={"task": task, "args": args})
        assert response.status_code == 403
        assert task_code(task) in response.json()["message"]


# (4, the login limits, and 6, the current-password check limited like a login: test_login_limits.py)


# ---- 5. no interleaving of logout, refresh, password changes and disabling leaves a token ----


async def _open(user_id: str) -> sessions.TokenPair:
    redis = get_redis()
    return await sessions.open_session(redis, user_id, UA, await sessions.sessions_epoch(redis, user_id))


async def _principal(pair: sessions.TokenPair) -> Principal:
    return await check(pair.access, None)


async def _dead(pair: sessions.TokenPair) -> bool:
    """Neither the access token nor the refresh token of this pair works any more."""
    redis = get_redis()
    try:
        await check(pair.access, None)
        return False
    except AppError:
        pass
    try:
        await sessions.rotate(redis, pair.refresh_token, UA)
        return False
    except Unauthorized:
        return True


async def _unit[T](work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Service code in a unit of work, as a request runs it: commit, then the after-commit actions."""
    async with session_scope() as session:
        return await work(session)


async def _jitter[T](work: Awaitable[T]) -> T:
    await asyncio.sleep(random.random() / 500)
    return await work


async def _race(*calls: Awaitable[Any]) -> list[Any]:
    return list(await asyncio.gather(*(_jitter(call) for call in calls), return_exceptions=True))


def _survivors(results: list[Any]) -> list[sessions.TokenPair]:
    return [r for r in results if isinstance(r, sessions.TokenPair)]


def test_a_logout_racing_a_refresh_leaves_no_usable_token() -> None:
    from auth_fn import service

    user_id = create_user("alice", "alice-password")

    async def once() -> list[sessions.TokenPair]:
        pair = await _open(user_id)
        principal = await _principal(pair)
        results = await _race(
            service.logout(get_redis(), principal), sessions.rotate(get_redis(), pair.refresh_token, UA)
        )
        return [p for p in [pair, *_survivors(results)] if not await _dead(p)]

    for _ in range(40):
        assert runtime.run(once()) == []


def test_a_password_change_racing_a_refresh_of_another_session_leaves_no_usable_token() -> None:
    from auth_fn import service

    user_id = create_user("alice", "alice-password")

    async def once() -> list[sessions.TokenPair]:
        current, other = await _open(user_id), await _open(user_id)
        principal = await _principal(current)
        results = await _race(
            _unit(lambda s: service.change_password(s, get_redis(), principal, "alice-password", "alice-password")),
            sessions.rotate(get_redis(), other.refresh_token, UA),
        )
        assert not any(isinstance(r, Exception) and not isinstance(r, Unauthorized) for r in results), results
        assert not await _dead(current)  # the session that changed the password stays
        return [p for p in [other, *_survivors(results)] if not await _dead(p)]

    for _ in range(20):
        assert runtime.run(once()) == []


def test_disabling_a_user_racing_a_refresh_leaves_no_usable_token(admin: str) -> None:
    from auth_fn import service as auth
    from users_fn import service as users
    from users_fn.schemas import UserUpdate

    admin_principal = runtime.run(check(verify(admin, TokenType.ACCESS), None))
    user_id = create_user("alice", "alice-password")

    async def once() -> list[sessions.TokenPair]:
        pair = await _open(user_id)
        uid = uuid.UUID(user_id)
        results = await _race(
            _unit(lambda s: users.update(s, get_redis(), admin_principal, uid, UserUpdate(status=False))),
            _unit(lambda s: auth.refresh(s, get_redis(), pair.refresh_token, UA)),
        )
        survivors = [p for p in [pair, *_survivors(results)] if not await _dead(p)]
        await _unit(lambda s: users.update(s, get_redis(), admin_principal, uid, UserUpdate(status=True)))
        return survivors

    for _ in range(15):
        assert runtime.run(once()) == []


def test_a_password_reset_racing_a_login_with_the_old_password_leaves_no_session(admin: str) -> None:
    from auth_fn import service as auth
    from users_fn import service as users

    admin_principal = runtime.run(check(verify(admin, TokenType.ACCESS), None))
    passwords = [f"password-{n}" for n in range(13)]
    encrypted = [runtime.run(_encrypted(p)) for p in passwords]
    user_id = create_user("alice", passwords[0])

    async def once(n: int) -> list[sessions.TokenPair]:
        """Alice logs in with her password while an admin resets it to the next one."""
        uid = uuid.UUID(user_id)
        results = await _race(
            _unit(lambda s: users.reset_password(s, get_redis(), admin_principal, uid, encrypted[n + 1])),
            _unit(lambda s: auth.login(s, get_redis(), "alice", passwords[n], UA, auth.Client("10.0.0.2"))),
        )
        logged_in = [r.pair for r in results if isinstance(r, auth.Login)]
        return [p for p in logged_in if not await _dead(p)]

    for n in range(12):
        assert runtime.run(once(n)) == [], n
        runtime.run(get_redis().delete("auth:login-failures:user:alice", "auth:login-failures:ip:10.0.0.2"))


@pytest.mark.parametrize("moment", ["before the epoch is read", "after the epoch is read", "before the session opens"])
def test_a_login_with_the_old_password_at_each_moment_of_a_change_leaves_no_session(
    monkeypatch: pytest.MonkeyPatch, moment: str
) -> None:
    """The worst interleavings, forced: the whole password change (commit and revocations)
    runs while a login with the old password is paused at each step between reading the
    user row and opening its session. Either the login is refused or its session is dead."""
    from auth_fn import service

    user_id = create_user("alice", "alice-password")
    pair = runtime.run(_open(user_id))
    principal = runtime.run(_principal(pair))
    change = lambda s: service.change_password(s, get_redis(), principal, "alice-password", "new-password")  # noqa: E731
    real_epoch, real_open = sessions.sessions_epoch, sessions.open_session

    async def epoch(redis: Any, uid: str) -> str:
        if moment == "before the epoch is read":
            await _unit(change)
        value = await real_epoch(redis, uid)
        if moment == "after the epoch is read":
            await _unit(change)
        return value

    async def open_session(*args: Any) -> sessions.TokenPair:
        if moment == "before the session opens":
            await _unit(change)
        return await real_open(*args)

    monkeypatch.setattr(sessions, "sessions_epoch", epoch)
    monkeypatch.setattr(sessions, "open_session", open_session)
    login = _unit(lambda s: service.login(s, get_redis(), "alice", "alice-password", UA, service.Client("10.0.0.3")))
    try:
        result = runtime.run(login)
    except Unauthorized:
        return
    assert runtime.run(_dead(result.pair)), f"a login with the old password survived a change {moment}"


async def _encrypted(password: str) -> str:
    from multidb.security.login_crypto import encrypt_password, login_public_key_pem

    return encrypt_password(password, login_public_key_pem())


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
