"""The bucket: presigned URLs (computed here, no request made) and the few calls the API makes.

boto3 is imported on first use and its client kept for the container. Its calls block, so
they run in a worker thread. An unreachable or overloaded S3 answers 503, never 500.
"""

from collections.abc import Callable
from functools import lru_cache, partial
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from anyio import to_thread

from .. import logs
from ..errors import ServiceUnavailable
from ..settings import Environment, get_settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
else:
    S3Client = Any

log = logs.get_logger("files")


class ObjectStorageUnavailable(ServiceUnavailable, error="object_storage_unavailable"):
    """S3 or MinIO out of reach or overloaded."""


_OUTAGE_CODES = {"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "NoSuchBucket"}


@lru_cache
def get_s3() -> S3Client:
    import boto3
    from botocore.config import Config

    settings = get_settings()
    endpoint = settings.s3_endpoint_url or None  # empty (as template.yaml declares it) = AWS
    config = Config(
        signature_version="s3v4",
        # MinIO and other S3-compatible servers are addressed by path, AWS by virtual host.
        s3={"addressing_style": "path" if endpoint else "auto"},
        connect_timeout=3,
        read_timeout=10,
        retries={"total_max_attempts": 2, "mode": "standard"},
    )
    return boto3.client("s3", endpoint_url=endpoint, region_name=settings.s3_region or None, config=config)


def warm() -> None:
    """Build the S3 client now (no network: it connects on its first call)."""
    get_s3()


def close() -> None:
    """Close the S3 client's connection pool and forget it (SnapStart's before-snapshot hook)."""
    if get_s3.cache_info().currsize:
        get_s3().close()
    get_s3.cache_clear()


def upload_url(key: str, content_type: str, size: int) -> str:
    """A PUT URL for exactly this object, once: S3 refuses another content type or length, and
    (`If-None-Match: *`, signed) any PUT once the object exists, so a completed file's bytes
    cannot be replaced while the URL is still valid."""
    return _presigned("put_object", key, ContentType=content_type, ContentLength=size, IfNoneMatch="*")


def _presigned(operation: str, key: str, **params: str | int) -> str:
    """A URL for one S3 operation on one object of the files bucket, valid FILES_URL_TTL
    seconds (signed locally: no request)."""
    settings = get_settings()
    return get_s3().generate_presigned_url(
        operation, Params={"Bucket": settings.files_bucket, "Key": key, **params}, ExpiresIn=settings.files_url_ttl
    )


def upload_headers(content_type: str) -> dict[str, str]:
    """The headers a client must send with the PUT (they are part of the signature)."""
    return {"Content-Type": content_type, "If-None-Match": "*"}


def download_url(key: str, name: str, content_type: str) -> str:
    """A GET URL that makes the browser save the object under its original name."""
    disposition = f"attachment; filename*=UTF-8''{quote(name, safe='')}"
    return _presigned("get_object", key, ResponseContentDisposition=disposition, ResponseContentType=content_type)


async def _call(method: Callable[..., Any], **kwargs: Any) -> Any:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return await to_thread.run_sync(partial(method, **kwargs))
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code in _OUTAGE_CODES or status >= 500:
            log.error("object storage unavailable: %s", code or status)
            raise ObjectStorageUnavailable() from exc
        raise
    except BotoCoreError as exc:  # endpoint unreachable, timeouts, no credentials
        log.error("object storage unavailable: %s", type(exc).__name__)
        raise ObjectStorageUnavailable() from exc


_local_bucket_ready = False


async def ensure_local_bucket() -> None:
    """Under `make dev` (LOCAL), create the bucket on first use: the embedded S3 server keeps
    buckets in memory, so every start begins without one. Deployed buckets come from
    template.yaml and are never created here."""
    global _local_bucket_ready
    settings = get_settings()
    if _local_bucket_ready or settings.app_env is not Environment.LOCAL:
        return
    from botocore.exceptions import ClientError

    try:
        await _call(get_s3().head_bucket, Bucket=settings.files_bucket)
    except ClientError:
        await _call(get_s3().create_bucket, Bucket=settings.files_bucket)
        await _call(
            get_s3().put_bucket_lifecycle_configuration,
            Bucket=settings.files_bucket,
            LifecycleConfiguration=abort_incomplete_uploads(settings.files_multipart_abort_days),
        )
    _local_bucket_ready = True


def abort_incomplete_uploads(days: int) -> dict[str, Any]:
    """The bucket's lifecycle: multipart uploads never completed go after `days` (template.yaml
    sets the same rule on the deployed bucket)."""
    return {
        "Rules": [
            {
                "ID": "abort-incomplete-uploads",
                "Status": "Enabled",
                "Filter": {"Prefix": ""},
                "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": days},
            }
        ]
    }


async def object_size(key: str) -> int | None:
    """The stored object's size in bytes, or None when there is no such object."""
    from botocore.exceptions import ClientError

    try:
        head = await _call(get_s3().head_object, Bucket=get_settings().files_bucket, Key=key)
    except ClientError as exc:
        if str(exc.response.get("Error", {}).get("Code", "")) in {"404", "NoSuchKey", "NotFound"}:
            return None
        raise
    return int(head["ContentLength"])


async def delete_object(key: str) -> None:
    """Delete the object (S3 answers the same whether or not it existed)."""
    await _call(get_s3().delete_object, Bucket=get_settings().files_bucket, Key=key)


# ---- multipart uploads: parts of at least 5 MiB (but the last), at most 10,000 of them ----

MIN_PART = 5 * 1024**2
MAX_PART = 5 * 1024**3
MAX_PARTS = 10_000


async def create_multipart(key: str, content_type: str) -> str:
    """Start a multipart upload; returns S3's upload id."""
    response = await _call(
        get_s3().create_multipart_upload, Bucket=get_settings().files_bucket, Key=key, ContentType=content_type
    )
    return str(response["UploadId"])


def part_url(key: str, upload_id: str, number: int, length: int) -> str:
    """A PUT URL for exactly one part of exactly `length` bytes (computed locally: no request)."""
    return _presigned("upload_part", key, UploadId=upload_id, PartNumber=number, ContentLength=length)


async def uploaded_parts(key: str, upload_id: str) -> list[dict[str, Any]]:
    """The parts S3 holds so far: [{PartNumber, ETag, Size}], in order."""
    parts: list[dict[str, Any]] = []
    marker = 0
    while True:
        page = await _call(
            get_s3().list_parts,
            Bucket=get_settings().files_bucket,
            Key=key,
            UploadId=upload_id,
            PartNumberMarker=marker,
        )
        parts.extend(page.get("Parts", []))
        if not page.get("IsTruncated"):
            return parts
        marker = int(page["NextPartNumberMarker"])


async def complete_multipart(key: str, upload_id: str, parts: list[tuple[int, str]]) -> None:
    """Join the parts (number, ETag) into the object; S3 refuses an ETag it did not issue."""
    await _call(
        get_s3().complete_multipart_upload,
        Bucket=get_settings().files_bucket,
        Key=key,
        UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": etag} for n, etag in parts]},
    )


async def abort_multipart(key: str, upload_id: str) -> None:
    """End the upload: S3 drops its parts, and its part URLs stop working."""
    from botocore.exceptions import ClientError

    try:
        await _call(get_s3().abort_multipart_upload, Bucket=get_settings().files_bucket, Key=key, UploadId=upload_id)
    except ClientError as exc:
        if str(exc.response.get("Error", {}).get("Code", "")) != "NoSuchUpload":  # completed or aborted already
            raise
