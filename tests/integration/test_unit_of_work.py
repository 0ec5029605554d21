"""One unit of work per request: the session commits once, when the route returns, and rolls
back on any error; what must follow a commit (invalidations, revocations) runs only after it."""

from typing import Any

import pytest

from tests.conftest import ADMIN_PASSWORD
from tests.helpers import Api, create_user, snapshot


def test_a_write_is_rolled_back_when_the_handler_raises_after_it(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    from users_fn import service

    admin = api.login("admin", ADMIN_PASSWORD).access
    target = create_user("target", "target-password")
    flushed: list[Any] = []

    async def fail_after_the_flush(*_: Any) -> None:
        flushed.append(True)  # the UPDATE has been sent to the database by now
        raise RuntimeError("something broke after the write")

    monkeypatch.setattr(service, "invalidate", fail_after_the_flush)
    before = snapshot()
    response = api.put(f"/api/v1/users/{target}", token=admin, json_body={"name": "Renamed", "status": False})
    assert response.status_code == 500
    assert flushed
    assert snapshot() == before  # neither the name nor the status changed


def test_what_follows_a_commit_does_not_run_when_it_rolls_back(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reset that fails before its commit must not end the user's sessions either."""
    from multidb import db
    from users_fn import service

    admin = api.login("admin", ADMIN_PASSWORD).access
    target = create_user("target", "target-password")
    sessions = api.login("target", "target-password")
    registered: list[Any] = []
    real = db.after_commit

    def register_then_fail(session: Any, action: Any) -> None:
        real(session, action)
        registered.append(action)
        raise RuntimeError("failed after registering")

    monkeypatch.setattr(service, "after_commit", register_then_fail)
    reset = {"password": api.encrypt("brand-new-password")}
    assert api.put(f"/api/v1/users/{target}/password", token=admin, json_body=reset).status_code == 500
    assert registered
    assert api.get("/api/v1/auth/user/info", token=sessions.access).status_code == 200  # not revoked
    assert api.login("target", "target-password").access  # the old password still works
