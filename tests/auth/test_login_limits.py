"""Login limits: failures counted per username (strangers) or device and per IP, before the
password is checked; the current-password check is limited like a login (issue #8's holes,
through the real handlers; the race with concurrent calls of the real service code on the real
Redis)."""

import asyncio
import random
import time
from typing import Any

import pytest

from multidb import runtime
from multidb.db import session_scope
from multidb.errors import TooManyRequests, Unauthorized
from multidb.redis import get_redis
from multidb.security.tokens import TokenType, verify
from tests.conftest import ADMIN_PASSWORD
from tests.helpers import Api, create_user, get_user_id

LOGIN = "/api/v1/auth/login"


def login(api: Api, username: str, password: str, **body: Any) -> Any:
    return api.post(LOGIN, json_body={"username": username, "password": api.encrypt(password), **body})


# ---- 4. login limits: per username (strangers) or device, per IP, counted first --------------


def test_a_strangers_failures_lock_out_strangers_but_not_the_owners_device(api: Api) -> None:
    create_user("erin", "erin-password")
    device = login(api, "erin", "erin-password").json()["data"]["deviceToken"]
    assert verify(device, TokenType.DEVICE).sub == get_user_id("erin")
    for _ in range(5):
        assert login(api, "erin", "guess").status_code == 401
    locked = login(api, "erin", "erin-password")
    assert locked.status_code == 429  # a stranger, even with the right password
    assert locked.json()["code"] == 429
    assert 0 < int(locked.headers["retry-after"]) <= 900
    owner = login(api, "erin", "erin-password", deviceToken=device)
    assert owner.status_code == 200  # the owner's device is counted apart


def test_a_device_has_its_own_limit_and_another_users_device_counts_for_nothing(api: Api) -> None:
    create_user("erin", "erin-password")
    create_user("frank", "frank-password")
    franks = login(api, "frank", "frank-password").json()["data"]["deviceToken"]
    erins = login(api, "erin", "erin-password").json()["data"]["deviceToken"]
    for _ in range(5):
        assert login(api, "erin", "guess", deviceToken=erins).status_code == 401
    assert login(api, "erin", "erin-password", deviceToken=erins).status_code == 429
    # frank's device is no device of erin's: it counts as a stranger, who is not locked out yet.
    assert login(api, "erin", "erin-password", deviceToken=franks).status_code == 200


def test_a_crowd_of_failures_from_one_ip_does_not_lock_out_a_trusted_device_behind_it(api: Api, configure: Any) -> None:
    configure(LOGIN_MAX_FAILURES_PER_IP=3)
    create_user("erin", "erin-password")
    device = login(api, "erin", "erin-password").json()["data"]["deviceToken"]
    for name in ("u1", "u2", "u3", "u4"):  # a stranger on the same office address sprays
        login(api, name, "x")
    assert login(api, "erin", "erin-password").status_code == 429  # strangers from that IP wait
    assert login(api, "erin", "erin-password", deviceToken=device).status_code == 200


@pytest.mark.parametrize("how", ["reset by an admin", "changed by the owner"])
def test_a_new_password_forgets_the_devices_the_old_one_proved(api: Api, admin: str, how: str) -> None:
    """Device tokens kept from before a reset would otherwise each buy 5 more guesses."""
    user_id = create_user("erin", "erin-password")
    first = login(api, "erin", "erin-password").json()["data"]
    old_device = first["deviceToken"]
    time.sleep(1.01)  # device tokens carry whole seconds: one issued in the second of a reset is not trusted
    if how == "reset by an admin":
        reset = api.put(
            f"/api/v1/users/{user_id}/password", token=admin, json_body={"password": api.encrypt("new-pass-1")}
        )
        assert reset.status_code == 200, reset.json()
    else:
        body = {"oldPassword": api.encrypt("erin-password"), "newPassword": api.encrypt("new-pass-1")}
        assert api.put("/api/v1/auth/user/password", token=first["accessToken"], json_body=body).status_code == 200
    for _ in range(5):
        assert login(api, "erin", "guess", deviceToken=old_device).status_code == 401
    # the guesses were counted as a stranger's: the account is locked to strangers now
    assert login(api, "erin", "new-pass-1").status_code == 429
    time.sleep(1.01)
    runtime.run(get_redis().delete("auth:login-failures:user:erin"))
    fresh = login(api, "erin", "new-pass-1").json()["data"]["deviceToken"]
    for _ in range(5):
        assert login(api, "erin", "guess").status_code == 401
    assert login(api, "erin", "new-pass-1", deviceToken=fresh).status_code == 200  # a device of the new password


