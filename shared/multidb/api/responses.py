"""The response envelope `{code, message, ts, data}` with camelCase field names."""

import time

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


def now_ms() -> int:
    return int(time.time() * 1000)


class CamelModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, from_attributes=True)


class Response[T](CamelModel):
    code: int = 200
    message: str = "Success"
    ts: int = Field(default_factory=now_ms, description="Server time, milliseconds since the epoch")
    data: T | None = None


class Page[T](CamelModel):
    page: int
    page_size: int
    total: int
    records: list[T]


class FieldError(CamelModel):
    field: str
    message: str


class ErrorResponse(CamelModel):
    code: int
    message: str
    ts: int = Field(default_factory=now_ms)
    data: list[FieldError] | None = None
