"""File rules: who sees which file, when an upload counts, and the order of every change.

Objects move between the client and the bucket through presigned URLs; the function only
stores metadata (MongoDB, through the document repository) and checks the bucket. A file
is `pending` until its owner completes the upload and the bucket holds an object of the
declared size; only then can it be downloaded. Up to FILES_MAX_SINGLE_BYTES a file goes up
in one PUT; in parts (`partSize`) it may be as large as FILES_MAX_BYTES, each part a PUT of
its own that can be retried, listed and resumed. Beanie and boto3 load on the first call.
"""

import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from multidb import audit, logs
from multidb.api.responses import Page
from multidb.authz import Principal
from multidb.clock import as_utc
from multidb.document_repository import DocumentRepository, contains, equals, one_of, where
from multidb.errors import Conflict, InvalidInput, NotFound
from multidb.files import lifecycle, storage
from multidb.settings import get_settings

from .schemas import (
    PART_URLS,
    DownloadPublic,
    FilePublic,
    PartsPublic,
    PartUrl,
    UploadComplete,
    UploadCreate,
    UploadedPart,
    UploadPublic,
)

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from multidb.files.documents import StoredFile

log = logs.get_logger("files")


class FileNotFound(NotFound, error="file_not_found", message="file not found"):
    """No such file, another user's, or a deleted one."""


class FileTooLarge(InvalidInput, error="file_too_large"):
    """`size` above `FILES_MAX_BYTES`."""


class FileTooLargeForOnePut(InvalidInput, error="file_too_large_for_one_put"):
    """`size` above `FILES_MAX_SINGLE_BYTES` (5 GiB) without a `partSize`."""


class TooManyParts(
    InvalidInput, error="too_many_parts", message=f"at most {storage.MAX_PARTS} parts: choose a larger partSize"
):
    """`size` / `partSize` above 10,000 parts."""


class PartsIncomplete(InvalidInput, error="parts_incomplete"):
    """Completing a multipart upload without every part, in order, with its ETag."""


class PartsInvalid(InvalidInput, error="parts_invalid"):
    """The bucket refused the parts named (a wrong ETag, a part too small or missing)."""


class PartsNotExpected(
    InvalidInput, error="parts_not_expected", message="this file was uploaded in one PUT: complete it without parts"
):
    """Completing a one-PUT upload with a `parts` list."""


class UploadSizeMismatch(InvalidInput, error="upload_size_mismatch"):
    """The bucket holds another size than declared (the object is deleted)."""


class UploadMissing(Conflict, error="upload_missing", message="nothing has been uploaded for this file yet"):
    """Completing an upload before its bytes arrived."""


class UploadIncomplete(Conflict, error="upload_incomplete", message="the file's upload has not been completed"):
    """Downloading a file that is still pending."""


class NotMultipart(Conflict, error="not_multipart", message="this file is not uploaded in parts"):
    """Listing the parts of a file uploaded in one PUT."""


class UploadAlreadyComplete(Conflict, error="upload_complete", message="the upload has been completed"):
    """Listing the parts of an upload that was already completed."""


VISIBLE = ("pending", "ready")  # a deleted file's tombstone is nobody's business
_REFUSED_PARTS = {"InvalidPart", "InvalidPartOrder", "EntityTooSmall", "NoSuchUpload"}


def public(doc: "StoredFile") -> FilePublic:
    return FilePublic(
        id=str(doc.id),
        name=doc.name,
        content_type=doc.content_type,
        size=doc.size,
        part_size=doc.part_size,
        status="ready" if doc.status.value == "ready" else "pending",
        owner_id=doc.owner_id,
        created_at=as_utc(doc.created_at),
        updated_at=as_utc(doc.updated_at),
    )


async def _owned(repo: DocumentRepository["StoredFile"], principal: Principal, file_id: str) -> "StoredFile":
    """The file, if the caller owns it or is an admin; anyone else learns nothing (404)."""
    from bson import ObjectId

    doc = await repo.get(ObjectId(file_id))
    if doc is None or doc.status.value not in VISIBLE or (doc.owner_id != principal.user_id and not principal.admin):
        raise FileNotFound()
    return doc


