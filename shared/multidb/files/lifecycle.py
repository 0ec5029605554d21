"""A file's life in MongoDB and the bucket: the repository of file documents, the per-user
quota that admits an upload (by a running total of the user's bytes), deletion that
outlives a still-valid upload URL, and the sweep.

A presigned PUT URL cannot be revoked. So a single-PUT file deleted while its upload URL
still works stays as a hidden tombstone until the URL has expired, and the sweep (a beat
schedule of the app's own) then deletes whatever a late PUT put in the bucket. A multipart
upload is different: aborting or completing it ends its part URLs at once. The sweep also
removes uploads never completed within `FILES_PENDING_MAX_AGE`.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from .. import logs
from ..clock import as_utc
from ..document_repository import DocumentRepository, equals, where
from ..errors import DocumentStoreUnavailable, TooManyRequests
from ..keyspace import Keys
from ..mongo import init_documents
from ..settings import Environment, get_settings
from . import storage

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from .documents import StoredFile

log = logs.get_logger("files")

quota_key = Keys("files:quota")  # (owner id): held while an upload is counted against the quota


class TooManyPendingUploads(TooManyRequests, error="too_many_pending_uploads"):
    """Pending uploads of one user (`FILES_MAX_PENDING`)."""


class StorageQuotaExceeded(TooManyRequests, error="storage_quota_exceeded"):
    """Bytes one user stores (`FILES_QUOTA_BYTES`)."""


@asynccontextmanager
async def repository() -> AsyncIterator[DocumentRepository["StoredFile"]]:
    """The file documents, bound to MongoDB; an unreachable MongoDB answers 503."""
    from pymongo.errors import ConnectionFailure

    from .documents import StoredFile

    try:
        # Index builds are a deploy step (infra.deploy.initdb --mongo-indexes); `make dev` builds them here.
        await init_documents(StoredFile, build_indexes=get_settings().app_env is Environment.LOCAL)
        yield DocumentRepository(StoredFile)
    except ConnectionFailure as exc:
        log.error("MongoDB unavailable: %s", type(exc).__name__)
        raise DocumentStoreUnavailable() from exc


USED = "file_bytes"  # a `Counter` per owner ("file_bytes:<owner id>"): the bytes their file documents declare


@asynccontextmanager
async def owner_lock(redis: "Redis", owner_id: str) -> AsyncIterator[None]:
    """Hold the owner's files lock: what counts or changes their running total runs alone."""
    async with redis.lock(quota_key(owner_id), timeout=30, blocking_timeout=10):
        yield


async def _add_used(owner_id: str, amount: int) -> None:
    from ..document_repository import COUNTERS
    from ..mongo import database

    await database()[COUNTERS].update_one({"_id": f"{USED}:{owner_id}"}, {"$inc": {"value": amount}}, upsert=True)


async def recount(files: DocumentRepository["StoredFile"], owner_id: str) -> int:
    """Set the owner's running total to the bytes of their documents (pending, ready and
    tombstones alike: each counts from its creation to its deletion). O(owner's files): the
    repair, called under `owner_lock` (a deletion's decrement waits for it)."""
    from ..document_repository import COUNTERS
    from ..mongo import database

    totals = await files.model.get_pymongo_collection().aggregate(
        [{"$match": equals("owner_id", owner_id)}, {"$group": {"_id": None, "bytes": {"$sum": "$size"}}}]
    )
    rows: list[dict[str, int]] = await totals.to_list()
    used = rows[0]["bytes"] if rows else 0
    await database()[COUNTERS].update_one({"_id": f"{USED}:{owner_id}"}, {"$set": {"value": used}}, upsert=True)
    return used


async def used_bytes(files: DocumentRepository["StoredFile"], owner_id: str) -> int:
    """The owner's running total: one read by id (counted from the documents the first time)."""
    from ..document_repository import COUNTERS
    from ..mongo import database

    found = await database()[COUNTERS].find_one({"_id": f"{USED}:{owner_id}"})
    return await recount(files, owner_id) if found is None else int(found["value"])


