"""The response envelope `{code, message, ts, data}` with camelCase field names."""

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from string import Formatter
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from starlette.responses import Response as HTTPResponse

from ..paging import TOTAL_BOUND, reported


def now_ms() -> int:
    return int(time.time() * 1000)


class CamelModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, from_attributes=True)


class UserIdentity(CamelModel):
    """What every answer about a user says of who they are (user info, the users routes)."""

    id: uuid.UUID
    name: str
    email: str
    username: str
    status: bool
    is_admin: bool


class Response[T](CamelModel):
    code: int = 200
    message: str = "Success"
    ts: int = Field(default_factory=now_ms, description="Server time, milliseconds since the epoch")
    data: T | None = None


class Page[T](CamelModel):
    page: int
    page_size: int
    total: int = Field(description=f"How many records match: exact up to {TOTAL_BOUND:,}; beyond, see totalExact")
    total_exact: bool = Field(
        default=True,
        description=f"false: more than `total` ({TOTAL_BOUND:,}) records match, and they were not all counted",
    )
    next_cursor: str | None = Field(
        default=None,
        description="Where the next page starts, for the lists that take `cursor`: null on the last page",
    )
    records: list[T]

    @classmethod
    def counted(
        cls, records: list[T], counted: int, page: int, page_size: int, next_cursor: str | None = None
    ) -> "Page[T]":
        """A page whose total was counted up to one past the bound (`paging.reported`)."""
        total, exact = reported(counted)
        return cls(
            page=page, page_size=page_size, total=total, total_exact=exact, next_cursor=next_cursor, records=records
        )


def view[S: BaseModel](schema: type[S], row: object) -> S:
    """`schema`'s view of an ORM row, a document or a dict of ours: read by field name only.

    By default a camelCase model looks each field up by its alias first, and on a row that
    lookup always misses, at the cost of an AttributeError per field (a page of roles spent
    a tenth of its time there): 46 µs a role by alias, 12 µs by name.
    """
    return schema.model_validate(row, from_attributes=True, by_alias=False, by_name=True)


def page_of[S: BaseModel](
    schema: type[S],
    records: Sequence[object],
    total: int,
    page: int,
    page_size: int,
    next_cursor: str | None = None,
) -> Page[S]:
    """A page of `schema` views of ORM rows, their total counted up to one past the bound."""
    return Page[S].counted([view(schema, r) for r in records], total, page, page_size, next_cursor)


class FieldError(CamelModel):
    field: str
    message: str


class ErrorResponse(CamelModel):
    code: int
    error: str = Field(description="Stable machine-readable name of the error (docs/api.md lists them)")
    message: str
    ts: int = Field(default_factory=now_ms)
    data: list[FieldError] | None = None


class Identified(Protocol):
    id: uuid.UUID


@dataclass(frozen=True, slots=True)
class Created:
    """Where a create route's new resource lives: the `Location` of its 201, e.g.
    `Created("/api/v1/roles/{role_id}")`, and where its id sits in the body (a JSON pointer).

    The route documents it (`responses=...` gets `created.responses`) and sets it
    (`created.locate(response, role_id=role.id)`); the merged document turns the `x-created`
    note into OpenAPI links from the 201 to every operation on the resource
    (infra/local/gateway/docs.py), so generated clients and schemathesis can chain them.
    """

    path: str
    id_pointer: str = "/data/id"

    @property
    def responses(self) -> dict[int | str, dict[str, Any]]:
        header = {"description": "The new resource's URL", "schema": {"type": "string"}}
        return {
            201: {
                "description": "Created",
                "headers": {"Location": header},
                "x-created": {"path": self.path, "id": self.id_pointer},
            }
        }

    def locate(self, response: HTTPResponse, **params: object) -> None:
        response.headers["Location"] = self.path.format(**params)

    def respond[T: Identified](self, response: HTTPResponse, data: T) -> "Response[T]":
        """A create route's 201: the new resource, its URL (the path's one parameter is its `id`) in `Location`."""
        (parameter,) = (name for _, name, _, _ in Formatter().parse(self.path) if name)
        self.locate(response, **{parameter: data.id})
        return Response(code=201, data=data)
