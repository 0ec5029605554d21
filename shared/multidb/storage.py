"""The bucket: presigned URLs (computed here, no request made) and the few calls the API makes.

boto3 is imported on first use and its client kept for the container. Its calls block, so
they run in a worker thread. An unreachable or overloaded S3 answers 503, never 500.
"""

from collections.abc import Callable
from functools import lru_cache, partial
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from anyio import to_thread

from . import logs
from .errors import ServiceUnavailable
from .settings import Environment, get_settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
else:
    S3Client = Any

log = logs.get_logger("files")

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


def upload_url(key: str, content_type: str, size: int) -> str:
    """A PUT URL for exactly this object, once: S3 refuses another content type or length, and
    (`If-None-Match: *`, signed) any PUT once the object exists, so a completed file's bytes
    cannot be replaced while the URL is still valid."""
    settings = get_settings()
    return get_s3().generate_presigned_url(
        "put_object",
        Params={
            "Bucket": settings.files_bucket,
            "Key": key,
            "ContentType": content_type,
            "ContentLength": size,
            "IfNoneMatch": "*",
        },
        ExpiresIn=settings.files_url_ttl,
    )


def upload_headers(content_type: str) -> dict[str, str]:
    """The headers a client must send with the PUT (they are part of the signature)."""
    return {"Content-Type": content_type, "If-None-Match": "*"}


def download_url(key: str, name: str, content_type: str) -> str:
    """A GET URL that makes the browser save the object under its original name."""
    settings = get_settings()
    return get_s3().generate_presigned_url(
        "get_object",
        Params={
            "Bucket": settings.files_bucket,
            "Key": key,
            "ResponseContentDisposition": f"attachment; filename*=UTF-8''{quote(name, safe='')}",
            "ResponseContentType": content_type,
        },
        ExpiresIn=settings.files_url_ttl,
    )


async def _call(method: Callable[..., Any], **kwargs: Any) -> Any:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return await to_thread.run_sync(partial(method, **kwargs))
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code in _OUTAGE_CODES or status >= 500:
            log.error("object storage unavailable: %s", code or status)
            raise ServiceUnavailable(error="object_storage_unavailable") from exc
        raise
    except BotoCoreError as exc:  # endpoint unreachable, timeouts, no credentials
        log.error("object storage unavailable: %s", type(exc).__name__)
        raise ServiceUnavailable(error="object_storage_unavailable") from exc


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
    _local_bucket_ready = True


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
