"""Every error status a route declares for itself (`responses=error_responses(...)`, beyond
what its dependencies imply: 401/403 from the caller check, 422 from parameters, 400 from a
body that does not parse, 500/503 from anything) is one a request can really provoke: each is
provoked here, through the gateway, and answered in the envelope with its machine-readable
`error` name. Schemathesis (test_fuzz) checks the other direction: no answer outside the
document."""

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from infra.deploy.template import load
from infra.local.gateway.docs import merged_openapi
from multidb.rbac import task_code
from tests.conftest import ADMIN_PASSWORD
from tests.helpers import Api, create_user, production_settings

pytestmark = pytest.mark.first_pass_only("the OpenAPI error lists")

DERIVED = {"400", "401", "403", "422", "500", "503"}
GATEWAY_ONLY = {"$ref": "#/components/schemas/GatewayDenial"}


def _schema(response: dict[str, Any]) -> Any:
    return response["content"]["application/json"]["schema"]


def documented_names(operation: str, status: int) -> set[str]:
    """The `error` names the merged document lists for this operation's status."""
    method, path = operation.split(" ", 1)
    schema = _schema(merged_openapi(load())["paths"][path][method.lower()]["responses"][str(status)])
    envelope = next(option for option in schema.get("oneOf", [schema]) if option != GATEWAY_ONLY)
    return set(envelope["allOf"][1]["properties"]["error"]["enum"])


def declared() -> set[tuple[str, int]]:
    """(operation, status) for every status a route declares itself."""
    found = set()
    for path, methods in merged_openapi(load())["paths"].items():
        for method, operation in methods.items():
            responses = operation["responses"]
            # API Gateway's own answers alone (its throttle, its payload limit) are not the route's
            statuses = {s for s in responses if s >= "400" and _schema(responses[s]) != GATEWAY_ONLY}
            own = statuses - DERIVED
            if operation.get("x-access") == "public":  # no caller check: its 401s are its own
                own |= statuses & {"401"}
            found |= {(f"{method.upper()} {path}", int(status)) for status in own}
    return found


Provoke = Callable[[Api, str], Any]


def _fail_logins(api: Api, path: str, times: int = 6) -> Any:
    body = {"username": "admin", "password": api.encrypt("wrong")}
    for _ in range(times - 1):
        api.post(path, json_body=body)
    return api.post(path, json_body=body)


def _swagger(api: Api, password: str) -> Any:
    form = {"content-type": "application/x-www-form-urlencoded"}
    return api.post("/api/v1/auth/login/swagger", body=f"username=admin&password={password}", headers=form)


def _swagger_in_production(api: Api, admin: str) -> Any:
    production = production_settings()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("auth_fn.routes.get_settings", lambda: production)
        return _swagger(api, ADMIN_PASSWORD)


def _role(api: Api, admin: str, code: str) -> str:
    return str(api.post("/api/v1/roles", token=admin, json_body={"name": code, "code": code}).json()["data"]["id"])


def _role_code_taken(api: Api, admin: str) -> Any:
    first = _role(api, admin, "first")
    _role(api, admin, "taken")
    return api.put(f"/api/v1/roles/{first}", token=admin, json_body={"code": "taken"})


def _schedule(api: Api, admin: str, name: str) -> Any:
    return api.post(
        "/api/v1/tasks/schedules", token=admin, json_body={"name": name, "task": "multidb.ping", "crontab": "0 3 * * *"}
    )


def _upload(api: Api, token: str) -> str:
    body = {"name": "a.txt", "size": 3}
    return str(api.post("/api/v1/files/uploads", token=token, json_body=body).json()["data"]["file"]["id"])


def _password_guesses(api: Api, _: str) -> Any:
    create_user("alice", "alice-password")
    alice = api.login("alice", "alice-password").access
    body = {"oldPassword": api.encrypt("wrong"), "newPassword": api.encrypt("brand-new-password")}
    for _ in range(5):
        api.put("/api/v1/auth/user/password", token=alice, json_body=body)
    return api.put("/api/v1/auth/user/password", token=alice, json_body=body)


