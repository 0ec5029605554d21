"""One installer maps every failure to the envelope; nothing internal reaches a response."""

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import AppError, InvalidInput, TooManyRequests
from ..logs import get_logger
from .responses import ErrorResponse, FieldError

log = get_logger("errors")


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


def _outage_errors() -> tuple[type[Exception], ...]:
    """Exceptions that mean a database or cache is out of reach: 503, not 500."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError
    from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError

    return (
        OperationalError,
        InterfaceError,
        DisconnectionError,
        RedisConnectionError,
        RedisTimeoutError,
        OSError,
        TimeoutError,
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def app_error(_: Request, exc: AppError) -> JSONResponse:
        retry_after = exc.retry_after if isinstance(exc, TooManyRequests) else None
        fields = exc.fields if isinstance(exc, InvalidInput) else {}
        data = [FieldError(field=name, message=text) for name, text in fields.items()] or None
        return envelope(exc.status_code, exc.message, data, error=exc.error, retry_after=retry_after)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return envelope(422, data=_field_errors(exc))

    async def backend_unavailable(_: Request, exc: Exception) -> JSONResponse:
        log.error("backend unavailable: %s", type(exc).__name__)
        return envelope(503, error="backend_unavailable")

    for outage in _outage_errors():
        app.add_exception_handler(outage, backend_unavailable)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return envelope(exc.status_code)
