"""File rules: who sees which file, when an upload counts, and the order of every change.

Objects move between the client and the bucket through presigned URLs; the function only
stores metadata (MongoDB, Beanie) and checks the bucket. A file is `pending` until its
owner completes the upload and the bucket holds an object of the declared size; only
then can it be downloaded. Beanie and boto3 load on the first call, not at cold start.
"""

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from multidb import files, logs, storage
from multidb.authz import Principal
from multidb.errors import Conflict, InvalidInput, NotFound
from multidb.settings import get_settings

from .schemas import DownloadPublic, FilePublic, UploadCreate, UploadPublic

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from multidb.documents import StoredFile

log = logs.get_logger("files")

VISIBLE = ("pending", "ready")  # a deleted file's tombstone is nobody's business


def public(doc: "StoredFile") -> FilePublic:
    return FilePublic(
        id=str(doc.id),
        name=doc.name,
        content_type=doc.content_type,
        size=doc.size,
        status="ready" if doc.status.value == "ready" else "pending",
        owner_id=doc.owner_id,
        created_at=files.aware(doc.created_at),
        updated_at=files.aware(doc.updated_at),
    )


async def _owned(model: type["StoredFile"], principal: Principal, file_id: str) -> "StoredFile":
    """The file, if the caller owns it or is an admin; anyone else learns nothing (404)."""
    from bson import ObjectId

    doc = await model.get(ObjectId(file_id))
    if doc is None or doc.status.value not in VISIBLE or (doc.owner_id != principal.user_id and not principal.admin):
        raise NotFound("file not found", error="file_not_found")
    return doc


async def create_upload(redis: "Redis", principal: Principal, body: UploadCreate) -> UploadPublic:
    settings = get_settings()
    if body.size > settings.files_max_bytes:
        raise InvalidInput(f"a file may be at most {settings.files_max_bytes} bytes", error="file_too_large")
    key = f"{principal.user_id}/{uuid.uuid4().hex}/{body.name}"
    url = storage.upload_url(key, body.content_type, body.size)  # computed locally: no request
    expires = datetime.now(UTC) + timedelta(seconds=settings.files_url_ttl)
    await storage.ensure_local_bucket()
    async with files.stored_files() as model, files.quota(redis, model, principal.user_id, body.size):
        doc = model(
            owner_id=principal.user_id,
            name=body.name,
            content_type=body.content_type,
            size=body.size,
            key=key,
            upload_expires_at=expires,
        )
        await doc.insert()
    return UploadPublic(
        file=public(doc),
        upload_url=url,
        headers=storage.upload_headers(body.content_type),
        expires_in=settings.files_url_ttl,
    )


async def complete(principal: Principal, file_id: str) -> FilePublic:
    """Mark the upload done once the bucket holds the object with the declared size."""
    from multidb.documents import FileStatus

    async with files.stored_files() as model:
        doc = await _owned(model, principal, file_id)
        if doc.status is FileStatus.READY:
            return public(doc)  # completing twice is harmless
        size = await storage.object_size(doc.key)
        if size is None:
            raise Conflict("nothing has been uploaded for this file yet", error="upload_missing")
        if size != doc.size:
            await storage.delete_object(doc.key)  # not what was declared: upload it again
            raise InvalidInput(
                f"the upload holds {size} bytes, not the {doc.size} declared", error="upload_size_mismatch"
            )
        doc.status = FileStatus.READY
        doc.updated_at = datetime.now(UTC)
        await doc.save()
        return public(doc)


async def get(principal: Principal, file_id: str) -> FilePublic:
    async with files.stored_files() as model:
        return public(await _owned(model, principal, file_id))


async def download(principal: Principal, file_id: str) -> DownloadPublic:
    from multidb.documents import FileStatus

    async with files.stored_files() as model:
        doc = await _owned(model, principal, file_id)
    if doc.status is not FileStatus.READY:
        raise Conflict("the file's upload has not been completed", error="upload_incomplete")
    return DownloadPublic(
        url=storage.download_url(doc.key, doc.name, doc.content_type), expires_in=get_settings().files_url_ttl
    )


async def delete(principal: Principal, file_id: str) -> None:
    """The object first, then the metadata: a failure in between leaves a file that can be deleted again."""
    async with files.stored_files() as model:
        await files.remove(await _owned(model, principal, file_id))


async def page(
    principal: Principal, number: int, size: int, keyword: str | None, status: str | None
) -> tuple[list[FilePublic], int]:
    """The caller's files (an admin's: everyone's), newest first."""
    filters: dict[str, Any] = {"status": status or {"$in": list(VISIBLE)}}
    if not principal.admin:
        filters["owner_id"] = principal.user_id
    if keyword:
        filters["name"] = {"$regex": re.escape(keyword), "$options": "i"}
    async with files.stored_files() as model:
        total = await model.find(filters).count()
        docs = await model.find(filters).sort("-created_at", "-_id").skip((number - 1) * size).limit(size).to_list()
    return [public(doc) for doc in docs], total
