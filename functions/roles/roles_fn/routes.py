"""/api/v1/roles routes, as the seed has them."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi import Response as HTTPResponse
from sqlmodel import col

from multidb import cursors
from multidb.api.app import API_PREFIX, DocumentedRoute
from multidb.api.deps import CreationCursor, CurrentPrincipal, Keyword, PageDep, RedisDep
from multidb.api.errors import error_responses
from multidb.api.requests import IdList
from multidb.api.responses import Created, Page, Response, page_of, view
from multidb.api.sql import ReadSessionDep, SessionDep
from multidb.audit import AuditUnavailable
from multidb.authz import ReservedRoleCode, RoleAboveYou
from multidb.models import Role
from multidb.rbac import Access
from multidb.repository import RoleCodeTaken, RoleNotFound, RoleRepository, UserRepository

from . import service
from .schemas import RoleCreate, RolePublic, RoleUpdate

router = APIRouter(prefix=f"{API_PREFIX}/roles", tags=["Role"], route_class=DocumentedRoute)

# A role's code and grants, checked against the caller; every change audited.
GRANT = (ReservedRoleCode, service.UnknownPermission, service.PermissionNotHeld, AuditUnavailable)
# Changing or deleting a role acts on its holders too.
CHANGE = (RoleNotFound, ReservedRoleCode, RoleAboveYou, service.RoleHolderAboveYou, AuditUnavailable)

Status = Annotated[bool | None, Query(description="Only enabled (true) or disabled (false) roles")]


@router.get("")
async def list_roles(
    _: CurrentPrincipal,
    session: ReadSessionDep,
    page: PageDep,
    status: Status = None,
    keyword: Keyword = None,
    cursor: CreationCursor = None,
) -> Response[Page[RolePublic]]:
    """List roles a page at a time, filtered by status and a keyword over name and code."""
    records, total = await RoleRepository(session).paginate(
        page.page,
        page.page_size,
        *service.filters(status, keyword),
        order_by=[col(Role.created_at)],
        after=cursors.after_creation(Role, cursor) if cursor else None,
    )
    following = cursors.by_creation(records[-1]) if len(records) == page.page_size else None
    return Response(data=page_of(RolePublic, records, total, page.page, page.page_size, following))


@router.get("/mine", openapi_extra={"x-access": Access.AUTHENTICATED.value})
async def my_roles(principal: CurrentPrincipal, session: ReadSessionDep) -> Response[list[RolePublic]]:
    """List the current user's roles."""
    user = await UserRepository(session).get(principal.user_id)
    roles = [] if user is None else sorted(user.roles, key=lambda r: r.code)
    return Response(data=[view(RolePublic, r) for r in roles])


@router.get("/all")
async def all_roles(
    _: CurrentPrincipal, session: ReadSessionDep, status: Status = None, keyword: Keyword = None
) -> Response[list[RolePublic]]:
    """List every role (for pickers), filtered by status and keyword."""
    roles = await RoleRepository(session).get_all(*service.filters(status, keyword), order_by=[col(Role.code)])
    return Response(data=[view(RolePublic, r) for r in roles])


ROLE = Created(f"{API_PREFIX}/roles/{{role_id}}")


@router.post("", status_code=201, responses={**error_responses(RoleCodeTaken, *GRANT), **ROLE.responses})
async def create_role(
    principal: CurrentPrincipal, body: RoleCreate, session: SessionDep, response: HTTPResponse
) -> Response[RolePublic]:
    """Create a role; its interface permissions must be catalogue codes the caller holds itself."""
    return ROLE.respond(response, view(RolePublic, await service.create(session, principal, body)))


@router.put("/{role_id}", responses=error_responses(RoleCodeTaken, *GRANT, *CHANGE))
async def update_role(
    principal: CurrentPrincipal, role_id: uuid.UUID, body: RoleUpdate, session: SessionDep, redis: RedisDep
) -> Response[RolePublic]:
    """Change a role whose permissions the caller holds; its users' permissions change with their next request."""
    role = await service.update(session, redis, principal, role_id, body)
    return Response(data=view(RolePublic, role))


# Both deletes go through the service's one `delete`, so one id and many behave alike (the
# same checks, the same audit, the same cache invalidation).
@router.delete("", responses=error_responses(*CHANGE))
async def delete_roles(
    principal: CurrentPrincipal, body: IdList, session: SessionDep, redis: RedisDep
) -> Response[int]:
    """Delete several roles (all or none); their users lose those permissions at once."""
    return Response(data=await service.delete(session, redis, principal, body.ids))


@router.delete("/{role_id}", responses=error_responses(*CHANGE))
async def delete_role(
    principal: CurrentPrincipal, role_id: uuid.UUID, session: SessionDep, redis: RedisDep
) -> Response[int]:
    """Delete one role; their users lose those permissions at once."""
    return Response(data=await service.delete(session, redis, principal, [role_id]))
