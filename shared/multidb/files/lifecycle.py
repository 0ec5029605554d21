"""A file's life in MongoDB and the bucket: the repository of file documents, the per-user
quota that admits an upload, deletion that outlives a still-valid upload URL, and the sweep.

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
from ..document_repository import DocumentRepository, equals, one_of, where
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


@asynccontextmanager
async def quota(
    redis: "Redis", files: DocumentRepository["StoredFile"], owner_id: str, size: int
) -> AsyncIterator[None]:
    """Admit one more upload of `size` bytes for the owner, or 429; the block stores it.

    Checked and stored under a per-user lock, so concurrent uploads cannot all pass a check
    made before any of them was stored.
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
    async with redis.lock(quota_key(owner_id), timeout=30, blocking_timeout=10):
        pending_or_open = {"$or": [equals("status", FileStatus.PENDING.value), open_tombstone]}
        pending = await files.count(where(equals("owner_id", owner_id), pending_or_open))
        if pending >= settings.files_max_pending:
            raise TooManyPendingUploads(
                f"at most {settings.files_max_pending} uploads may be pending; complete or delete one",
                retry_after=settings.files_url_ttl,
            )
        stored = where(
            equals("owner_id", owner_id),
            {"$or": [one_of("status", [FileStatus.PENDING.value, FileStatus.READY.value]), open_tombstone]},
        )
        totals = await files.model.get_pymongo_collection().aggregate(
            [{"$match": stored}, {"$group": {"_id": None, "bytes": {"$sum": "$size"}}}]
        )
        rows: list[dict[str, int]] = await totals.to_list()
        used = rows[0]["bytes"] if rows else 0
        if used + size > settings.files_quota_bytes:
            raise StorageQuotaExceeded(
                f"this upload would pass your quota of {settings.files_quota_bytes} bytes; delete files first",
                retry_after=settings.files_url_ttl,
            )
        yield


def upload_window_open(doc: "StoredFile") -> bool:
    """Whether the file's single-PUT upload URL may still be used."""
    if doc.upload_id is not None:
        return False  # part URLs end with the upload itself
    expires = doc.upload_expires_at or doc.created_at + timedelta(seconds=get_settings().files_url_ttl)
    return as_utc(expires) > datetime.now(UTC)


async def remove(files: DocumentRepository["StoredFile"], doc: "StoredFile") -> None:
    """The upload or object first, then the metadata, which stays as a tombstone while a
    single-PUT upload URL works."""
    from .documents import FileStatus

    if doc.upload_id is not None and doc.status is FileStatus.PENDING:
        await storage.abort_multipart(doc.key, doc.upload_id)
    await storage.delete_object(doc.key)
    if upload_window_open(doc):
        await files.update(doc, {"status": FileStatus.DELETED, "updated_at": datetime.now(UTC)})
    else:
        await files.delete(doc)


async def sweep() -> int:
    """Delete tombstones whose upload URL expired and uploads never completed, object (or
    multipart upload) first; returns how many."""
    from .documents import FileStatus

    settings = get_settings()
    abandoned = datetime.now(UTC) - timedelta(seconds=settings.files_pending_max_age)
    swept = 0
    async with repository() as files:
        stale = {
            "$or": [
                equals("status", FileStatus.DELETED.value),
                where(equals("status", FileStatus.PENDING.value), {"created_at": {"$lt": abandoned}}),
            ]
        }
        for doc in await files.get_all(stale):
            if doc.status is FileStatus.DELETED and upload_window_open(doc):
                continue  # a PUT may still land: next sweep
            if doc.upload_id is not None and doc.status is FileStatus.PENDING:
                await storage.abort_multipart(doc.key, doc.upload_id)
            await storage.delete_object(doc.key)
            await files.delete(doc)
            swept += 1
    if swept:
        log.info("swept stale uploads", extra={"fields": {"count": swept}})
    return swept
