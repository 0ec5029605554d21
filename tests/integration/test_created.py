"""Every 201 says where the new resource lives (`Location`), and the document links each
create to what can be done with the resource next (OpenAPI links: create → read → update →
delete), with the new id taken from the body."""

import re
from typing import Any

import pytest

from infra.deploy.template import load
from infra.local.gateway.docs import merged_openapi
from tests.conftest import ADMIN_PASSWORD
from tests.helpers import Api


def _creates(api: Api) -> dict[str, tuple[str, dict[str, Any]]]:
    """What each create route answers: (operation, its 201)."""
    schedule = {"name": "nightly", "task": "multidb.ping", "crontab": "0 3 * * *"}
    user = {"name": "Ann", "email": "ann@example.com", "username": "ann", "password": api.encrypt("ann-password")}
    return {
        "/api/v1/roles": ("POST /api/v1/roles", {"name": "Editors", "code": "editors"}),
        "/api/v1/users": ("POST /api/v1/users", user),
        "/api/v1/tasks/schedules": ("POST /api/v1/tasks/schedules", schedule),
        "/api/v1/files": ("POST /api/v1/files/uploads", {"name": "a.txt", "size": 4}),
    }


@pytest.mark.parametrize("collection", ["/api/v1/roles", "/api/v1/users", "/api/v1/tasks/schedules", "/api/v1/files"])
def test_a_201_locates_what_it_created(api: Api, empty_files: None, collection: str) -> None:
    admin = api.login("admin", ADMIN_PASSWORD).access
    operation, body = _creates(api)[collection]
    created = api.post(operation.split(" ")[1], token=admin, json_body=body)
    assert created.status_code == 201, created.body
    data = created.json()["data"]
    new_id = data["file"]["id"] if collection == "/api/v1/files" else data["id"]
    location = created.headers["location"]
    assert location == f"{collection}/{new_id}"
    # The Location is the resource: deleting it there removes it (roles have no GET).
    assert api.delete(location, token=admin).status_code == 200
    assert api.delete(location, token=admin).status_code == 404


def test_every_201_documents_its_location_and_links_to_the_resource() -> None:
    document = merged_openapi(load())
    operation_ids = {
        op["operationId"]: (method, path) for path, ops in document["paths"].items() for method, op in ops.items()
    }
    creates = 0
    for path, ops in document["paths"].items():
        for method, op in ops.items():
            created = op["responses"].get("201")
            if created is None:
                continue
            creates += 1
            assert "Location" in created["headers"], (method, path)
            linked = {operation_ids[link["operationId"]] for link in created["links"].values()}
            assert {m for m, _ in linked} >= {"put", "delete"} or {m for m, _ in linked} >= {"get", "delete"}
            for link in created["links"].values():
                ((parameter, expression),) = link["parameters"].items()
                assert re.fullmatch(r"\$response\.body#/data(/file)?/id", expression), expression
                assert f"{{{parameter}}}" in operation_ids[link["operationId"]][1]
    assert creates == 4