def test_usernames_are_counted_as_they_are_compared(api: Api) -> None:
    """The counter once lower-cased names, so a login as "Admin" cleared "admin"'s count."""
    create_user("Admin", "other-password")
    for _ in range(5):
        assert login(api, "admin", "guess").status_code == 401
    assert login(api, "Admin", "other-password").status_code == 200
    assert login(api, "admin", ADMIN_PASSWORD).status_code == 429


def test_spraying_one_guess_over_many_accounts_is_limited_per_ip(api: Api, configure: Any) -> None:
    configure(LOGIN_MAX_FAILURES_PER_IP=3)
    create_user("erin", "erin-password")
    for name in ("u1", "u2", "u3"):
        response = api.post(LOGIN, json_body={"username": name, "password": api.encrypt("x")}, source_ip="10.9.8.7")
        assert response.status_code == 401
    sprayed = api.post(LOGIN, json_body={"username": "u4", "password": api.encrypt("x")}, source_ip="10.9.8.7")
    assert sprayed.status_code == 429
    elsewhere = api.post(
        LOGIN, json_body={"username": "erin", "password": api.encrypt("erin-password")}, source_ip="10.9.8.8"
    )
    assert elsewhere.status_code == 200


def test_a_success_takes_itself_off_the_ips_count(api: Api, configure: Any) -> None:
    configure(LOGIN_MAX_FAILURES_PER_IP=2)
    create_user("erin", "erin-password")
    for _ in range(5):  # a whole office behind one address logs in all day
        assert login(api, "erin", "erin-password").status_code == 200
    assert login(api, "nobody", "x").status_code == 401


async def _guess_concurrently(username: str, attempts: int) -> list[str]:
    from auth_fn import service

    async def attempt() -> str:
        await asyncio.sleep(random.random() / 1000)
        async with session_scope() as session:
            try:
                await service.check_credentials(session, get_redis(), username, "guess", service.Client("10.0.0.1"))
            except TooManyRequests:
                return "429"
            except Unauthorized:
                return "401"
        return "200"

    return list(await asyncio.gather(*(attempt() for _ in range(attempts))))


def test_concurrent_guesses_get_exactly_the_allowed_number_of_tries() -> None:
    create_user("erin", "erin-password")
    for _ in range(5):
        outcomes = runtime.run(_guess_concurrently("erin", 20))
        assert sorted(outcomes) == ["401"] * 5 + ["429"] * 15
        runtime.run(get_redis().delete("auth:login-failures:user:erin", "auth:login-failures:ip:10.0.0.1"))


def test_a_login_flood_of_unknown_users_stops_paying_bcrypt_at_the_ip_limit(
    api: Api, configure: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bcrypt

    configure(LOGIN_MAX_FAILURES_PER_IP=10)
    calls = []
    real = bcrypt.checkpw
    monkeypatch.setattr(bcrypt, "checkpw", lambda *a: calls.append(1) or real(*a))
    statuses = [login(api, f"ghost{n}", "x").status_code for n in range(30)]
    assert statuses == [401] * 10 + [429] * 20
    assert len(calls) == 10  # the refused ones cost no hash


# ---- 6. the current-password check is limited like a login ----------------------------------


def test_a_stolen_access_token_cannot_guess_the_current_password(api: Api) -> None:
    create_user("alice", "alice-password")
    alice = api.login("alice", "alice-password").access

    def change(old: str) -> Any:
        body = {"oldPassword": api.encrypt(old), "newPassword": api.encrypt("brand-new-password")}
        return api.put("/api/v1/auth/user/password", token=alice, json_body=body)

    assert [change(f"guess-{n}").status_code for n in range(5)] == [422] * 5
    refused = change("alice-password")
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) > 0
    assert login(api, "alice", "alice-password").status_code == 200  # unchanged