def _checked_size(body: UploadCreate) -> None:
    settings = get_settings()
    if body.size > settings.files_max_bytes:
        raise FileTooLarge(f"a file may be at most {settings.files_max_bytes} bytes")
    if body.part_size is None and body.size > settings.files_max_single_bytes:
        raise FileTooLargeForOnePut(
            f"above {settings.files_max_single_bytes} bytes a file goes up in parts: give partSize"
        )
    if body.part_size is not None and -(-body.size // body.part_size) > storage.MAX_PARTS:
        raise TooManyParts()


def _part_urls(doc: "StoredFile", numbers: list[int]) -> list[PartUrl]:
    assert doc.upload_id is not None
    return [
        PartUrl(
            part_number=n, url=storage.part_url(doc.key, doc.upload_id, n, doc.part_length(n)), size=doc.part_length(n)
        )
        for n in numbers
    ]


def object_key(owner_id: str, name: str) -> str:
    """Where an upload is stored; its name was held to S3's key limit (`schemas.MAX_NAME_BYTES`)."""
    return f"{owner_id}/{uuid.uuid4().hex}/{name}"


async def create_upload(redis: "Redis", principal: Principal, body: UploadCreate) -> UploadPublic:
    settings = get_settings()
    _checked_size(body)
    key = object_key(principal.user_id, body.name)
    expires = datetime.now(UTC) + timedelta(seconds=settings.files_url_ttl)
    await storage.ensure_local_bucket()
    async with lifecycle.repository() as repo, lifecycle.quota(redis, repo, principal.user_id, body.size):
        upload_id = None if body.part_size is None else await storage.create_multipart(key, body.content_type)
        doc = repo.model(
            owner_id=principal.user_id,
            name=body.name,
            content_type=body.content_type,
            size=body.size,
            key=key,
            upload_expires_at=expires,
            upload_id=upload_id,
            part_size=body.part_size,
        )
        try:
            await repo.create(doc)
        except BaseException:
            if upload_id is not None:
                await storage.abort_multipart(key, upload_id)
            raise
    if upload_id is None:
        url = storage.upload_url(key, body.content_type, body.size)  # computed locally: no request
        return UploadPublic(
            file=public(doc),
            upload_url=url,
            headers=storage.upload_headers(body.content_type),
            expires_in=settings.files_url_ttl,
        )
    return UploadPublic(
        file=public(doc),
        upload_url=None,
        headers={},
        parts=_part_urls(doc, list(range(1, min(doc.part_count, PART_URLS) + 1))),
        expires_in=settings.files_url_ttl,
    )


async def parts(principal: Principal, file_id: str, limit: int) -> PartsPublic:
    """The parts uploaded so far, and fresh URLs for the missing ones: how a client resumes."""
    async with lifecycle.repository() as repo:
        doc = await _owned(repo, principal, file_id)
    if doc.upload_id is None:
        raise NotMultipart()
    if doc.status.value != "pending":
        raise UploadAlreadyComplete()
    held = await storage.uploaded_parts(doc.key, doc.upload_id)
    done = {int(p["PartNumber"]) for p in held}
    missing = [n for n in range(1, doc.part_count + 1) if n not in done][:limit]
    return PartsPublic(
        uploaded=[
            UploadedPart(part_number=int(p["PartNumber"]), etag=str(p["ETag"]), size=int(p["Size"])) for p in held
        ],
        missing=_part_urls(doc, missing),
        expires_in=get_settings().files_url_ttl,
    )


async def _join_parts(doc: "StoredFile", body: UploadComplete | None) -> None:
    """Complete a multipart upload from the parts the client names (every one, in order)."""
    from botocore.exceptions import ClientError

    assert doc.upload_id is not None
    numbers = [part.part_number for part in body.parts] if body else []
    if numbers != list(range(1, doc.part_count + 1)):
        raise PartsIncomplete(f"name all {doc.part_count} parts, in order, with their ETags")
    assert body is not None
    try:
        await storage.complete_multipart(doc.key, doc.upload_id, [(p.part_number, p.etag) for p in body.parts])
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in _REFUSED_PARTS:
            raise PartsInvalid(f"the bucket refused the parts ({code})") from exc
        raise


async def complete(principal: Principal, file_id: str, body: UploadComplete | None) -> FilePublic:
    """Mark the upload done once the bucket holds the object with the declared size."""
    from multidb.files.documents import FileStatus

    async with lifecycle.repository() as repo:
        doc = await _owned(repo, principal, file_id)
        if doc.status is FileStatus.READY:
            return public(doc)  # completing twice is harmless
        if doc.upload_id is not None:
            await _join_parts(doc, body)
        elif body is not None:
            raise PartsNotExpected()
        size = await storage.object_size(doc.key)
        if size is None:
            raise UploadMissing()
        if size != doc.size:
            await storage.delete_object(doc.key)  # not what was declared: upload it again
            declared = f"the upload holds {size} bytes, not the {doc.size} declared"
            raise UploadSizeMismatch(declared)
        await repo.update(doc, {"status": FileStatus.READY, "updated_at": datetime.now(UTC)})
    upload = audit.created({"name": doc.name, "size": doc.size, "contentType": doc.content_type})
    await audit.record("file.upload", user_id=principal.user_id, target=("file", file_id), details=upload)
    return public(doc)


async def get(principal: Principal, file_id: str) -> FilePublic:
    async with lifecycle.repository() as repo:
        return public(await _owned(repo, principal, file_id))


async def download(principal: Principal, file_id: str) -> DownloadPublic:
    from multidb.files.documents import FileStatus

    async with lifecycle.repository() as repo:
        doc = await _owned(repo, principal, file_id)
    if doc.status is not FileStatus.READY:
        raise UploadIncomplete()
    url = storage.download_url(doc.key, doc.name, doc.content_type)
    await audit.record("file.download", user_id=principal.user_id, target=("file", file_id), details={"name": doc.name})
    return DownloadPublic(url=url, expires_in=get_settings().files_url_ttl)


async def delete(redis: "Redis", principal: Principal, file_id: str) -> None:
    """The object (or multipart upload) first, then the metadata: a failure in between leaves
    a file that can be deleted again."""
    async with lifecycle.repository() as repo:
        doc = await _owned(repo, principal, file_id)
        await lifecycle.remove(redis, repo, doc)
    gone = audit.deleted({"name": doc.name, "size": doc.size, "contentType": doc.content_type})
    await audit.record("file.delete", user_id=principal.user_id, target=("file", file_id), details=gone)


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CURSOR = r"^[0-9]{1,14}-[0-9a-f]{24}$"  # a page's last file: its creation time (ms, year 5138 at most) and id


def _cursor(doc: "StoredFile") -> str:
    return f"{(as_utc(doc.created_at) - EPOCH) // timedelta(milliseconds=1)}-{doc.id}"


def _after(cursor: str) -> dict[str, object]:
    """The files after the cursor's in the list's order (creation time, then id, descending)."""
    from bson import ObjectId

    stamp, file_id = cursor.split("-")
    at, last = EPOCH + timedelta(milliseconds=int(stamp)), ObjectId(file_id)
    return {"$or": [{"created_at": {"$lt": at}}, {"created_at": at, "_id": {"$lt": last}}]}


async def page(
    principal: Principal, number: int, size: int, keyword: str | None, status: str | None, cursor: str | None = None
) -> Page[FilePublic]:
    """The caller's files (an admin's: everyone's), newest first: by page number, or after
    `cursor` (the `nextCursor` of the page before), which costs the same however deep it is."""
    condition = where(
        equals("status", status) if status else one_of("status", VISIBLE),
        None if principal.admin else equals("owner_id", principal.user_id),
        contains("name", keyword) if keyword else None,
    )
    after = _after(cursor) if cursor else None
    async with lifecycle.repository() as repo:
        docs, total = await repo.paginate(number, size, condition, sort=("-created_at",), after=after)
    following = _cursor(docs[-1]) if len(docs) == size else None
    return Page[FilePublic].counted([public(doc) for doc in docs], total, number, size, following)
