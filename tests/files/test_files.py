"""Files through the gateway: metadata in a MongoDB-wire server, bytes moved over real HTTP
to an S3 server through the presigned URLs the function hands out."""

import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from multidb import mongo, runtime
from tests.conftest import ADMIN_PASSWORD, FILES_BUCKET, S3_ENDPOINT_URL
from tests.helpers import Api, create_user, reset_clients

pytestmark = pytest.mark.first_pass_only("MongoDB and S3 are the same servers in both passes")

FILE_CODES = (
    "GET:/api/v1/files",
    "POST:/api/v1/files/uploads",
    "POST:/api/v1/files/{file_id}/complete",
    "GET:/api/v1/files/{file_id}",
    "GET:/api/v1/files/{file_id}/parts",
    "GET:/api/v1/files/{file_id}/download",
    "DELETE:/api/v1/files/{file_id}",
)
CONTENT = "Zürich, 28 Nov 2026: the quarterly report.\n".encode() * 50


@pytest.fixture(autouse=True)
def no_files(empty_files: None) -> None:
    """Every test starts with an empty files collection and an empty bucket."""


def s3() -> Any:
    return boto3.client("s3", endpoint_url=S3_ENDPOINT_URL, region_name="us-east-1")


def bucket_keys() -> list[str]:
    return [item["Key"] for item in s3().list_objects_v2(Bucket=FILES_BUCKET).get("Contents", [])]


def stored_count() -> int:
    """Files that exist for the API (a deleted file's tombstone does not)."""
    from multidb.files.documents import StoredFile

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


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"size": 5 * 2**30 + 1}, "file_too_large_for_one_put"),  # S3's largest single PUT
        ({"size": 5 * 2**40 + 1, "partSize": 2**30}, "file_too_large"),  # S3's largest object
        ({"size": 10_001 * 5 * 2**20, "partSize": 5 * 2**20}, "too_many_parts"),
    ],
    ids=["one-put", "any", "parts"],
)
def test_a_file_over_a_limit_is_refused(api: Api, body: dict[str, int], error: str) -> None:
    alice = user(api, "alice")
    response = api.post("/api/v1/files/uploads", token=alice, json_body={"name": "big.iso", **body})
    assert (response.status_code, response.json()["error"]) == (422, error)
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
    from multidb.files import storage

    yield monkeypatch
    monkeypatch.undo()
    reset_clients()
    mongo._mongo.cache_clear()
    storage.get_s3.cache_clear()


def test_an_unreachable_mongodb_or_s3_answers_503(api: Api, outage: pytest.MonkeyPatch) -> None:
    from multidb.files import storage

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
    mongo._mongo.cache_clear()
    response = api.get("/api/v1/files", token=alice)
    assert (response.status_code, response.json()["message"]) == (503, "Service unavailable.")
    assert b"127.0.0.1:9" not in response.body


def test_the_deploy_step_builds_the_files_indexes() -> None:
    from infra.deploy import initdb

    collection = mongo.get_mongo()[os.environ["MONGO_DATABASE"]]["files"]
    runtime.run(collection.drop())
    mongo._beanie_ready.clear()  # a deploy runs in a fresh process
    runtime.run(initdb.build_mongo_indexes())
    indexes = runtime.run(collection.index_information())
    assert indexes["key_1"].get("unique") is True
    assert "owner_id_1" in indexes


# ---- abuse (issue #8): quotas, overwrites, uploads after a delete --------------------------


def test_pending_uploads_are_limited_per_user(api: Api, configure: Any) -> None:
    configure(FILES_MAX_PENDING=2)
    alice, bob = user(api, "alice"), user(api, "bob")
    start_upload(api, alice, "one.txt")
    start_upload(api, alice, "two.txt")
    third = api.post("/api/v1/files/uploads", token=alice, json_body={"name": "three.txt", "size": 10})
    assert third.status_code == 429
    assert third.headers["retry-after"] == "900"
    assert stored_count() == 2
    start_upload(api, bob, "bobs.txt")  # others are not affected


def test_stored_bytes_are_limited_per_user(api: Api, configure: Any) -> None:
    configure(FILES_QUOTA_BYTES=len(CONTENT) * 2)
    alice = user(api, "alice")
    uploaded(api, alice, "one.txt")
    start_upload(api, alice, "two.txt")
    over = api.post("/api/v1/files/uploads", token=alice, json_body={"name": "three.txt", "size": 1})
    assert over.status_code == 429
    assert stored_count() == 2