def _run_limit(api: Api, _: str) -> Any:
    create_user("runner", "runner-password", codes=("POST:/api/v1/tasks/runs", task_code("multidb.ping")))
    runner = api.login("runner", "runner-password").access
    for _ in range(30):
        api.post("/api/v1/tasks/runs", token=runner, json_body={"task": "multidb.ping", "countdown": 3600})
    return api.post("/api/v1/tasks/runs", token=runner, json_body={"task": "multidb.ping", "countdown": 3600})


def _schedule_limit(api: Api, admin: str) -> Any:
    for n in range(20):
        _schedule(api, admin, f"s{n}")
    return _schedule(api, admin, "one too many")


def _upload_limit(api: Api, admin: str) -> Any:
    for _ in range(20):
        _upload(api, admin)
    return api.post("/api/v1/files/uploads", token=admin, json_body={"name": "a.txt", "size": 3})


MISSING = str(uuid.UUID(int=7))
MISSING_FILE = "0" * 24
CASES: dict[tuple[str, int], Provoke] = {
    ("POST /api/v1/auth/login", 401): lambda api, _: api.post(
        "/api/v1/auth/login", json_body={"username": "admin", "password": api.encrypt("wrong")}
    ),
    ("POST /api/v1/auth/login", 429): lambda api, _: _fail_logins(api, "/api/v1/auth/login"),
    ("POST /api/v1/auth/login/swagger", 401): lambda api, _: _swagger(api, "wrong"),
    ("POST /api/v1/auth/login/swagger", 404): _swagger_in_production,
    ("POST /api/v1/auth/login/swagger", 429): lambda api, _: [_swagger(api, "wrong") for _ in range(6)][-1],
    ("POST /api/v1/auth/token/refresh", 401): lambda api, _: api.post(
        "/api/v1/auth/token/refresh", headers={"x-refresh-token": "not-a-token"}
    ),
    ("PUT /api/v1/auth/user/password", 429): _password_guesses,
    ("POST /api/v1/roles", 409): lambda api, admin: [
        api.post("/api/v1/roles", token=admin, json_body={"name": "R", "code": "r"}) for _ in range(2)
    ][-1],
    ("PUT /api/v1/roles/{role_id}", 404): lambda api, admin: api.put(
        f"/api/v1/roles/{MISSING}", token=admin, json_body={"name": "x"}
    ),
    ("PUT /api/v1/roles/{role_id}", 409): lambda api, admin: _role_code_taken(api, admin),
    ("DELETE /api/v1/roles", 404): lambda api, admin: api.delete(
        "/api/v1/roles", token=admin, json_body={"ids": [MISSING]}
    ),
    ("DELETE /api/v1/roles/{role_id}", 404): lambda api, admin: api.delete(f"/api/v1/roles/{MISSING}", token=admin),
    ("GET /api/v1/users/{user_id}", 404): lambda api, admin: api.get(f"/api/v1/users/{MISSING}", token=admin),
    ("POST /api/v1/users", 409): lambda api, admin: api.post(
        "/api/v1/users",
        token=admin,
        json_body={
            "name": "A",
            "email": "a@example.com",
            "username": "admin",
            "password": api.encrypt("long-password"),
        },
    ),
    ("PUT /api/v1/users/{user_id}", 404): lambda api, admin: api.put(
        f"/api/v1/users/{MISSING}", token=admin, json_body={"name": "x"}
    ),
    ("PUT /api/v1/users/{user_id}/password", 404): lambda api, admin: api.put(
        f"/api/v1/users/{MISSING}/password", token=admin, json_body={"password": api.encrypt("long-password")}
    ),
    ("DELETE /api/v1/users", 404): lambda api, admin: api.delete(
        "/api/v1/users", token=admin, json_body={"ids": [MISSING]}
    ),
    ("DELETE /api/v1/users/{user_id}", 404): lambda api, admin: api.delete(f"/api/v1/users/{MISSING}", token=admin),
    ("POST /api/v1/tasks/runs", 429): _run_limit,
    ("GET /api/v1/tasks/runs/{task_id}", 404): lambda api, admin: api.get(f"/api/v1/tasks/runs/{MISSING}", token=admin),
    ("GET /api/v1/tasks/schedules/{schedule_id}", 404): lambda api, admin: api.get(
        f"/api/v1/tasks/schedules/{MISSING}", token=admin
    ),
    ("POST /api/v1/tasks/schedules", 409): lambda api, admin: [_schedule(api, admin, "same") for _ in range(2)][-1],
    ("POST /api/v1/tasks/schedules", 429): _schedule_limit,
    ("PUT /api/v1/tasks/schedules/{schedule_id}", 404): lambda api, admin: api.put(
        f"/api/v1/tasks/schedules/{MISSING}", token=admin, json_body={"enabled": False}
    ),
    ("PUT /api/v1/tasks/schedules/{schedule_id}", 409): lambda api, admin: api.put(
        f"/api/v1/tasks/schedules/{_schedule(api, admin, 'first').json()['data']['id']}",
        token=admin,
        json_body={"name": _schedule(api, admin, "taken").json()["data"]["name"]},
    ),
    ("DELETE /api/v1/tasks/schedules/{schedule_id}", 404): lambda api, admin: api.delete(
        f"/api/v1/tasks/schedules/{MISSING}", token=admin
    ),
    ("POST /api/v1/files/uploads", 429): _upload_limit,
    ("POST /api/v1/files/{file_id}/complete", 404): lambda api, admin: api.post(
        f"/api/v1/files/{MISSING_FILE}/complete", token=admin
    ),
    ("POST /api/v1/files/{file_id}/complete", 409): lambda api, admin: api.post(
        f"/api/v1/files/{_upload(api, admin)}/complete", token=admin
    ),
    ("GET /api/v1/files/{file_id}", 404): lambda api, admin: api.get(f"/api/v1/files/{MISSING_FILE}", token=admin),
    ("GET /api/v1/files/{file_id}/download", 404): lambda api, admin: api.get(
        f"/api/v1/files/{MISSING_FILE}/download", token=admin
    ),
    ("GET /api/v1/files/{file_id}/download", 409): lambda api, admin: api.get(
        f"/api/v1/files/{_upload(api, admin)}/download", token=admin
    ),
    ("DELETE /api/v1/files/{file_id}", 404): lambda api, admin: api.delete(
        f"/api/v1/files/{MISSING_FILE}", token=admin
    ),
    ("GET /api/v1/files/{file_id}/parts", 404): lambda api, admin: api.get(
        f"/api/v1/files/{MISSING_FILE}/parts", token=admin
    ),
    ("GET /api/v1/files/{file_id}/parts", 409): lambda api, admin: api.get(
        f"/api/v1/files/{_upload(api, admin)}/parts",
        token=admin,  # uploaded in one PUT: no parts
    ),
}


def test_every_declared_error_has_a_case_here_and_no_case_is_stale() -> None:
    assert set(CASES) == declared()


@pytest.mark.parametrize(("operation", "status"), sorted(CASES), ids=[f"{o} {s}" for o, s in sorted(CASES)])
def test_each_declared_error_can_be_provoked(api: Api, empty_files: None, operation: str, status: int) -> None:
    admin = api.login("admin", ADMIN_PASSWORD).access
    response = CASES[(operation, status)](api, admin)
    assert response.status_code == status, response.body
    body = response.json()
    assert body["code"] == status
    assert body["error"]  # a machine-readable name beside the message
    assert body["error"] in documented_names(operation, status)
