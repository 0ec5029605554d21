"""Files through the gateway: metadata in a MongoDB-wire server, bytes moved over real HTTP
to an S3 server through the presigned URLs the function hands out."""

import os
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from multidb import mongo, runtime
from tests.conftest import ADMIN_PASSWORD, FILES_BUCKET, S3_ENDPOINT_URL
from tests.helpers import Api, create_user, reset_clients

FILE_CODES = (
    "GET:/api/v1/files",
    "POST:/api/v1/files/uploads",
    "POST:/api/v1/files/{file_id}/complete",
    "GET:/api/v1/files/{file_id}",
    "GET:/api/v1/files/{file_id}/download",
    "DELETE:/api/v1/files/{file_id}",
)
CONTENT = "Zürich, 28 Nov 2026: the quarterly report.\n".encode() * 50


@pytest.fixture(autouse=True)
def no_files(files_backends: None) -> None:
    """Every test starts with an empty files collection and an empty bucket."""
    from multidb.documents import StoredFile

    async def clear() -> None:
        await mongo.init_documents(StoredFile, build_indexes=True)
        await StoredFile.find_all().delete()

    runtime.run(clear())
    for item in bucket_keys():
        s3().delete_object(Bucket=FILES_BUCKET, Key=item)


def s3() -> Any:
    return boto3.client("s3", endpoint_url=S3_ENDPOINT_URL, region_name="us-east-1")


def bucket_keys() -> list[str]:
    return [item["Key"] for item in s3().list_objects_v2(Bucket=FILES_BUCKET).get("Contents", [])]


def stored_count() -> int:
    """Files that exist for the API (a deleted file's tombstone does not)."""
    from multidb.documents import StoredFile

    return runtime.run(StoredFile.find({"status": {"$in": ["pending", "ready"]}}).count())


def user(api: Api, name: str) -> str:
    create_user(name, f"{name}-password", codes=FILE_CODES)
    return api.login(name, f"{name}-password").access


