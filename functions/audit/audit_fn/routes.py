"""/api/v1/audit: the audit log, newest first."""

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from multidb.api.app import API_PREFIX, DocumentedRoute
from multidb.api.deps import CurrentPrincipal, DateTimeQuery, PageDep
from multidb.api.errors import error_responses
from multidb.api.responses import Page, Response
from multidb.errors import DocumentStoreUnavailable

from . import service
from .schemas import AuditPublic

router = APIRouter(prefix=f"{API_PREFIX}/audit", tags=["Audit"], route_class=DocumentedRoute)

Text = Annotated[str | None, Query(max_length=128)]
Cursor = Annotated[
    str | None,
    Query(
        pattern=r"^[1-9][0-9]{0,17}$",
        description="The `nextCursor` of the page before: the page after it (then `page` is ignored)",
    ),
]


@router.get("", responses=error_responses(DocumentStoreUnavailable))
async def list_audit(
    _: CurrentPrincipal,
    page: PageDep,
    user_id: Annotated[str | None, Query(alias="userId", max_length=64)] = None,
    action: Text = None,
    target_type: Annotated[str | None, Query(alias="targetType", max_length=64)] = None,
    target_id: Annotated[str | None, Query(alias="targetId", max_length=128)] = None,
    outcome: Annotated[Literal["success", "failure"] | None, Query()] = None,
    since: Annotated[DateTimeQuery, Query(description="From this time on (inclusive)")] = None,
    until: Annotated[DateTimeQuery, Query(description="Before this time")] = None,
    cursor: Cursor = None,
) -> Response[Page[AuditPublic]]:
    """List audit entries a page at a time, newest first, filtered by user, action, target, outcome and time."""
    found = await service.page(
        page.page, page.page_size, user_id, action, target_type, target_id, outcome, since, until, cursor
    )
    return Response(data=found)
