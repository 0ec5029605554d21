"""The `files` collection: one document per file, its object in the bucket (storage.py).
Imported by the calls that use it, never at cold start; what it may ask of MongoDB is
listed in multidb/documents.py."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from beanie import Document, Indexed
from pydantic import Field
from pymongo import ASCENDING, DESCENDING, IndexModel

from ..clock import utcnow


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
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    upload_expires_at: datetime | None = None  # when the upload URL stops working
    # A multipart upload: S3's upload id and the size of every part but the last.
    upload_id: str | None = None
    part_size: int | None = None

    class Settings:
        name = "files"
        # A page is newest first (creation time, then id): an owner's files, or everyone's
        # for an admin, in that order; the sweep finds tombstones and old pending uploads by
        # state and age (tests/integration/test_scale.py checks every query against these).
        indexes = [
            IndexModel([("owner_id", ASCENDING), ("created_at", DESCENDING), ("_id", DESCENDING)], name="owner_newest"),
            IndexModel([("created_at", DESCENDING), ("_id", DESCENDING)], name="newest"),
            IndexModel([("status", ASCENDING), ("created_at", ASCENDING)], name="status_age"),
        ]

    @property
    def part_count(self) -> int:
        return 1 if not self.part_size else -(-self.size // self.part_size)

    def part_length(self, number: int) -> int:
        """The exact length of part `number` (1-based): every part is `part_size` but the last."""
        assert self.part_size is not None
        return min(self.part_size, self.size - (number - 1) * self.part_size)
