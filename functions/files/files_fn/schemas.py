"""File bodies: UploadCreate, FilePublic, UploadPublic, DownloadPublic."""

import unicodedata
from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, field_validator

from multidb.api.requests import RequestBody
from multidb.api.responses import CamelModel

_TOKEN = r"[a-z0-9][a-z0-9!#$&^_.+-]*"  # RFC 6838 type and subtype names
ContentType = Annotated[
    str, StringConstraints(strip_whitespace=True, to_lower=True, max_length=127, pattern=rf"^{_TOKEN}/{_TOKEN}$")
]


class UploadCreate(RequestBody):
    name: str = Field(min_length=1, max_length=255, description="The file's name, without any folder")
    content_type: ContentType = Field(default="application/octet-stream", description="type/subtype, no parameters")
    size: int = Field(ge=1, description="Exact size in bytes; the upload URL accepts no other length")

    @field_validator("name")
    @classmethod
    def _plain_name(cls, name: str) -> str:
        name = unicodedata.normalize("NFC", name.strip())
        if not name or name in {".", ".."}:
            raise ValueError("a file name cannot be empty, '.' or '..'")
        if any(ch in "/\\" or unicodedata.category(ch).startswith("C") for ch in name):
            raise ValueError("a file name cannot hold slashes or control characters")
        return name


class FilePublic(CamelModel):
    id: str
    name: str
    content_type: str
    size: int
    status: Literal["pending", "ready"] = Field(description="pending until the upload is completed")
    owner_id: str
    created_at: datetime
    updated_at: datetime


class UploadPublic(CamelModel):
    file: FilePublic
    upload_url: str = Field(description="PUT the file's bytes here, with the headers below, before expiresIn runs out")
    method: Literal["PUT"] = "PUT"
    headers: dict[str, str]
    expires_in: int = Field(description="Seconds the URL stays valid")


class DownloadPublic(CamelModel):
    url: str = Field(description="GET the file here before expiresIn runs out")
    expires_in: int
