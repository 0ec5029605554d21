"""/api/v1/users routes: the user administration the seed lacks."""

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
from multidb.authz import AdminsOnly, ReservedRoleCode, RoleAboveYou, UserAboveYou, UserResetsPasswords
from multidb.models import User
from multidb.repository import UsernameTaken, UserNotFound, UserRepository
from multidb.security.login_crypto import PasswordNotEncrypted
from multidb.security.passwords import WeakPassword

from . import service
from .schemas import PasswordReset, UserCreate, UserPublic, UserUpdate

router = APIRouter(prefix=f"{API_PREFIX}/users", tags=["User"], route_class=DocumentedRoute)

# A change to a user: by someone who may manage them, to roles they may assign, audited.
# (`LastAdmin` is not among them: no request can reach it, a backstop behind these checks.)
MANAGE = (UserNotFound, AdminsOnly, UserAboveYou, UserResetsPasswords, AuditUnavailable)
ASSIGN = (service.UnknownRole, RoleAboveYou, ReservedRoleCode)
NEW_PASSWORD = (PasswordNotEncrypted, WeakPassword)


@router.get("")
async def list_users(
    _: CurrentPrincipal,
    session: ReadSessionDep,
    page: PageDep,
    keyword: Keyword = None,
    status: Annotated[bool | None, Query()] = None,
    role_id: Annotated[uuid.UUID | None, Query(alias="roleId")] = None,
    cursor: CreationCursor = None,
) -> Response[Page[UserPublic]]:
    """List users a page at a time: keyword over name, username and email; status; role."""
    records, total = await UserRepository(session).paginate(
        page.page,
        page.page_size,
        *service.filters(keyword, status, role_id),
        order_by=[col(User.created_at)],
        after=cursors.after_creation(User, cursor) if cursor else None,
    )
    following = cursors.by_creation(records[-1]) if len(records) == page.page_size else None
    return Response(data=page_of(UserPublic, records, total, page.page, page.page_size, following))


@router.get("/{user_id}", responses=error_responses(UserNotFound))
async def get_user(_: CurrentPrincipal, user_id: uuid.UUID, session: ReadSessionDep) -> Response[UserPublic]:
    """Get one user."""
    user = await UserRepository(session).require(user_id)
    return Response(data=view(UserPublic, user))


USER = Created(f"{API_PREFIX}/users/{{user_id}}")


@router.post(
    "",
    status_code=201,
    responses={
        **error_responses(UsernameTaken, AdminsOnly, AuditUnavailable, *ASSIGN, *NEW_PASSWORD),
        **USER.responses,
    },
)
async def create_user(
    principal: CurrentPrincipal, body: UserCreate, session: SessionDep, response: HTTPResponse
) -> Response[UserPublic]:
    """Create a user; the password arrives RSA-encrypted like the login password."""
    return USER.respond(response, view(UserPublic, await service.create(session, principal, body)))


@router.put("/{user_id}", responses=error_responses(*MANAGE, *ASSIGN, service.SelfChange))
async def update_user(
    principal: CurrentPrincipal, user_id: uuid.UUID, body: UserUpdate, session: SessionDep, redis: RedisDep
) -> Response[UserPublic]:
    """Change a user's name, email, roles, status or admin flag; it counts on their next request."""
    return Response(data=view(UserPublic, await service.update(session, redis, principal, user_id, body)))


@router.put("/{user_id}/password", responses=error_responses(*MANAGE, *NEW_PASSWORD, service.SelfPasswordReset))
async def reset_password(
    principal: CurrentPrincipal, user_id: uuid.UUID, body: PasswordReset, session: SessionDep, redis: RedisDep
) -> Response[None]:
    """Set a user's password (RSA-encrypted); every session of theirs ends."""
    await service.reset_password(session, redis, principal, user_id, body.password)
    return Response(message="Password reset")


# Both deletes go through the service's one `delete`, so one id and many behave alike (the
# same checks, the same audit, the same ended sessions).
@router.delete("", responses=error_responses(*MANAGE, service.SelfDelete))
async def delete_users(
    principal: CurrentPrincipal, body: IdList, session: SessionDep, redis: RedisDep
) -> Response[int]:
    """Delete several users (all or none); their sessions end."""
    return Response(data=await service.delete(session, redis, principal, body.ids))


@router.delete("/{user_id}", responses=error_responses(*MANAGE, service.SelfDelete))
async def delete_user(
    principal: CurrentPrincipal, user_id: uuid.UUID, session: SessionDep, redis: RedisDep
) -> Response[int]:
    """Delete one user; their sessions end."""
    return Response(data=await service.delete(session, redis, principal, [user_id]))