def test_a_deleted_upload_whose_url_still_works_counts_against_the_quota(api: Api, configure: Any) -> None:
    """Deleting files does not free quota while their upload URLs can still put bytes in the
    bucket: delete-and-recreate would otherwise store any amount under one user's prefix."""
    configure(FILES_QUOTA_BYTES=len(CONTENT) * 2, FILES_MAX_PENDING=3)
    alice = user(api, "alice")
    uploads = [start_upload(api, alice, f"{n}.txt") for n in range(2)]
    for upload in uploads:
        assert api.delete(f"/api/v1/files/{upload['file']['id']}", token=alice).status_code == 200
    assert api.get("/api/v1/files", token=alice).json()["data"]["total"] == 0
    over = api.post("/api/v1/files/uploads", token=alice, json_body={"name": "more.txt", "size": len(CONTENT)})
    assert (over.status_code, over.json()["error"]) == (429, "storage_quota_exceeded")
    configure(FILES_QUOTA_BYTES=len(CONTENT) * 10, FILES_MAX_PENDING=2)
    slots = api.post("/api/v1/files/uploads", token=alice, json_body={"name": "more.txt", "size": len(CONTENT)})
    assert (slots.status_code, slots.json()["error"]) == (429, "too_many_pending_uploads")
    # once the URLs have expired, the tombstones stop counting
    configure(FILES_QUOTA_BYTES=len(CONTENT) * 2, FILES_MAX_PENDING=3)
    _expire_tombstones()
    assert api.post("/api/v1/files/uploads", token=alice, json_body={"name": "ok.txt", "size": 1}).status_code == 201


def _expire_tombstones() -> None:
    from datetime import UTC, datetime, timedelta

    from multidb import runtime
    from multidb.files.documents import StoredFile

    async def expire() -> None:
        past = datetime.now(UTC) - timedelta(seconds=1)
        await StoredFile.get_pymongo_collection().update_many(
            {"status": "deleted"}, {"$set": {"upload_expires_at": past}}
        )

    runtime.run(expire())


def test_concurrent_uploads_cannot_all_pass_the_quota(configure: Any) -> None:
    import asyncio

    from files_fn import service
    from files_fn.schemas import UploadCreate
    from multidb.authz import Principal
    from multidb.errors import TooManyRequests
    from multidb.redis import get_redis
    from multidb.security.tokens import Claims, TokenType

    configure(FILES_MAX_PENDING=3)
    owner = Principal("u-1", "U", False, Claims("u-1", "j", "f", TokenType.ACCESS, 0, 0))

    async def burst() -> list[str]:
        async def one(n: int) -> str:
            try:
                await service.create_upload(get_redis(), owner, UploadCreate(name=f"f{n}.txt", size=10))
            except TooManyRequests:
                return "429"
            return "201"

        return list(await asyncio.gather(*(one(n) for n in range(10))))

    assert sorted(runtime.run(burst())) == ["201"] * 3 + ["429"] * 7
    assert stored_count() == 3


def test_a_ready_files_bytes_cannot_be_replaced_through_its_upload_url(api: Api) -> None:
    alice = user(api, "alice")
    upload = start_upload(api, alice)
    assert put(upload["uploadUrl"], CONTENT, upload["headers"]) == 200
    assert api.post(f"/api/v1/files/{upload['file']['id']}/complete", token=alice).status_code == 200
    forged = CONTENT.replace(b"quarterly", b"QUARTERLY")  # the same length and type
    with pytest.raises(urllib.error.HTTPError) as refused:
        put(upload["uploadUrl"], forged, upload["headers"])
    assert refused.value.code == 412  # If-None-Match: *, part of the signature on S3
    link = api.get(f"/api/v1/files/{upload['file']['id']}/download", token=alice).json()["data"]
    assert fetch(link["url"])[0] == CONTENT


