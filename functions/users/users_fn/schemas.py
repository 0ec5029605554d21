"""User bodies: UserCreate, UserUpdate, UserPublic. A password hash never reaches a response."""

import uuid
from datetime import datetime

from pydantic import EmailStr, Field

from multidb.api.requests import PartialUpdate, RequestBody
from multidb.api.responses import CamelModel, UserIdentity

ENCRYPTED = "RSA-OAEP (SHA-256) ciphertext, base64, made with GET /api/v1/auth/keys/public"


class UserCreate(RequestBody):
    name: str = Field(min_length=1, max_length=64)
    email: EmailStr
    username: str = Field(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")
    password: str = Field(min_length=1, max_length=2048, description=ENCRYPTED)
    role_ids: list[uuid.UUID] = Field(default_factory=list, max_length=100)
    status: bool = True
    is_admin: bool = False


class UserUpdate(PartialUpdate):
    """Fields to change; what is left out stays as it is."""

    name: str | None = Field(default=None, min_length=1, max_length=64)
    email: EmailStr | None = None
    role_ids: list[uuid.UUID] | None = Field(default=None, max_length=100)
    status: bool | None = None
    is_admin: bool | None = None


class PasswordReset(RequestBody):
    password: str = Field(min_length=1, max_length=2048, description=ENCRYPTED)


class RoleSummary(CamelModel):
    id: uuid.UUID
    code: str
    name: str
    status: bool


class UserPublic(UserIdentity):
    roles: list[RoleSummary]
    created_at: datetime
    updated_at: datetime