def put(url: str, data: bytes, headers: dict[str, str]) -> int:
    """What a browser does with the upload URL and the headers the API answered with it."""
    request = urllib.request.Request(url, data=data, method="PUT", headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        return int(response.status)


def fetch(url: str) -> tuple[bytes, dict[str, str]]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read(), {k.lower(): v for k, v in response.headers.items()}


def start_upload(api: Api, token: str, name: str = "report.txt", size: int = len(CONTENT)) -> dict[str, Any]:
    response = api.post(
        "/api/v1/files/uploads", token=token, json_body={"name": name, "contentType": "text/plain", "size": size}
    )
    assert response.status_code == 201, response.body
    data: dict[str, Any] = response.json()["data"]
    return data


def uploaded(api: Api, token: str, name: str = "report.txt") -> str:
    upload = start_upload(api, token, name)
    assert put(upload["uploadUrl"], CONTENT, upload["headers"]) == 200
    assert api.post(f"/api/v1/files/{upload['file']['id']}/complete", token=token).status_code == 200
    return str(upload["file"]["id"])


def test_a_file_goes_up_and_comes_back_through_presigned_urls(api: Api) -> None:
    alice = user(api, "alice")
    upload = start_upload(api, alice, "Quartalsbericht 2026 (final).txt")
    file = upload["file"]
    assert (file["status"], file["size"], file["contentType"]) == ("pending", len(CONTENT), "text/plain")
    assert upload["method"] == "PUT"
    assert upload["headers"] == {"Content-Type": "text/plain", "If-None-Match": "*"}
    assert upload["expiresIn"] == 900

    assert put(upload["uploadUrl"], CONTENT, upload["headers"]) == 200
    done = api.post(f"/api/v1/files/{file['id']}/complete", token=alice)
    assert (done.status_code, done.json()["data"]["status"]) == (200, "ready")
    assert api.get(f"/api/v1/files/{file['id']}", token=alice).json()["data"]["status"] == "ready"

    link = api.get(f"/api/v1/files/{file['id']}/download", token=alice).json()["data"]
    body, headers = fetch(link["url"])
    assert body == CONTENT
    assert headers["content-disposition"] == ("attachment; filename*=UTF-8''Quartalsbericht%202026%20%28final%29.txt")

    listed = api.get("/api/v1/files?status=ready&keyword=BERICHT", token=alice).json()["data"]
    assert (listed["total"], [r["id"] for r in listed["records"]]) == (1, [file["id"]])

    assert api.delete(f"/api/v1/files/{file['id']}", token=alice).status_code == 200
    assert api.get(f"/api/v1/files/{file['id']}", token=alice).status_code == 404
    assert bucket_keys() == []


def test_a_file_is_pending_until_the_declared_bytes_arrive(api: Api) -> None:
    alice = user(api, "alice")
    upload = start_upload(api, alice)
    file_id = upload["file"]["id"]
    early = api.post(f"/api/v1/files/{file_id}/complete", token=alice)
    assert (early.status_code, early.json()["message"]) == (409, "nothing has been uploaded for this file yet")
    assert api.get(f"/api/v1/files/{file_id}/download", token=alice).status_code == 409

    # The embedded S3 server does not check the signed length (S3 and MinIO do): completing does.
    assert put(upload["uploadUrl"], CONTENT[:-1], upload["headers"]) == 200
    short = api.post(f"/api/v1/files/{file_id}/complete", token=alice)
    assert short.status_code == 422
    assert short.json()["message"] == f"the upload holds {len(CONTENT) - 1} bytes, not the {len(CONTENT)} declared"
    assert bucket_keys() == []  # the wrong object is gone, so a retry starts clean
    assert api.get(f"/api/v1/files/{file_id}", token=alice).json()["data"]["status"] == "pending"

    assert put(upload["uploadUrl"], CONTENT, upload["headers"]) == 200
    assert api.post(f"/api/v1/files/{file_id}/complete", token=alice).json()["data"]["status"] == "ready"
    again = api.post(f"/api/v1/files/{file_id}/complete", token=alice)
    assert (again.status_code, again.json()["data"]["status"]) == (200, "ready")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "", "size": 10}, "name"),
        ({"name": "../etc/passwd", "size": 10}, "name"),
        ({"name": "a/b.txt", "size": 10}, "name"),
        ({"name": "a\\b.txt", "size": 10}, "name"),
        ({"name": "a\u0000b.txt", "size": 10}, "name"),
        ({"name": "..", "size": 10}, "name"),
        ({"name": "x" * 256, "size": 10}, "name"),
        ({"name": "a.txt", "size": 0}, "size"),
        ({"name": "a.txt", "size": -5}, "size"),
        ({"name": "a.txt"}, "size"),
        ({"name": "a.txt", "size": "ten"}, "size"),
        ({"name": "a.txt", "size": 10, "contentType": "text"}, "contentType"),
        ({"name": "a.txt", "size": 10, "contentType": "text/plain; charset=utf-8"}, "contentType"),
        ({"name": "a.txt", "size": 10, "contentType": "text/plain\r\nx-amz-acl: public-read"}, "contentType"),
    ],
)
def test_a_bad_upload_is_refused_and_nothing_is_stored(api: Api, body: dict[str, Any], field: str) -> None:
    alice = user(api, "alice")
    response = api.post("/api/v1/files/uploads", token=alice, json_body=body)
    assert response.status_code == 422, response.body
    assert [error["field"] for error in response.json()["data"]] == [field]
    assert stored_count() == 0


def test_a_file_over_the_limit_is_refused(api: Api) -> None:
    alice = user(api, "alice")
    response = api.post("/api/v1/files/uploads", token=alice, json_body={"name": "big.iso", "size": 100 * 2**20 + 1})
    assert (response.status_code, response.json()["message"]) == (422, "a file may be at most 104857600 bytes")
    assert stored_count() == 0


