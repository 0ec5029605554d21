"""/api/v1/auth routes."""

from typing import Annotated

from fastapi import APIRouter, Form, Header, Request

from multidb.api.app import API_PREFIX, DocumentedRoute
from multidb.api.deps import CurrentPrincipal, CurrentPrincipalAndProfile, RedisDep
from multidb.api.errors import error_responses
from multidb.api.responses import Response, view
from multidb.api.sql import SessionDep
from multidb.authz import UserGone
from multidb.errors import NotFound
from multidb.rbac import Access, cached_profile
from multidb.security.keys import jwks
from multidb.security.login_crypto import PasswordNotEncrypted, decrypt_password, login_public_key_pem
from multidb.security.passwords import WeakPassword
from multidb.security.sessions import RefreshTokenInvalid, RefreshTokenWrongClient, SessionsEnded, TokenPair
from multidb.security.tokens import InvalidToken, TokenExpired
from multidb.settings import get_settings

from . import service
from .schemas import LoginPublicKey, LoginRequest, PasswordChange, SwaggerToken, TokenPairPublic, UserInfo

router = APIRouter(prefix=f"{API_PREFIX}/auth", tags=["Auth"], route_class=DocumentedRoute)

PUBLIC = {"x-access": Access.PUBLIC.value}
AUTHENTICATED = {"x-access": Access.AUTHENTICATED.value}
LOGIN = (service.BadCredentials, SessionsEnded, service.TooManyFailedLogins)

UserAgent = Annotated[str, Header(min_length=1, max_length=512, description="Refresh tokens are bound to it")]
RefreshToken = Annotated[str, Header(alias="x-refresh-token", min_length=1, max_length=4096)]


def _tokens(pair: TokenPair, device_token: str | None = None) -> Response[TokenPairPublic]:
    return Response(
        data=TokenPairPublic(
            access_token=pair.access_token,
            refresh_token=pair.refresh_token,
            expires_in=get_settings().access_token_ttl,
            device_token=device_token,
        )
    )


def _client_ip(request: Request) -> str:
    """The address API Gateway saw (requestContext.http.sourceIp), never a header the client wrote."""
    return request.client.host if request.client else "unknown"


@router.get("/keys/public", openapi_extra=PUBLIC)
async def get_public_key() -> Response[LoginPublicKey]:
    """Get the RSA public key that login passwords are encrypted with (RSA-OAEP, SHA-256)."""
    return Response(data=LoginPublicKey(public_key=login_public_key_pem()))


@router.get("/.well-known/jwks.json", openapi_extra=PUBLIC)
async def get_jwks() -> dict[str, list[dict[str, str]]]:
    """Get the JSON Web Key Set that verifies access tokens (plain JWKS, not enveloped)."""
    return jwks()


@router.post("/login", openapi_extra=PUBLIC, responses=error_responses(*LOGIN, PasswordNotEncrypted))
async def login(
    request: Request, body: LoginRequest, user_agent: UserAgent, session: SessionDep, redis: RedisDep
) -> Response[TokenPairPublic]:
    """Log in with a username and an RSA-encrypted password (and the device token of an earlier login)."""
    password = decrypt_password(body.password)
    client = service.Client(_client_ip(request), body.device_token)
    done = await service.login(session, redis, body.username, password, user_agent, client)
    return _tokens(done.pair, done.device_token)


@router.post("/login/swagger", openapi_extra=PUBLIC, responses=error_responses(*LOGIN, NotFound))
async def login_swagger(
    request: Request,
    username: Annotated[str, Form(min_length=1, max_length=64)],
    password: Annotated[str, Form(min_length=1, max_length=256)],
    session: SessionDep,
    redis: RedisDep,
) -> SwaggerToken:
    """Log in from Swagger UI with a plain password (LOCAL and TESTING only)."""
    if get_settings().is_production:
        raise NotFound()
    done = await service.login(session, redis, username, password, "swagger-ui", service.Client(_client_ip(request)))
    return SwaggerToken(access_token=done.pair.access_token)


@router.post(
    "/token/refresh",
    openapi_extra=PUBLIC,
    responses=error_responses(
        InvalidToken, TokenExpired, RefreshTokenWrongClient, RefreshTokenInvalid, service.UserNotActive
    ),
)
async def refresh_token(
    refresh: RefreshToken, user_agent: UserAgent, session: SessionDep, redis: RedisDep
) -> Response[TokenPairPublic]:
    """Trade a refresh token for a new pair; the old refresh token is spent."""
    return _tokens(await service.refresh(session, redis, refresh, user_agent))


@router.post("/logout", openapi_extra=AUTHENTICATED)
async def logout(principal: CurrentPrincipal, redis: RedisDep) -> Response[None]:
    """Log out: this session's access and refresh tokens stop working at once."""
    await service.logout(redis, principal)
    return Response(message="Logged out")


@router.get("/user/info", openapi_extra=AUTHENTICATED)
async def user_info(caller: CurrentPrincipalAndProfile, redis: RedisDep) -> Response[UserInfo]:
    """Get the current user, their roles and the permissions of their active roles."""
    profile = await cached_profile(redis, caller.principal.user_id, caller.cached_profile)
    if profile is None:
        raise UserGone()
    return Response(data=view(UserInfo, profile))


@router.put(
    "/user/password",
    openapi_extra=AUTHENTICATED,
    responses=error_responses(
        service.TooManyWrongPasswords, service.WrongCurrentPassword, PasswordNotEncrypted, WeakPassword
    ),
)
async def change_password(
    principal: CurrentPrincipal, body: PasswordChange, session: SessionDep, redis: RedisDep
) -> Response[None]:
    """Change your own password (both RSA-encrypted); your other sessions end, this one stays."""
    await service.change_password(
        session, redis, principal, decrypt_password(body.old_password), decrypt_password(body.new_password)
    )
    return Response(message="Password changed")
