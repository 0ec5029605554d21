"""The audit log: who did what, when, from where — written where things happen, read through
GET /api/v1/audit, against the MongoDB server over TCP."""

import logging
from typing import Any

import pytest

from multidb import audit, runtime
from multidb.mongo import database
from multidb.rbac import task_code
from tests.conftest import ADMIN_PASSWORD
from tests.helpers import Api, create_user, get_user_id, role_id

pytestmark = pytest.mark.first_pass_only("MongoDB is the same server in both passes")

AUDIT = "/api/v1/audit"


@pytest.fixture(autouse=True)
def empty_log(empty_files: None) -> None:
    async def clear() -> None:
        await database()[audit.COLLECTION].delete_many({})
        await database()["counters"].delete_many({})

    runtime.run(clear())
    audit._down_until = 0.0


def entries(api: Api, token: str, query: str = "") -> list[dict[str, Any]]:
    response = api.get(f"{AUDIT}?pageSize=100{query}", token=token)
    assert response.status_code == 200, response.body
    records: list[dict[str, Any]] = response.json()["data"]["records"]
    return records


def test_logins_a_role_change_an_upload_and_a_run_each_appear_once(api: Api, worker: Any) -> None:
    codes = ("POST:/api/v1/files/uploads", "POST:/api/v1/files/{file_id}/complete", "POST:/api/v1/tasks/runs")
    alice_id = create_user("alice", "alice-password", codes=(*codes, task_code("multidb.ping")))
    refused = api.post(
        "/api/v1/auth/login", json_body={"username": "alice", "password": api.encrypt("guess")}, source_ip="10.1.2.3"
    )
    assert refused.status_code == 401
    alice = api.login("alice", "alice-password").access
    admin = api.login("admin", ADMIN_PASSWORD).access
    edit = {"interfacePermissions": [*codes, task_code("multidb.ping"), "GET:/api/v1/roles"]}
    assert api.put(f"/api/v1/roles/{role_id('alice-role')}", token=admin, json_body=edit).status_code == 200
    upload = api.post("/api/v1/files/uploads", token=alice, json_body={"name": "a.txt", "size": 3}).json()["data"]
    import urllib.request

    urllib.request.urlopen(
        urllib.request.Request(upload["uploadUrl"], data=b"abc", method="PUT", headers=upload["headers"]), timeout=10
    ).close()
    assert api.post(f"/api/v1/files/{upload['file']['id']}/complete", token=alice).status_code == 200
    run = api.post("/api/v1/tasks/runs", token=alice, json_body={"task": "multidb.ping"}).json()["data"]

    log = entries(api, admin)
    seqs = [e["seq"] for e in log]
    assert seqs == sorted(seqs, reverse=True) == list(range(len(log), 0, -1))  # newest first, no gap
    by_action: dict[str, list[dict[str, Any]]] = {}
    for entry in log:
        by_action.setdefault(f"{entry['action']}:{entry['outcome']}", []).append(entry)

    (failure,) = by_action["auth.login:failure"]
    assert (failure["userId"], failure["ip"], failure["details"]) == (
        alice_id,
        "10.1.2.3",
        {"username": "alice", "reasons": {"wrong_password": 1}},
    )
    assert failure["events"] == 1
    assert failure["userAgent"].startswith("Mozilla/5.0")
    logins = {e["userId"] for e in by_action["auth.login:success"]}
    assert logins == {alice_id, get_user_id("admin")}
    (change,) = by_action["role.update:success"]
    assert change["userId"] == get_user_id("admin")
    assert change["targetType"] == "role"
    assert change["details"]["interfacePermissions"]["to"][-1] == "TASK:multidb.ping"
    assert "GET:/api/v1/roles" in change["details"]["interfacePermissions"]["to"]
    (upload_entry,) = by_action["file.upload:success"]
    assert (upload_entry["userId"], upload_entry["targetId"]) == (alice_id, upload["file"]["id"])
    (run_entry,) = by_action["task.run:success"]
    assert (run_entry["targetId"], run_entry["details"]) == (run["taskId"], {"task": "multidb.ping"})
    assert all(e["ip"] and e["requestId"] for e in log)


def test_the_log_filters_by_user_action_target_outcome_and_time(api: Api) -> None:
    admin = api.login("admin", ADMIN_PASSWORD).access
    alice_id = create_user("alice", "alice-password")
    api.login("alice", "alice-password")
    api.post("/api/v1/auth/login", json_body={"username": "alice", "password": api.encrypt("guess")})
    assert {e["action"] for e in entries(api, admin, f"&userId={alice_id}")} == {"auth.login"}
    assert [e["outcome"] for e in entries(api, admin, f"&userId={alice_id}&outcome=failure")] == ["failure"]
    assert entries(api, admin, "&action=role.update") == []
    newest = entries(api, admin)[0]["at"]
    assert entries(api, admin, f"&since={newest.replace('+', '%2B')}&action=auth.login")
    assert entries(api, admin, "&until=2000-01-01T00:00:00Z") == []


@pytest.mark.parametrize("value", ["0.5", "1796624862", "2026-01-31", "2026-01-31T12:00:00", "yesterday"])
def test_a_time_filter_takes_only_an_rfc_3339_date_time(api: Api, value: str) -> None:
    """Documented as `format: date-time`: a number of seconds, a bare date or a time without an
    offset is refused, naming the parameter, not read as something else."""
    admin = api.login("admin", ADMIN_PASSWORD).access
    for name in ("since", "until"):
        response = api.get(f"{AUDIT}?{name}={value}", token=admin)
        assert response.status_code == 422, (name, value, response.body)
        assert [e["field"] for e in response.json()["data"]] == [f"query.{name}"]