def test_an_object_put_after_a_delete_is_swept_once_the_url_expires(api: Api, worker: Any) -> None:
    from multidb.files.documents import StoredFile
    from multidb.queue.tasks import sweep_files

    alice = user(api, "alice")
    upload = start_upload(api, alice)
    keep = uploaded(api, alice, "keep.txt")
    file_id = upload["file"]["id"]
    assert api.delete(f"/api/v1/files/{file_id}", token=alice).status_code == 200
    assert api.get(f"/api/v1/files/{file_id}", token=alice).status_code == 404
    assert put(upload["uploadUrl"], CONTENT, upload["headers"]) == 200  # the URL cannot be revoked...
    late = [key for key in bucket_keys() if key.endswith("/report.txt")]
    assert len(late) == 1

    assert sweep_files.apply_async().get(timeout=60) == 0  # ...so the tombstone waits for it to expire
    assert late[0] in bucket_keys()

    async def expire() -> None:
        from bson import ObjectId

        doc = await StoredFile.get(ObjectId(file_id))
        assert doc is not None
        assert doc.status.value == "deleted"
        doc.upload_expires_at = datetime.now(UTC) - timedelta(seconds=1)
        await doc.save()

    runtime.run(expire())
    assert sweep_files.apply_async().get(timeout=60) == 1  # the worker's sweep, as beat sends it
    assert late[0] not in bucket_keys()
    assert runtime.run(StoredFile.find({"_id": {"$exists": True}}).count()) == 1
    assert api.get(f"/api/v1/files/{keep}", token=alice).json()["data"]["status"] == "ready"


def test_an_upload_never_completed_is_swept_after_its_age(api: Api, configure: Any) -> None:
    from multidb.files import lifecycle
    from multidb.files.documents import StoredFile

    alice = user(api, "alice")
    abandoned = start_upload(api, alice, "abandoned.txt")
    assert put(abandoned["uploadUrl"], CONTENT, abandoned["headers"]) == 200
    fresh = start_upload(api, alice, "fresh.txt")
    ready = uploaded(api, alice, "ready.txt")

    async def age(file_id: str) -> None:
        from bson import ObjectId

        doc = await StoredFile.get(ObjectId(file_id))
        assert doc is not None
        doc.created_at = datetime.now(UTC) - timedelta(days=2)
        await doc.save()

    runtime.run(age(abandoned["file"]["id"]))
    runtime.run(age(ready))
    assert runtime.run(lifecycle.sweep()) == 1
    assert api.get(f"/api/v1/files/{abandoned['file']['id']}", token=alice).status_code == 404
    assert not any(key.endswith("/abandoned.txt") for key in bucket_keys())
    assert api.get(f"/api/v1/files/{fresh['file']['id']}", token=alice).status_code == 200
    assert api.get(f"/api/v1/files/{ready}", token=alice).status_code == 200


def test_file_times_carry_their_offset(api: Api) -> None:
    """MongoDB keeps no time zone; the API's date-time values must still say UTC."""
    alice = user(api, "alice")
    uploaded(api, alice)
    record = api.get("/api/v1/files", token=alice).json()["data"]["records"][0]
    assert record["createdAt"].endswith(("Z", "+00:00"))
    assert record["updatedAt"].endswith(("Z", "+00:00"))


# ---- multipart uploads (issue #13) ------------------------------------------------------------

