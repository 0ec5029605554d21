"""/api/v1/router routes."""

from fastapi import APIRouter
from sqlmodel import col

from multidb.api.app import API_PREFIX, DocumentedRoute
from multidb.api.deps import CurrentPrincipal
from multidb.api.responses import CamelModel, Response
from multidb.api.sql import ReadSessionDep
from multidb.models import InterfaceRoute
from multidb.repository import RouteRepository

router = APIRouter(prefix=f"{API_PREFIX}/router", tags=["Router"], route_class=DocumentedRoute)


class RoutePublic(CamelModel):
    name: str
    description: str
    path: str
    methods: list[str]
    code: str
    access: str
    function: str


@router.get("/backend")
async def backend_routes(_: CurrentPrincipal, session: ReadSessionDep) -> Response[list[RoutePublic]]:
    """List every API route of every function: one entry, and one permission code, per method."""
    routes = await RouteRepository(session).get_all(order_by=[col(InterfaceRoute.path), col(InterfaceRoute.method)])
    return Response(
        data=[
            RoutePublic(
                name=r.name,
                description=r.description,
                path=r.path,
                methods=[r.method],
                code=r.code,
                access=r.access,
                function=r.function,
            )
            for r in routes
        ]
    )
