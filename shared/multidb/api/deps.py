"""Typed dependencies: what a route receives, named for what it is (the database session:
`sql.py`)."""

import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BeforeValidator, WithJsonSchema

from ..authz import AuthorizationUnavailable, Principal, TokenRevoked, UserDisabled, UserGone, check_reading
from ..errors import AppError, Forbidden, Unauthorized
from ..paging import CURSOR_BY_CREATION, CURSOR_BY_NAME, MAX_PAGE_SIZE
from ..rbac import permission_code, profile_key
from ..redis import get_redis
from ..security.tokens import (
    Claims,
    InvalidToken,
    MissingBearerToken,
    TokenExpired,
    TokenType,
    bearer,
    check_still_valid,
    verify,
)
from ..settings import get_settings
from .errors import ANSWERS

if TYPE_CHECKING:
    from collections.abc import Callable

    from redis.asyncio import Redis

_bearer = HTTPBearer(auto_error=False, description="Access token from POST /api/v1/auth/login")


class InvalidAuthorizerContext(Unauthorized, error="invalid_authorizer_context", message="invalid authorizer context"):
    """Behind the gateway, a request whose authorizer context this authorizer did not write (or one without `kid`)."""


async def _redis() -> "Redis":
    return get_redis()


# Every dependency is a coroutine: FastAPI runs a plain function in a worker thread, and anyio
# ends its worker threads with the task that started them, so under Mangum each invocation
# would start a thread of its own for each.
RedisDep = Annotated["Redis", Depends(_redis)]


def _gateway_context(request: Request) -> dict[str, Any] | None:
    event = request.scope.get("aws.event") or {}
    context = ((event.get("requestContext") or {}).get("authorizer") or {}).get("lambda")
    return context if isinstance(context, dict) else None


def _claims_from_gateway(context: dict[str, Any]) -> Claims:
    """The claims the authorizer verified, checked again for what may have changed since:
    API Gateway can answer from a decision it cached (AuthorizerCacheTtl, up to an hour).
    A context marked `expired` (a genuine token, recently expired: the authorizer's way to
    say so, as its Deny can only be 403) is refused 401 `token_expired`, before any route logic."""
    if context.get("expired") in (True, "true"):
        raise TokenExpired()
    try:
        claims = Claims.from_context(context)
    except (KeyError, TypeError, ValueError) as exc:  # not a context our authorizer wrote
        raise InvalidAuthorizerContext() from exc
    return check_still_valid(claims)


async def _caller(
    request: Request, also: "Callable[[Claims], tuple[str, ...]] | None" = None
) -> tuple[Principal, list[Any]]:
    """The caller, as the gateway's authorizer saw it, or verified here when not behind the
    gateway; and the keys `also` names, read in the same round trip."""
    code = permission_code(request.method, request.scope["route"].path)
    if get_settings().trust_gateway_authorizer and (context := _gateway_context(request)) is not None:
        claims = _claims_from_gateway(context)
    else:
        claims = verify(bearer(request.headers.get("authorization")), TokenType.ACCESS)
    return await check_reading(claims, code, also(claims) if also else ())


async def _current_principal(
    request: Request, _: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    """The caller (the HTTPBearer dependency only documents the scheme for Swagger UI;
    `bearer` parses)."""
    return (await _caller(request))[0]


async def _caller_and_profile(
    request: Request, _: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> "CallerProfile":
    """The caller and their cached profile's text (None if not cached), in one round trip."""
    principal, (profile,) = await _caller(request, lambda claims: (profile_key(claims.sub),))
    return CallerProfile(principal, profile)


@dataclass(frozen=True, slots=True)
class CallerProfile:
    principal: Principal
    cached_profile: str | None


# What the caller check answers: no valid token (401); not granted, or a disabled user (403);
# the permission check out of reach (503).
CALLER_ERRORS: tuple[type[AppError], ...] = (
    MissingBearerToken,
    InvalidToken,
    TokenExpired,
    TokenRevoked,
    UserGone,
    InvalidAuthorizerContext,
    Forbidden,
    UserDisabled,
    AuthorizationUnavailable,
)
for _dependency in (_current_principal, _caller_and_profile):
    setattr(_dependency, ANSWERS, CALLER_ERRORS)
CurrentPrincipal = Annotated[Principal, Depends(_current_principal)]
CurrentPrincipalAndProfile = Annotated[CallerProfile, Depends(_caller_and_profile)]


@dataclass(frozen=True, slots=True)
class PageQuery:
    page: int
    page_size: int


async def _page(
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(alias="pageSize", ge=1, le=MAX_PAGE_SIZE)] = 10,
) -> PageQuery:
    return PageQuery(page, page_size)


PageDep = Annotated[PageQuery, Depends(_page)]
Keyword = Annotated[str | None, Query(max_length=64, description="Matched literally anywhere, case-insensitive")]

_AFTER = "The `nextCursor` of the page before: the page after it (then `page` is ignored)"
# A keyset cursor (`multidb.cursors`) of a list in creation order (users, roles) or name order (schedules)
CreationCursor = Annotated[str | None, Query(pattern=CURSOR_BY_CREATION, description=_AFTER)]
NameCursor = Annotated[str | None, Query(pattern=CURSOR_BY_NAME, description=_AFTER)]

# RFC 3339 (OpenAPI's `date-time`): a date, a time and an offset. Pydantic alone would also take
# a number of seconds since the epoch (`?until=0.5`) or a date without a time.
_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


def _date_time(value: object) -> object:
    if isinstance(value, str) and _DATE_TIME.fullmatch(value):
        return value
    raise ValueError("expected an RFC 3339 date-time with an offset, like 2026-01-31T12:00:00Z")


DateTimeQuery = Annotated[
    datetime | None,
    BeforeValidator(_date_time),
    WithJsonSchema({"type": "string", "format": "date-time", "examples": ["2026-01-31T12:00:00Z"]}),
]
"""An optional date-time query parameter: RFC 3339 text only, documented as `format: date-time`."""