PART = 5 * 2**20  # S3's smallest part (but the last)
BIG = bytes(range(256)) * (PART // 256) + b"the last part, smaller"


def put_part(url: str, data: bytes) -> str:
    """PUT one part as a browser would; S3 answers its ETag."""
    # (urllib would call the bytes a form, which the S3 server then tries to parse)
    request = urllib.request.Request(url, data=data, method="PUT", headers={"Content-Type": "application/octet-stream"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return str(response.headers["ETag"])


def start_parts(api: Api, token: str, name: str = "big.bin") -> dict[str, Any]:
    body = {"name": name, "size": len(BIG), "partSize": PART}
    response = api.post("/api/v1/files/uploads", token=token, json_body=body)
    assert response.status_code == 201, response.body
    data: dict[str, Any] = response.json()["data"]
    return data


def chunk(number: int) -> bytes:
    return BIG[(number - 1) * PART : number * PART]


def test_a_file_goes_up_in_two_parts_and_comes_back_byte_identical(api: Api) -> None:
    alice = user(api, "alice")
    upload = start_parts(api, alice)
    assert upload["uploadUrl"] is None
    assert upload["file"]["partSize"] == PART
    assert [(p["partNumber"], p["size"]) for p in upload["parts"]] == [(1, PART), (2, len(BIG) - PART)]
    etags = [put_part(p["url"], chunk(p["partNumber"])) for p in upload["parts"]]
    parts = [{"partNumber": n, "etag": etag} for n, etag in enumerate(etags, start=1)]
    done = api.post(f"/api/v1/files/{upload['file']['id']}/complete", token=alice, json_body={"parts": parts})
    assert (done.status_code, done.json()["data"]["status"]) == (200, "ready"), done.body
    link = api.get(f"/api/v1/files/{upload['file']['id']}/download", token=alice).json()["data"]
    assert fetch(link["url"])[0] == BIG


def test_an_interrupted_upload_resumes_from_the_parts_the_bucket_holds(api: Api) -> None:
    alice = user(api, "alice")
    upload = start_parts(api, alice)
    file_id = upload["file"]["id"]
    first = put_part(upload["parts"][0]["url"], chunk(1))
    # ...the browser closes; later it asks what is there and for fresh URLs for the rest.
    listed = api.get(f"/api/v1/files/{file_id}/parts", token=alice).json()["data"]
    assert [(p["partNumber"], p["size"]) for p in listed["uploaded"]] == [(1, PART)]
    assert [p["partNumber"] for p in listed["missing"]] == [2]
    second = put_part(listed["missing"][0]["url"], chunk(2))
    parts = [{"partNumber": 1, "etag": listed["uploaded"][0]["etag"]}, {"partNumber": 2, "etag": second}]
    assert listed["uploaded"][0]["etag"] == first
    done = api.post(f"/api/v1/files/{file_id}/complete", token=alice, json_body={"parts": parts})
    assert done.json()["data"]["status"] == "ready"


@pytest.mark.parametrize(
    ("parts", "error"),
    [
        ([{"partNumber": 1, "etag": '"0000"'}, {"partNumber": 2, "etag": "SECOND"}], "parts_invalid"),
        ([{"partNumber": 1, "etag": "FIRST"}], "parts_incomplete"),
        ([{"partNumber": 2, "etag": "SECOND"}, {"partNumber": 1, "etag": "FIRST"}], "parts_incomplete"),
    ],
    ids=["wrong-etag", "missing-part", "out-of-order"],
)
def test_a_bad_completion_is_refused_and_nothing_is_ready(api: Api, parts: list[dict[str, Any]], error: str) -> None:
    alice = user(api, "alice")
    upload = start_parts(api, alice)
    etags = {
        "FIRST": put_part(upload["parts"][0]["url"], chunk(1)),
        "SECOND": put_part(upload["parts"][1]["url"], chunk(2)),
    }
    for part in parts:
        part["etag"] = etags.get(part["etag"], part["etag"])
    refused = api.post(f"/api/v1/files/{upload['file']['id']}/complete", token=alice, json_body={"parts": parts})
    assert (refused.status_code, refused.json()["error"]) == (422, error)
    assert api.get(f"/api/v1/files/{upload['file']['id']}", token=alice).json()["data"]["status"] == "pending"
    assert not [key for key in bucket_keys() if key.endswith("/big.bin")]  # no object was made


def test_deleting_a_pending_multipart_upload_aborts_it(api: Api) -> None:
    alice = user(api, "alice")
    upload = start_parts(api, alice)
    put_part(upload["parts"][0]["url"], chunk(1))
    assert len(s3().list_multipart_uploads(Bucket=FILES_BUCKET).get("Uploads", [])) == 1
    assert api.delete(f"/api/v1/files/{upload['file']['id']}", token=alice).status_code == 200
    assert s3().list_multipart_uploads(Bucket=FILES_BUCKET).get("Uploads", []) == []
    with pytest.raises(urllib.error.HTTPError) as late:
        put_part(upload["parts"][1]["url"], chunk(2))  # its part URLs died with it
    assert late.value.code in (404, 500)  # S3: 404 NoSuchUpload; the test server answers 500
    assert not [key for key in bucket_keys() if key.endswith("/big.bin")]
    assert stored_count() == 0  # no tombstone needed: nothing can land any more


def test_make_devs_bucket_aborts_incomplete_uploads_after_the_configured_days(configure: Any) -> None:
    from multidb.files import storage

    configure(APP_ENV="LOCAL", FILES_BUCKET="lifecycle-check", FILES_MULTIPART_ABORT_DAYS=3)
    storage._local_bucket_ready = False
    storage.get_s3.cache_clear()
    try:
        runtime.run(storage.ensure_local_bucket())
        rules = s3().get_bucket_lifecycle_configuration(Bucket="lifecycle-check")["Rules"]
    finally:
        storage._local_bucket_ready = False
        storage.get_s3.cache_clear()
    assert rules[0]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 3}
