"""Request and response bodies of the auth function."""

from pydantic import BaseModel, Field

from multidb.api.requests import RequestBody
from multidb.api.responses import CamelModel, UserIdentity


class LoginRequest(RequestBody):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=2048, description="RSA-OAEP (SHA-256) ciphertext, base64")
    device_token: str | None = Field(
        default=None,
        max_length=4096,
        description="The deviceToken an earlier login of this user answered: its failures are counted apart",
    )


class TokenPairPublic(CamelModel):
    access_token: str
    refresh_token: str
    token_type: str = "Bearer"
    expires_in: int = Field(description="Seconds until the access token expires")
    device_token: str | None = Field(
        default=None,
        description="Keep it (per user) and send it with the next login: strangers' failures will not lock it out",
    )


class LoginPublicKey(CamelModel):
    public_key: str = Field(description="PEM (SubjectPublicKeyInfo) of the login encryption key")
    algorithm: str = "RSA-OAEP-256"


class Permissions(CamelModel):
    interface: list[str]
    button: list[str]
    router: list[str]


class UserInfo(UserIdentity):
    roles: list[str]
    permissions: Permissions


class SwaggerToken(BaseModel):
    """The OAuth2 password-flow answer Swagger UI expects (not enveloped)."""

    access_token: str
    token_type: str = "bearer"


class PasswordChange(RequestBody):
    old_password: str = Field(min_length=1, max_length=2048, description="RSA-OAEP (SHA-256) ciphertext, base64")
    new_password: str = Field(min_length=1, max_length=2048, description="RSA-OAEP (SHA-256) ciphertext, base64")