@asynccontextmanager
async def quota(
    redis: "Redis", files: DocumentRepository["StoredFile"], owner_id: str, size: int
) -> AsyncIterator[None]:
    """Admit one more upload of `size` bytes for the owner, or 429; the block stores it.

    Checked and stored under the owner's lock, so concurrent uploads cannot all pass a check
    made before any of them was stored. The bytes are the owner's running total (one read,
    one `$inc`), not a sum over their files. It errs high, never low: it grows before the
    document is stored and shrinks after one is deleted, so a crash in between leaves it
    above the documents' sum; and a tombstone counts until the sweep deletes it, not only
    while its upload URL works. So before refusing, the owner's expired tombstones and
    abandoned uploads are swept and the total recounted (`recount`): a refusal is exact.
    """
    from .documents import FileStatus

    settings = get_settings()
    # A file deleted while its upload URL works can still be PUT into the bucket: until the
    # URL expires (and the sweep deletes what came), its tombstone counts like a pending upload.
    now = datetime.now(UTC)
    open_tombstone = where(
        equals("status", FileStatus.DELETED.value),
        {
            "$or": [
                {"upload_expires_at": {"$gt": now}},
                {"upload_expires_at": None, "created_at": {"$gt": now - timedelta(seconds=settings.files_url_ttl)}},
            ]
        },
    )
    async with owner_lock(redis, owner_id):
        pending_or_open = {"$or": [equals("status", FileStatus.PENDING.value), open_tombstone]}
        pending = await files.count(where(equals("owner_id", owner_id), pending_or_open))
        if pending >= settings.files_max_pending:
            raise TooManyPendingUploads(
                f"at most {settings.files_max_pending} uploads may be pending; complete or delete one",
                retry_after=settings.files_url_ttl,
            )
        used = await used_bytes(files, owner_id)
        if used + size > settings.files_quota_bytes:
            await _sweep(files, where(equals("owner_id", owner_id), _stale()))
            used = await recount(files, owner_id)
        if used + size > settings.files_quota_bytes:
            raise StorageQuotaExceeded(
                f"this upload would pass your quota of {settings.files_quota_bytes} bytes; delete files first",
                retry_after=settings.files_url_ttl,
            )
        # Counted before the document is stored: a crash, or a failure of the block, leaves
        # the total high (the next refusal recounts), never low.
        await _add_used(owner_id, size)
        yield


def upload_window_open(doc: "StoredFile") -> bool:
    """Whether the file's single-PUT upload URL may still be used."""
    if doc.upload_id is not None:
        return False  # part URLs end with the upload itself
    expires = doc.upload_expires_at or doc.created_at + timedelta(seconds=get_settings().files_url_ttl)
    return as_utc(expires) > datetime.now(UTC)


async def remove(redis: "Redis", files: DocumentRepository["StoredFile"], doc: "StoredFile") -> None:
    """The upload or object first, then the metadata, which stays as a tombstone while a
    single-PUT upload URL works (and counts in the owner's total until the sweep)."""
    from .documents import FileStatus

    if doc.upload_id is not None and doc.status is FileStatus.PENDING:
        await storage.abort_multipart(doc.key, doc.upload_id)
    await storage.delete_object(doc.key)
    if upload_window_open(doc):
        await files.update(doc, {"status": FileStatus.DELETED, "updated_at": datetime.now(UTC)})
    else:
        async with owner_lock(redis, doc.owner_id):
            await _drop(files, doc)


async def _drop(files: DocumentRepository["StoredFile"], doc: "StoredFile") -> None:
    """Delete a document, then take its bytes off the owner's total (a crash in between
    leaves the total high). Under `owner_lock`: a recount never sees one without the other."""
    await files.delete(doc)
    await _add_used(doc.owner_id, -doc.size)


def _stale() -> dict[str, object]:
    """Tombstones, and uploads never completed within FILES_PENDING_MAX_AGE."""
    from .documents import FileStatus

    abandoned = datetime.now(UTC) - timedelta(seconds=get_settings().files_pending_max_age)
    return {
        "$or": [
            equals("status", FileStatus.DELETED.value),
            where(equals("status", FileStatus.PENDING.value), {"created_at": {"$lt": abandoned}}),
        ]
    }


async def _sweep(
    files: DocumentRepository["StoredFile"], stale: dict[str, object], redis: "Redis | None" = None
) -> int:
    """Delete the stale documents whose upload URL no longer works, object (or multipart
    upload) first; each under its owner's lock, taken here when `redis` is given (else the
    caller holds it). Returns how many."""
    from .documents import FileStatus

    swept = 0
    for doc in await files.get_all(stale):
        if doc.status is FileStatus.DELETED and upload_window_open(doc):
            continue  # a PUT may still land: next sweep
        if doc.upload_id is not None and doc.status is FileStatus.PENDING:
            await storage.abort_multipart(doc.key, doc.upload_id)
        await storage.delete_object(doc.key)
        if redis is None:
            await _drop(files, doc)
        else:
            async with owner_lock(redis, doc.owner_id):
                await _drop(files, doc)
        swept += 1
    return swept


async def sweep() -> int:
    """Delete tombstones whose upload URL expired and uploads never completed, object (or
    multipart upload) first, each taken off its owner's total; returns how many."""
    from ..redis import get_redis

    async with repository() as files:
        swept = await _sweep(files, _stale(), get_redis())
    if swept:
        log.info("swept stale uploads", extra={"fields": {"count": swept}})
    return swept
