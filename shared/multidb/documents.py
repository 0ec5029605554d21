"""MongoDB documents (Beanie 2 on PyMongo's async API): imported by the calls that use them, never at cold start."""

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from beanie import Document, Indexed
from pydantic import Field


def _now() -> datetime:
    return datetime.now(UTC)


class FileStatus(StrEnum):
    PENDING = "pending"  # metadata stored, upload URL handed out, object not confirmed
    READY = "ready"  # the object is in the bucket with the declared size
    # Deleted while its upload URL may still work: hidden from the API, kept until the URL
    # has expired so the sweep can remove whatever a late PUT leaves in the bucket.
    DELETED = "deleted"


class StoredFile(Document):
    owner_id: Annotated[str, Indexed()]
    name: str
    content_type: str
    size: int
    key: Annotated[str, Indexed(unique=True)]
    status: FileStatus = FileStatus.PENDING
    etag: str | None = None
    created_at: datetime = Field(default_factory=_now)
    updated_at: datetime = Field(default_factory=_now)
    upload_expires_at: datetime | None = None  # when the upload URL stops working

    class Settings:
        name = "files"


DOCUMENTS: tuple[type[Document], ...] = (StoredFile,)
"""Every document model: `python -m infra.initdb --mongo-indexes` builds their indexes."""
