"""Role bodies: RoleCreate, RoleUpdate, RolePublic."""

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import Field, StringConstraints

from multidb.api.requests import PartialUpdate, RequestBody
from multidb.api.responses import CamelModel

Code = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_:.-]{0,63}$")]
Permission = Annotated[str, StringConstraints(min_length=1, max_length=300)]
Permissions = Annotated[list[Permission], Field(max_length=1000)]


class RoleCreate(RequestBody):
    name: str = Field(min_length=1, max_length=64)
    description: str = Field(default="", max_length=255)
    code: Code
    status: bool = True
    interface_permissions: Permissions = Field(default_factory=list, description="Permission codes: METHOD:/api/v1/...")
    button_permissions: Permissions = Field(default_factory=list)
    router_permissions: Permissions = Field(default_factory=list)


class RoleUpdate(PartialUpdate):
    """Fields to change; what is left out stays as it is."""

    name: str | None = Field(default=None, min_length=1, max_length=64)
    description: str | None = Field(default=None, max_length=255)
    code: Code | None = None
    status: bool | None = None
    interface_permissions: Permissions | None = None
    button_permissions: Permissions | None = None
    router_permissions: Permissions | None = None


class RolePublic(CamelModel):
    id: uuid.UUID
    name: str
    description: str
    code: str
    status: bool
    interface_permissions: list[str]
    button_permissions: list[str]
    router_permissions: list[str]
    created_at: datetime
    updated_at: datetime
