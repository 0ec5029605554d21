"""The two delete routes of a resource: `DELETE ""` with `{"ids": […]}` (all or none) and
`DELETE "/{<id>}"`, both answering how many rows went. Users and roles have them; both go
through the service's one `delete(session, redis, principal, ids)`, so one id and many
behave alike (the same checks, the same audit, the same cache invalidation)."""

import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Path
from sqlmodel.ext.asyncio.session import AsyncSession

from ..authz import Principal
from ..errors import AppError
from .deps import CurrentPrincipal, RedisDep
from .errors import error_responses
from .requests import IdList
from .responses import Response
from .sql import SessionDep

if TYPE_CHECKING:
    from redis.asyncio import Redis

type Delete = Callable[[AsyncSession, "Redis", Principal, list[uuid.UUID]], Awaitable[int]]


def add_delete_routes(
    router: APIRouter, delete: Delete, *, noun: str, effect: str, errors: tuple[type[AppError], ...]
) -> None:
    """Route `DELETE ""` and `DELETE "/{<noun>_id}"` to `delete`; `effect` says what deleting
    does beyond the rows (the routes' descriptions), `errors` the errors `delete` itself
    raises beside what the dependencies answer."""

    async def delete_many(
        principal: CurrentPrincipal, body: IdList, session: SessionDep, redis: RedisDep
    ) -> Response[int]:
        return Response(data=await delete(session, redis, principal, body.ids))

    OneId = Annotated[uuid.UUID, Path(alias=f"{noun}_id")]

    async def delete_one(
        principal: CurrentPrincipal, id_: OneId, session: SessionDep, redis: RedisDep
    ) -> Response[int]:
        return Response(data=await delete(session, redis, principal, [id_]))

    responses = error_responses(*errors)
    many, one = f"Delete several {noun}s (all or none); {effect}.", f"Delete one {noun}; {effect}."
    router.delete("", name=f"delete_{noun}s", description=many, responses=responses)(delete_many)
    router.delete(f"/{{{noun}_id}}", name=f"delete_{noun}", description=one, responses=responses)(delete_one)
