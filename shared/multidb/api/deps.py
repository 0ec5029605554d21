"""Typed dependencies: what a route receives, named for what it is (the database session:
`sql.py`)."""

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..authz import Principal, authorize, check
from ..errors import Unauthorized
from ..paging import MAX_PAGE_SIZE
from ..rbac import permission_code
from ..redis import get_redis
from ..security.tokens import Claims, bearer
from ..settings import get_settings
from .errors import ANSWERS

if TYPE_CHECKING:
    from redis.asyncio import Redis

_bearer = HTTPBearer(auto_error=False, description="Access token from POST /api/v1/auth/login")


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
    try:
        return Claims.from_context(context)
    except (KeyError, TypeError, ValueError) as exc:  # not a context our authorizer wrote
        raise Unauthorized("invalid authorizer context", error="invalid_authorizer_context") from exc


async def _current_principal(
    request: Request, _: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    """The caller, as the gateway's authorizer saw it, or verified here when not behind the gateway.

    (The HTTPBearer dependency only documents the scheme for Swagger UI; `bearer` parses.)
    """
    code = permission_code(request.method, request.scope["route"].path)
    if get_settings().trust_gateway_authorizer and (context := _gateway_context(request)) is not None:
        return await check(_claims_from_gateway(context), code)
    return await authorize(bearer(request.headers.get("authorization")), code)


setattr(_current_principal, ANSWERS, (401, 403))  # no valid token; not granted, or a disabled user
CurrentPrincipal = Annotated[Principal, Depends(_current_principal)]


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
