"""Session guarantees held exactly at their edges: a device token from the second a password
changed, a refresh of a session that was logged out, a refresh by a user disabled while the
revocation of their sessions was lost. Each test fails on the one-line mutation it names."""

import time
import uuid
from typing import Any

import jwt
import pytest

from multidb import runtime
from multidb.notices import Reason
from multidb.redis import get_redis
from multidb.security import sessions, tokens
from multidb.security.sessions import device_trusted, revoke_user_sessions, revoked_family_key
from multidb.security.tokens import TokenType, issue
from tests.conftest import ADMIN_PASSWORD
from tests.helpers import Api, create_user

REFRESH = "/api/v1/auth/token/refresh"


class Clock:
    """`time` for the token and session modules: the seconds we say, nothing slept."""

    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


def _trusted(claims: Any) -> bool:
    return runtime.run(device_trusted(get_redis(), claims))


def test_a_device_token_issued_in_the_second_the_sessions_ended_is_not_trusted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Mutation caught: `device.iat > ended` turned into `>=` in `sessions.device_trusted`."""
    user_id = create_user("dora")
    clock = Clock(float(int(time.time())) + 0.2)
    monkeypatch.setattr(tokens, "time", clock)
    monkeypatch.setattr(sessions, "time", clock)

    def device() -> Any:
        return issue(user_id, TokenType.DEVICE, uuid.uuid4().hex, 3600)[1]

    proved_the_old_password = device()  # at x.2
    assert _trusted(proved_the_old_password)
    clock.now += 0.5  # x.7: a password reset, in the same second
    runtime.run(revoke_user_sessions(get_redis(), user_id, Reason.PASSWORD_RESET))
    assert not _trusted(proved_the_old_password)
    # Issued after the reset but in its second: whole seconds cannot tell it from one issued
    # before, so it is not trusted either (its owner's next login brings a trusted one).
    clock.now += 0.2
    assert not _trusted(device())
    clock.now = float(int(clock.now) + 1)
    assert _trusted(device())


def _family(refresh_token: str) -> str:
    return str(jwt.decode(refresh_token, options={"verify_signature": False})["fam"])


def _reuse_alarms(api: Api, admin: str, family: str) -> int:
    query = f"action=auth.refresh_reuse&targetType=session&targetId={family}"
    return int(api.get(f"/api/v1/audit?{query}", token=admin).json()["data"]["total"])


def test_a_refresh_of_a_logged_out_session_is_401_without_a_reuse_alarm(api: Api) -> None:
    """Mutation caught: the revoked-family check dropped from the rotation script (`_ROTATE`),
    which then takes the logged-out token for a stolen one and raises a false alarm."""
    admin = api.login("admin", ADMIN_PASSWORD).access
    session = api.login("admin", ADMIN_PASSWORD)
    assert api.post("/api/v1/auth/logout", token=session.access).status_code == 200
    refused = api.post(REFRESH, headers={"x-refresh-token": session.refresh})
    assert (refused.status_code, refused.json()["error"]) == (401, "refresh_token_invalid")
    assert _reuse_alarms(api, admin, _family(session.refresh)) == 0

    # A real replay (the token spent by a refresh, then sent again) is an alarm: the count can move.
    stolen = api.login("admin", ADMIN_PASSWORD)
    assert api.post(REFRESH, headers={"x-refresh-token": stolen.refresh}).status_code == 200
    assert api.post(REFRESH, headers={"x-refresh-token": stolen.refresh}).status_code == 401
    assert _reuse_alarms(api, admin, _family(stolen.refresh)) == 1


def test_a_disabled_user_whose_sessions_outlived_the_change_cannot_refresh(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Mutation caught: the status check dropped from `auth_fn.service.refresh`."""
    user_id = create_user("dave", "dave-password")
    session = api.login("dave", "dave-password")
    admin = api.login("admin", ADMIN_PASSWORD).access

    async def lost(*_: Any, **__: Any) -> int:  # the after-commit revocation never ran
        return 0

    monkeypatch.setattr("users_fn.service.revoke_user_sessions", lost)
    assert api.put(f"/api/v1/users/{user_id}", token=admin, json_body={"status": False}).status_code == 200
    refused = api.post(REFRESH, headers={"x-refresh-token": session.refresh})
    assert refused.status_code == 401, refused.body
    assert refused.json()["error"] == "user_not_active"
    # ...and the session it tried to extend is ended for good.
    assert runtime.run(get_redis().exists(revoked_family_key(_family(session.refresh)))) == 1
