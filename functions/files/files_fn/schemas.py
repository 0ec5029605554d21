"""File bodies: UploadCreate, FilePublic, UploadPublic, DownloadPublic."""

import unicodedata
import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, field_validator

from multidb.api.requests import RequestBody
from multidb.api.responses import CamelModel
from multidb.files.storage import MAX_PART, MAX_PARTS, MIN_PART

MAX_KEY_BYTES = 1024  # S3 refuses a PUT to a longer object key (UTF-8 bytes)
# What `service.object_key` puts before the name: `<owner id>/<32 hex digits>/`.
KEY_PREFIX_BYTES = len(f"{uuid.UUID(int=0)}/{uuid.UUID(int=0).hex}/")
MAX_NAME_BYTES = MAX_KEY_BYTES - KEY_PREFIX_BYTES

PART_URLS = 1000  # part URLs per answer: 10,000 of them would pass Lambda's 6 MB response limit

_TOKEN = r"[a-z0-9][a-z0-9!#$&^_.+-]*"  # RFC 6838 type and subtype names
ContentType = Annotated[
    str, StringConstraints(strip_whitespace=True, to_lower=True, max_length=127, pattern=rf"^{_TOKEN}/{_TOKEN}$")
]


class UploadCreate(RequestBody):
    name: str = Field(min_length=1, max_length=255, description="The file's name, without any folder")
    content_type: ContentType = Field(default="application/octet-stream", description="type/subtype, no parameters")
    size: int = Field(ge=1, description="Exact size in bytes; the upload URLs accept no other length")
    part_size: int | None = Field(
        default=None,
        ge=MIN_PART,
        le=MAX_PART,
        description="Upload in parts of this many bytes (the last one smaller): needed above 5 GiB, resumable",
    )

    @field_validator("name")
    @classmethod
    def _plain_name(cls, name: str) -> str:
        name = unicodedata.normalize("NFC", name.strip())
        if not name or name in {".", ".."}:
            raise ValueError("a file name cannot be empty, '.' or '..'")
        if any(ch in "/\\" or unicodedata.category(ch).startswith("C") for ch in name):
            raise ValueError("a file name cannot hold slashes or control characters")
        if len(name.encode()) > MAX_NAME_BYTES:
            raise ValueError(f"a file name can be at most {MAX_NAME_BYTES} bytes in UTF-8 (S3's key limit)")
        return name


class FilePublic(CamelModel):
    id: str
    name: str
    content_type: str
    size: int
    part_size: int | None = Field(description="The size of its parts when uploaded in parts")
    status: Literal["pending", "ready"] = Field(description="pending until the upload is completed")
    owner_id: str
    created_at: datetime
    updated_at: datetime


class PartUrl(CamelModel):
    part_number: int
    url: str = Field(description="PUT exactly `size` bytes of this part here; the answer's ETag header names it")
    size: int


class UploadPublic(CamelModel):
    file: FilePublic
    upload_url: str | None = Field(
        description="PUT the file's bytes here, with the headers below, before expiresIn runs out (null: in parts)"
    )
    method: Literal["PUT"] = "PUT"
    headers: dict[str, str]
    parts: list[PartUrl] | None = Field(
        default=None, description=f"In parts: the first {PART_URLS} parts' URLs (GET …/parts gives the rest)"
    )
    expires_in: int = Field(description="Seconds the URLs stay valid")


class CompletedPart(RequestBody):
    part_number: int = Field(ge=1, le=MAX_PARTS)
    etag: str = Field(min_length=1, max_length=256, description="The ETag header S3 answered the part's PUT with")


class UploadComplete(RequestBody):
    parts: list[CompletedPart] = Field(min_length=1, max_length=MAX_PARTS, description="Every part, in order")


class UploadedPart(CamelModel):
    part_number: int
    etag: str
    size: int


class PartsPublic(CamelModel):
    uploaded: list[UploadedPart] = Field(description="What the bucket holds so far")
    missing: list[PartUrl] = Field(description="Fresh URLs for the parts still to upload (at most `limit`)")
    expires_in: int


class DownloadPublic(CamelModel):
    url: str = Field(description="GET the file here before expiresIn runs out")
    expires_in: int
