"""The upload quota's running total per owner (`multidb.files.lifecycle`): admitting an upload
reads one counter instead of summing the owner's files; it stays within the quota under
concurrent uploads, a deletion frees its bytes, it equals the documents' sum after any
sequence of uploads, completions, deletions and sweeps, and a total left too high (a crash
between its update and the document's) is recounted before a refusal."""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bson import ObjectId

from multidb import mongo, runtime
from tests.files.test_files import CONTENT, FILE_CODES, put, start_upload, uploaded
from tests.helpers import Api, create_user

pytestmark = pytest.mark.first_pass_only("MongoDB and S3 are the same servers in both passes")


@pytest.fixture(autouse=True)
def no_files(empty_files: None) -> None:
    """Every test starts with an empty files collection, no running totals and an empty bucket."""


def total(owner_id: str) -> int | None:
    """The owner's running total as stored (None: not counted yet)."""

    async def read() -> Any:
        return await mongo.database()["counters"].find_one({"_id": f"file_bytes:{owner_id}"})

    found = runtime.run(read())
    return None if found is None else int(found["value"])


def summed(owner_id: str) -> int:
    """The bytes of the owner's file documents, summed (what the total stands for)."""
    from multidb.files.documents import StoredFile

    async def add() -> int:
        docs = await StoredFile.find({"owner_id": owner_id}).to_list()
        return sum(doc.size for doc in docs)

    return runtime.run(add())


def owner(api: Api, name: str) -> tuple[str, str]:
    """A user who may upload: (their id, an access token)."""
    user_id = create_user(name, f"{name}-password", codes=FILE_CODES)
    return user_id, api.login(name, f"{name}-password").access


def _backdate(field: str, **match: Any) -> None:
    """Set `field` of the matching files two days back (an upload URL expired, an upload abandoned)."""
    from multidb.files.documents import StoredFile

    async def backdate() -> None:
        past = datetime.now(UTC) - timedelta(days=2)
        await StoredFile.get_pymongo_collection().update_many(match, {"$set": {field: past}})

    runtime.run(backdate())


def test_concurrent_uploads_at_the_quota_edge_stay_within_it(configure: Any) -> None:
    from files_fn import service
    from files_fn.schemas import UploadCreate
    from multidb.authz import Principal
    from multidb.errors import TooManyRequests
    from multidb.redis import get_redis
    from multidb.security.tokens import Claims, TokenType

    configure(FILES_QUOTA_BYTES=35, FILES_MAX_PENDING=100)
    owner = Principal("u-edge", "U", False, Claims("u-edge", "j", "f", TokenType.ACCESS, 0, 0))

    async def burst() -> list[str]:
        async def one(n: int) -> str:
            try:
                await service.create_upload(get_redis(), owner, UploadCreate(name=f"f{n}.txt", size=10))
            except TooManyRequests as exc:
                return exc.error
            return "201"

        return list(await asyncio.gather(*(one(n) for n in range(10))))

    assert sorted(runtime.run(burst())) == ["201"] * 3 + ["storage_quota_exceeded"] * 7
    assert total("u-edge") == summed("u-edge") == 30


def test_deleting_a_file_frees_its_bytes_at_once(api: Api, configure: Any) -> None:
    configure(FILES_QUOTA_BYTES=len(CONTENT) * 2)
    owner_id, alice = owner(api, "alice")
    first, second = uploaded(api, alice, "one.txt"), uploaded(api, alice, "two.txt")
    assert total(owner_id) == 2 * len(CONTENT)
    full = api.post("/api/v1/files/uploads", token=alice, json_body={"name": "three.txt", "size": 1})
    assert (full.status_code, full.json()["error"]) == (429, "storage_quota_exceeded")
    _backdate("upload_expires_at", _id=ObjectId(first))  # its upload URL no longer works: no tombstone
    assert api.delete(f"/api/v1/files/{first}", token=alice).status_code == 200
    assert total(owner_id) == len(CONTENT)  # taken off by the deletion, not by a later recount
    assert api.post("/api/v1/files/uploads", token=alice, json_body={"name": "three.txt", "size": 1}).status_code == 201
    assert total(owner_id) == summed(owner_id) == len(CONTENT) + 1
    assert api.get(f"/api/v1/files/{second}", token=alice).status_code == 200


def test_the_total_equals_the_documents_sum_after_a_mixed_sequence(api: Api, configure: Any) -> None:
    from multidb.files import lifecycle

    configure(FILES_MAX_PENDING=10)
    (owner_id, alice), (_, bob) = owner(api, "alice"), owner(api, "bob")
    ready = [uploaded(api, alice, f"ready-{n}.txt") for n in range(3)]
    pending = [start_upload(api, alice, f"pending-{n}.txt", size=100 + n)["file"]["id"] for n in range(3)]
    uploaded(api, bob, "bobs.txt")  # another owner's bytes are not alice's
    steps = [total(owner_id)]
    assert api.delete(f"/api/v1/files/{ready[0]}", token=alice).status_code == 200  # a tombstone: still counted
    steps.append(total(owner_id))
    assert api.delete(f"/api/v1/files/{pending[0]}", token=alice).status_code == 200
    _backdate("upload_expires_at", status="deleted")
    assert runtime.run(lifecycle.sweep()) == 2  # both tombstones go, and their bytes with them
    steps.append(total(owner_id))
    upload = start_upload(api, alice, "late.txt")
    assert put(upload["uploadUrl"], CONTENT, upload["headers"]) == 200
    assert api.post(f"/api/v1/files/{upload['file']['id']}/complete", token=alice).status_code == 200
    steps.append(total(owner_id))
    _backdate("created_at", status="pending")  # never completed: abandoned
    assert runtime.run(lifecycle.sweep()) == 2
    steps.append(total(owner_id))
    assert steps == [
        3 * len(CONTENT) + 303,
        3 * len(CONTENT) + 303,
        2 * len(CONTENT) + 203,
        3 * len(CONTENT) + 203,
        3 * len(CONTENT),
    ]
    assert total(owner_id) == summed(owner_id)


def test_a_total_left_too_high_is_recounted_before_a_refusal(api: Api, configure: Any) -> None:
    """A crash after the total grew and before the document was stored leaves it high: the
    refusal it would cause recounts first, and the upload passes."""
    configure(FILES_QUOTA_BYTES=len(CONTENT) * 2)
    owner_id, alice = owner(api, "alice")
    uploaded(api, alice)

    async def crashed() -> None:  # what the lost upload left: its bytes, and no document
        await mongo.database()["counters"].update_one({"_id": f"file_bytes:{owner_id}"}, {"$inc": {"value": 10**9}})

    runtime.run(crashed())
    assert api.post("/api/v1/files/uploads", token=alice, json_body={"name": "b.txt", "size": 5}).status_code == 201
    assert total(owner_id) == summed(owner_id) == len(CONTENT) + 5


def test_an_owner_without_a_total_is_counted_from_their_documents(api: Api) -> None:
    """Files stored before the totals existed: the first upload counts them once."""
    owner_id, alice = owner(api, "alice")
    uploaded(api, alice)
    runtime.run(mongo.database()["counters"].delete_one({"_id": f"file_bytes:{owner_id}"}))
    start_upload(api, alice, "more.txt", size=7)
    assert total(owner_id) == summed(owner_id) == len(CONTENT) + 7