def test_reading_the_log_needs_its_code(api: Api) -> None:
    create_user("nobody", "nobody-password")
    nobody = api.login("nobody", "nobody-password").access
    assert api.get(AUDIT, token=nobody).status_code == 403
    create_user("auditor", "auditor-password", codes=("GET:/api/v1/audit",))
    assert api.get(AUDIT, token=api.login("auditor", "auditor-password").access).status_code == 200


def test_no_entry_holds_a_password_a_hash_or_a_token(api: Api) -> None:
    admin = api.login("admin", ADMIN_PASSWORD).access
    body = {"name": "Zed", "email": "zed@example.com", "username": "zed", "password": api.encrypt("zed-password-1")}
    zed = api.post("/api/v1/users", token=admin, json_body=body).json()["data"]["id"]
    reset = {"password": api.encrypt("zed-password-2")}
    assert api.put(f"/api/v1/users/{zed}/password", token=admin, json_body=reset).status_code == 200
    tokens = api.login("zed", "zed-password-2")
    change = {"oldPassword": api.encrypt("zed-password-2"), "newPassword": api.encrypt("zed-password-3")}
    assert api.put("/api/v1/auth/user/password", token=tokens.access, json_body=change).status_code == 200
    stored = str(runtime.run(database()[audit.COLLECTION].find({}).to_list()))
    for secret in ("zed-password", "$2b$", tokens.access, tokens.refresh, "eyJ"):
        assert secret not in stored
    actions = {e["action"] for e in entries(api, admin)}
    assert {"user.create", "user.password_reset", "auth.password_change"} <= actions


class Recorded(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_with_mongodb_stopped_login_still_works_and_the_failure_is_logged(api: Api, configure: Any) -> None:
    configure(MONGO_URL="mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=300")
    recorded = Recorded()
    logger = logging.getLogger("multidb.audit")
    logger.addHandler(recorded)
    try:
        assert api.login("admin", ADMIN_PASSWORD).access  # the entry cannot be written; the login stands
    finally:
        logger.removeHandler(recorded)
    assert "audit entry not written: auth.login (ServerSelectionTimeoutError)" in recorded.messages


def test_changes_to_who_may_do_what_are_audited_or_refused(api: Api, configure: Any) -> None:
    from tests.helpers import snapshot

    admin = api.login("admin", ADMIN_PASSWORD).access
    target = create_user("target", "target-password")
    configure(MONGO_URL="mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=300")
    before = snapshot()
    refused = api.put(f"/api/v1/users/{target}", token=admin, json_body={"status": False})
    assert (refused.status_code, refused.json()["error"]) == (503, "audit_unavailable")
    created = api.post("/api/v1/roles", token=admin, json_body={"name": "R", "code": "r"})
    assert (created.status_code, created.json()["error"]) == (503, "audit_unavailable")
    assert snapshot() == before  # nothing changed that the log could not record


def test_every_change_is_field_by_field_from_and_to_in_camel_case(api: Api) -> None:
    """Creations (from null), updates and deletions (to null) of roles, users, schedules and files."""
    admin = api.login("admin", ADMIN_PASSWORD).access
    body: dict[str, Any] = {"name": "R", "code": "r", "buttonPermissions": ["role:view"]}
    role = api.post("/api/v1/roles", token=admin, json_body=body)
    assert role.status_code == 201, role.body
    rid = role.json()["data"]["id"]
    user = {"name": "Zed", "email": "zed@example.com", "username": "zed", "password": api.encrypt("zed-password-1")}
    zed = api.post("/api/v1/users", token=admin, json_body=user).json()["data"]["id"]
    body = {"name": "s", "task": "multidb.ping", "intervalSeconds": 60}
    schedule = api.post("/api/v1/tasks/schedules", token=admin, json_body=body).json()["data"]["id"]
    assert api.put(f"/api/v1/tasks/schedules/{schedule}", token=admin, json_body={"enabled": False}).status_code == 200
    upload = api.post("/api/v1/files/uploads", token=admin, json_body={"name": "a.txt", "size": 3}).json()["data"]
    import urllib.request

    put = urllib.request.Request(upload["uploadUrl"], data=b"abc", method="PUT", headers=upload["headers"])
    urllib.request.urlopen(put, timeout=10).close()
    file_id = upload["file"]["id"]
    assert api.post(f"/api/v1/files/{file_id}/complete", token=admin).status_code == 200
    for path in (f"/api/v1/tasks/schedules/{schedule}", f"/api/v1/files/{file_id}", f"/api/v1/users/{zed}"):
        assert api.delete(path, token=admin).status_code == 200, path
    assert api.delete(f"/api/v1/roles/{rid}", token=admin).status_code == 200

    log = {entry["action"]: entry["details"] for entry in entries(api, admin) if entry["action"] != "auth.login"}
    assert log["role.create"]["buttonPermissions"] == {"from": None, "to": ["role:view"]}
    assert log["role.delete"]["code"] == {"from": "r", "to": None}
    assert log["user.create"]["isAdmin"] == {"from": None, "to": False}
    assert log["user.delete"]["username"] == {"from": "zed", "to": None}
    assert log["schedule.create"]["intervalSeconds"] == {"from": None, "to": 60}
    assert log["schedule.update"] == {"enabled": {"from": True, "to": False}}
    assert log["schedule.delete"]["task"] == {"from": "multidb.ping", "to": None}
    assert log["file.upload"] == {
        "name": {"from": None, "to": "a.txt"},
        "size": {"from": None, "to": 3},
        "contentType": {"from": None, "to": "application/octet-stream"},
    }
    assert log["file.delete"]["name"] == {"from": "a.txt", "to": None}
    for action, details in log.items():
        for name, value in details.items():
            assert "_" not in name, (action, name)  # camelCase, as the API names fields
            assert set(value) == {"from", "to"}, (action, name, value)
