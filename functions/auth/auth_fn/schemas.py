"""Request and response bodies of the auth function."""

import uuid

from pydantic import BaseModel, Field

from multidb.api.responses import CamelModel


class LoginRequest(CamelModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=2048, description="RSA-OAEP (SHA-256) ciphertext, base64")


class TokenPairPublic(CamelModel):
    access_token: str
    refresh_token: str
    token_type: str = "Bearer"
    expires_in: int = Field(description="Seconds until the access token expires")


class LoginPublicKey(CamelModel):
    public_key: str = Field(description="PEM (SubjectPublicKeyInfo) of the login encryption key")
    algorithm: str = "RSA-OAEP-256"


class Permissions(CamelModel):
    interface: list[str]
    button: list[str]
    router: list[str]


class UserInfo(CamelModel):
    id: uuid.UUID
    name: str
    email: str
    username: str
    status: bool
    is_admin: bool
    roles: list[str]
    permissions: Permissions


class SwaggerToken(BaseModel):
    """The OAuth2 password-flow answer Swagger UI expects (not enveloped)."""

    access_token: str
    token_type: str = "bearer"


class PasswordChange(CamelModel):
    old_password: str = Field(min_length=1, max_length=2048, description="RSA-OAEP (SHA-256) ciphertext, base64")
    new_password: str = Field(min_length=1, max_length=2048, description="RSA-OAEP (SHA-256) ciphertext, base64")
