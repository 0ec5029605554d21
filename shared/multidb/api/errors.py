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

_MESSAGES = {
    400: "Bad request.",
    401: "Not authenticated.",
    403: "Permission denied.",
    404: "Not found.",
    405: "Method not allowed.",
    409: "Conflict.",
    422: "Invalid input.",
    429: "Too many requests.",
    500: "Internal server error.",
    503: "Service unavailable.",
}

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": message} for status, message in _MESSAGES.items() if status != 405
}


def envelope(
    status: int, message: str, data: list[FieldError] | None = None, *, retry_after: int | None = None
) -> JSONResponse:
    body = ErrorResponse(code=status, message=message, data=data).model_dump(mode="json", by_alias=True)
    headers = {}
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return JSONResponse(body, status_code=status, headers=headers or None)


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
        return envelope(exc.status_code, exc.message, data, retry_after=retry_after)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return envelope(422, _MESSAGES[422], _field_errors(exc))

    async def backend_unavailable(_: Request, exc: Exception) -> JSONResponse:
        log.error("backend unavailable: %s", type(exc).__name__)
        return envelope(503, _MESSAGES[503])

    for outage in _outage_errors():
        app.add_exception_handler(outage, backend_unavailable)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return envelope(exc.status_code, _MESSAGES.get(exc.status_code, "Error."))