def test_files_of_others_are_hidden_except_from_an_admin(api: Api) -> None:
    alice, bob = user(api, "alice"), user(api, "bob")
    file_id = uploaded(api, alice)
    bobs = uploaded(api, bob, "bob.txt")
    for method, path in [
        ("GET", f"/api/v1/files/{file_id}"),
        ("GET", f"/api/v1/files/{file_id}/download"),
        ("POST", f"/api/v1/files/{file_id}/complete"),
        ("DELETE", f"/api/v1/files/{file_id}"),
    ]:
        response = api.request(method, path, token=bob)
        assert (response.status_code, response.json()["message"]) == (404, "file not found"), path
    assert [r["id"] for r in api.get("/api/v1/files", token=bob).json()["data"]["records"]] == [bobs]

    admin = api.login("admin", ADMIN_PASSWORD).access
    assert api.get("/api/v1/files", token=admin).json()["data"]["total"] == 2
    assert api.get(f"/api/v1/files/{file_id}/download", token=admin).status_code == 200
    assert api.delete(f"/api/v1/files/{file_id}", token=admin).status_code == 200
    assert stored_count() == 1


def test_a_malformed_or_unknown_id_is_refused(api: Api) -> None:
    alice = user(api, "alice")
    assert api.get("/api/v1/files/not-an-id", token=alice).status_code == 422
    assert api.get("/api/v1/files/" + "0" * 24, token=alice).status_code == 404


def test_the_files_routes_need_their_permission(api: Api) -> None:
    create_user("carol", "carol-password", codes=("GET:/api/v1/files",))
    carol = api.login("carol", "carol-password").access
    assert api.get("/api/v1/files", token=carol).status_code == 200
    response = api.post("/api/v1/files/uploads", token=carol, json_body={"name": "a.txt", "size": 1})
    assert response.status_code == 403
    assert stored_count() == 0


@pytest.fixture
def outage(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Point MongoDB or S3 at a closed port, then put everything back."""
    from multidb import storage

    yield monkeypatch
    monkeypatch.undo()
    reset_clients()
    mongo.get_mongo.cache_clear()
    storage.get_s3.cache_clear()


def test_an_unreachable_mongodb_or_s3_answers_503(api: Api, outage: pytest.MonkeyPatch) -> None:
    from multidb import storage

    alice = user(api, "alice")
    file_id = uploaded(api, alice)
    s3().put_object(Bucket=FILES_BUCKET, Key="keep", Body=b"x")

    outage.setenv("S3_ENDPOINT_URL", "http://127.0.0.1:9")  # discard port: nothing listens
    reset_clients()
    storage.get_s3.cache_clear()
    response = api.delete(f"/api/v1/files/{file_id}", token=alice)
    assert (response.status_code, response.json()["message"]) == (503, "Service unavailable.")
    outage.setenv("S3_ENDPOINT_URL", S3_ENDPOINT_URL)
    storage.get_s3.cache_clear()
    reset_clients()
    assert api.get(f"/api/v1/files/{file_id}", token=alice).status_code == 200  # nothing half-deleted

    outage.setenv("MONGO_URL", "mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=500")
    reset_clients()
    mongo.get_mongo.cache_clear()
    response = api.get("/api/v1/files", token=alice)
    assert (response.status_code, response.json()["message"]) == (503, "Service unavailable.")
    assert b"127.0.0.1:9" not in response.body


def test_the_deploy_step_builds_the_files_indexes() -> None:
    from infra import initdb

    collection = mongo.get_mongo()[os.environ["MONGO_DATABASE"]]["files"]
    runtime.run(collection.drop())
    mongo._beanie_ready.clear()  # a deploy runs in a fresh process
    runtime.run(initdb.build_mongo_indexes())
    indexes = runtime.run(collection.index_information())
    assert indexes["key_1"].get("unique") is True
    assert "owner_id_1" in indexes
