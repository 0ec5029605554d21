"""Request bodies every function shares, and the one rule every input keeps: no NUL."""

import uuid
from collections.abc import Iterator
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import ConfigDict, Field, model_validator

from .responses import CamelModel

NUL = "\x00"
NUL_MESSAGE = "text cannot hold a NUL character (\\u0000)"


class RequestBody(CamelModel):
    """A request body: a field it does not declare is refused (422 naming it), never ignored.

    Ignoring it silently turns a client's typo (`roles` for `roleIds`) into a request that
    succeeds without doing what was asked.
    """

    model_config = ConfigDict(extra="forbid")


def _not_nullable(schema: dict[str, Any]) -> None:
    """Document each field as the update takes it: optional, but never null (the `| None` of
    its annotation only stands for "left out", which the schema says by not requiring it).
    A generated client then types `status` as a bool that may be unset, not a nullable bool
    the server would refuse."""
    for field in schema.get("properties", {}).values():
        branches = field.get("anyOf")
        if branches and {"type": "null"} in branches:
            rest = [branch for branch in branches if branch != {"type": "null"}]
            del field["anyOf"]
            if len(rest) == 1:
                field.update(rest[0])
            else:
                field["anyOf"] = rest
        if "default" in field and field["default"] is None:
            del field["default"]


class PartialUpdate(RequestBody):
    """A body of fields to change: what is left out stays; what is sent may not be null
    (nor is it nullable in the schema: `_not_nullable`)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_not_nullable)

    @model_validator(mode="after")
    def _something_to_change(self) -> "PartialUpdate":
        if not self.model_fields_set:
            raise ValueError("nothing to update")
        for name in self.model_fields_set:
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class IdList(RequestBody):
    """`{ids: [...]}` for bulk operations: 1 to 100 UUIDs."""

    ids: list[uuid.UUID] = Field(min_length=1, max_length=100)


def _nul_paths(value: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """Where a decoded JSON value holds a NUL: in a string, or in an object's key (named by
    the object: the key itself is the refused input, never echoed)."""
    if isinstance(value, str):
        if NUL in value:
            yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            if NUL in key:
                yield path
            else:
                yield from _nul_paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _nul_paths(item, (*path, index))


async def refuse_nul(request: Request) -> None:
    """Refuse (422, naming the field) a NUL character anywhere in a request's path
    parameters, query, JSON or form body, before any route reads it.

    PostgreSQL's text cannot hold one (the driver raises: a 500), and no name, text, key or
    argument of this API needs one; one check here, for every route and field alike, instead
    of a validator per field that a new field would forget. The body read here is the one
    FastAPI parses (Starlette keeps it on the request), so it is decoded once.
    """
    found: list[tuple[str | int, ...]] = [
        ("path", name) for name, value in request.path_params.items() if isinstance(value, str) and NUL in value
    ]
    found += [("query", name) for name, value in request.query_params.multi_items() if NUL in name + value]
    content_type = request.headers.get("content-type", "").lower()
    if "json" in content_type:
        try:
            body = await request.json()
        except ValueError:
            body = None  # FastAPI answers the body that does not parse itself
        found += [("body", *path) for path in _nul_paths(body)]
    elif content_type.startswith("application/x-www-form-urlencoded"):
        form = await request.form()
        found += [
            ("body", name) for name, value in form.multi_items() if isinstance(value, str) and NUL in name + value
        ]
    if found:
        raise RequestValidationError([{"type": "string_nul", "loc": loc, "msg": NUL_MESSAGE} for loc in found])
