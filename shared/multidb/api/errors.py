"""One installer maps every failure to the envelope; nothing internal reaches a response."""

import sys
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import AppError, InvalidInput, TooManyRequests
from .responses import ErrorResponse, FieldError


def _defaults() -> dict[int, tuple[str, str]]:
    """Each status's default error name and message: the domain errors' own, and the few only HTTP has."""
    from ..errors import Conflict, Forbidden, NotFound, ServiceUnavailable, Unauthorized

    known = (AppError, Unauthorized, Forbidden, NotFound, Conflict, InvalidInput, TooManyRequests, ServiceUnavailable)
    return {
        **{cls.status_code: (cls.error, cls.message) for cls in known},
        405: ("method_not_allowed", "Method not allowed."),
        500: ("internal_error", "Internal server error."),
    }


DEFAULTS = _defaults()

# A dependency's attribute naming the error statuses it can raise (see `app.answers`).
ANSWERS = "__answers__"


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI responses for these statuses, each the error envelope."""
    return {
        status: {"model": ErrorResponse, "description": DEFAULTS.get(status, ("", "Error."))[1]}
        for status in sorted(set(statuses))
    }


def envelope(
    status: int,
    message: str | None = None,
    data: list[FieldError] | None = None,
    *,
    error: str | None = None,
    retry_after: int | None = None,
) -> JSONResponse:
    name, default = DEFAULTS.get(status, ("error", "Error."))
    body = ErrorResponse(code=status, error=error or name, message=message or default, data=data)
    headers = {}
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if retry_after is not None:
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
        retry_after: int | None = getattr(exc, "retry_after", None)  # 429, and a database still resuming (503)
        fields = exc.fields if isinstance(exc, InvalidInput) else {}
        data = [FieldError(field=name, message=text) for name, text in fields.items()] or None
        return envelope(exc.status_code, exc.message, data, error=exc.error, retry_after=retry_after)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return envelope(422, data=_field_errors(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return envelope(exc.status_code)
