"""One installer maps every failure to the envelope; nothing internal reaches a response."""

import sys
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import GENERIC, AppError, InvalidInput
from .responses import ErrorResponse, FieldError

# Each status's own error class: what a status answers when nothing more specific was raised.
DEFAULTS: dict[int, type[AppError]] = {cls.status_code: cls for cls in GENERIC}

# A dependency's attribute naming the error classes it can raise (see `app.answers`).
ANSWERS = "__answers__"


def error_responses(*errors: type[AppError]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI responses for the statuses of these errors: each the error envelope, its `error`
    one of the names these classes answer with."""
    names: dict[int, set[str]] = {}
    for cls in errors:
        names.setdefault(cls.status_code, set()).add(cls.error)
    return {status: _response(status, names[status]) for status in sorted(names)}


def _response(status: int, names: set[str]) -> dict[str, Any]:
    return {
        "model": ErrorResponse,
        "description": DEFAULTS[status].message if status in DEFAULTS else "Error.",
        "content": {"application/json": {"schema": {"properties": {"error": _names(names)}}}},
    }


def _names(names: set[str]) -> dict[str, Any]:
    return {"type": "string", "enum": sorted(names)}


def error_names(response: dict[str, Any]) -> set[str]:
    """The `error` names an error response of `error_responses` lists (none for any other response)."""
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    return set(schema.get("properties", {}).get("error", {}).get("enum", ()))


def merged(
    derived: dict[int | str, dict[str, Any]], declared: dict[int | str, dict[str, Any]]
) -> dict[int | str, dict[str, Any]]:
    """A route's responses: what it declares, and the derived errors beside, a status that both
    name listing the names of both."""
    responses = dict(derived)
    for key, response in declared.items():
        status = int(key) if str(key).isdigit() else key
        if status in responses and (names := error_names(response)):
            key, response = status, _response(int(status), names | error_names(responses[status]))
        responses[key] = response
    return responses


def envelope(exc: AppError, data: list[FieldError] | None = None) -> JSONResponse:
    """The error's answer: its status, name and message in the envelope (and its Retry-After)."""
    return _answer(exc.status_code, exc.error, exc.message, data, getattr(exc, "retry_after", None))


def _answer(
    status: int, error: str, message: str, data: list[FieldError] | None = None, retry_after: int | None = None
) -> JSONResponse:
    body = ErrorResponse(code=status, error=error, message=message, data=data)
    headers = {}
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if retry_after is not None:  # 429, and a database still resuming (503)
        headers["Retry-After"] = str(retry_after)
    return JSONResponse(body.model_dump(mode="json", by_alias=True), status_code=status, headers=headers or None)


def _field_errors(exc: RequestValidationError) -> list[FieldError]:
    # The offending input is never echoed: it may be a password or a token.
    return [
        FieldError(
            field=".".join(str(part) for part in error.get("loc", ()) if part != "body"), message=error.get("msg", "")
        )
        for error in exc.errors()
    ]


def is_outage(exc: BaseException) -> bool:
    """Whether an exception means a database or cache is out of reach: 503, not 500.

    SQLAlchemy's and Redis's classes are looked up only where something imported them (an
    exception of a library never loaded cannot have been raised), so the files and audit
    functions, which reach SQL on a permission-cache miss only, import it only then.
    """
    kinds: list[type[BaseException]] = [OSError, TimeoutError]
    if (redis_errors := sys.modules.get("redis.exceptions")) is not None:
        kinds += [redis_errors.ConnectionError, redis_errors.TimeoutError]
    if (sql_errors := sys.modules.get("sqlalchemy.exc")) is not None:
        kinds += [sql_errors.OperationalError, sql_errors.InterfaceError, sql_errors.DisconnectionError]
    return isinstance(exc, tuple(kinds))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def app_error(_: Request, exc: AppError) -> JSONResponse:
        fields = exc.fields if isinstance(exc, InvalidInput) else {}
        return envelope(exc, [FieldError(field=name, message=text) for name, text in fields.items()] or None)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return envelope(InvalidInput(), _field_errors(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        known = DEFAULTS.get(exc.status_code)
        return envelope(known()) if known else _answer(exc.status_code, "error", "Error.")
