"""What the files function and the worker share about files: the bound document class, the
per-user quota, deletion that outlives a still-valid upload URL, and the sweep.

A presigned URL cannot be revoked. So a file deleted while its upload URL still works stays
as a hidden tombstone until the URL has expired, and the sweep (a beat schedule of the
app's own) then deletes whatever a late PUT put in the bucket; it also removes uploads
never completed within `FILES_PENDING_MAX_AGE`.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from . import logs, storage
from .errors import ServiceUnavailable, TooManyRequests
from .mongo import init_documents
from .settings import Environment, get_settings

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from .documents import StoredFile

log = logs.get_logger("files")


def aware(moment: datetime) -> datetime:
    """MongoDB keeps no time zone: every stored time is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@asynccontextmanager
async def stored_files() -> AsyncIterator[type["StoredFile"]]:
    """The file document class, bound to MongoDB; an unreachable MongoDB answers 503."""
    from pymongo.errors import ConnectionFailure

    from .documents import StoredFile

    try:
        # Index builds are a deploy step (infra.initdb --mongo-indexes); `make dev` builds them here.
        await init_documents(StoredFile, build_indexes=get_settings().app_env is Environment.LOCAL)
        yield StoredFile
    except ConnectionFailure as exc:
        log.error("MongoDB unavailable: %s", type(exc).__name__)
        raise ServiceUnavailable(error="document_store_unavailable") from exc


@asynccontextmanager
async def quota(redis: "Redis", model: type["StoredFile"], owner_id: str, size: int) -> AsyncIterator[None]:
    """Admit one more upload of `size` bytes for the owner, or 429; the block stores it.

    Checked and stored under a per-user lock, so concurrent uploads cannot all pass a check
    made before any of them was stored.
    """
    from .documents import FileStatus

    settings = get_settings()
    async with redis.lock(f"files:quota:{owner_id}", timeout=30, blocking_timeout=10):
        mine = {"owner_id": owner_id, "status": {"$in": [FileStatus.PENDING.value, FileStatus.READY.value]}}
        pending = await model.find({"owner_id": owner_id, "status": FileStatus.PENDING.value}).count()
        if pending >= settings.files_max_pending:
            raise TooManyRequests(
                f"at most {settings.files_max_pending} uploads may be pending; complete or delete one",
                error="too_many_pending_uploads",
                retry_after=settings.files_url_ttl,
            )
        totals = await model.get_pymongo_collection().aggregate(
            [{"$match": mine}, {"$group": {"_id": None, "bytes": {"$sum": "$size"}}}]
        )
        rows: list[dict[str, int]] = await totals.to_list()
        used = rows[0]["bytes"] if rows else 0
        if used + size > settings.files_quota_bytes:
            raise TooManyRequests(
                f"this upload would pass your quota of {settings.files_quota_bytes} bytes; delete files first",
                error="storage_quota_exceeded",
                retry_after=settings.files_url_ttl,
            )
        yield


def upload_window_open(doc: "StoredFile") -> bool:
    """Whether the file's upload URL may still be used."""
    expires = doc.upload_expires_at or doc.created_at + timedelta(seconds=get_settings().files_url_ttl)
    return aware(expires) > datetime.now(UTC)


async def remove(doc: "StoredFile") -> None:
    """The object first, then the metadata, which stays as a tombstone while the upload URL works."""
    from .documents import FileStatus

    await storage.delete_object(doc.key)
    if upload_window_open(doc):
        doc.status = FileStatus.DELETED
        doc.updated_at = datetime.now(UTC)
        await doc.save()
    else:
        await doc.delete()


async def sweep() -> int:
    """Delete tombstones whose upload URL expired and uploads never completed, object first; returns how many."""
    from .documents import FileStatus

    settings = get_settings()
    now = datetime.now(UTC)
    abandoned = now - timedelta(seconds=settings.files_pending_max_age)
    swept = 0
    async with stored_files() as model:
        stale = model.find(
            {
                "$or": [
                    {"status": FileStatus.DELETED.value},
                    {"status": FileStatus.PENDING.value, "created_at": {"$lt": abandoned}},
                ]
            }
        )
        async for doc in stale:
            if doc.status is FileStatus.DELETED and upload_window_open(doc):
                continue  # a PUT may still land: next sweep
            await storage.delete_object(doc.key)
            await doc.delete()
            swept += 1
    if swept:
        log.info("swept stale uploads", extra={"fields": {"count": swept}})
    return swept
