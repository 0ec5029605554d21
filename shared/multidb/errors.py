"""Domain errors; `multidb.api.errors` maps them to the response envelope.

Each error is a class that states its HTTP status, a stable machine-readable `error` name and
its default English message as class keywords, so a client can tell two 409s apart without
parsing text. A domain defines its own errors beside the code that raises them
(`class FileNotFound(NotFound, error="file_not_found", message="file not found")`); this
module holds the generic ones and those several domains share. A raise site passes a message
only when it carries specifics. Every class that names an error is recorded in `ERRORS`, and
its docstring says when it is answered: docs/api.md's table of error names is generated from
them (`python -m infra.deploy.errors_table`).
"""

from typing import ClassVar

ERRORS: dict[str, type["AppError"]] = {}
"""Every error name and the class that answers it (a class joins on definition: import its module)."""


def _record(cls: type["AppError"]) -> None:
    other = ERRORS.get(cls.error)
    # The same class defined again (a module imported a second time) replaces itself.
    if other is not None and (other.__module__, other.__qualname__) != (cls.__module__, cls.__qualname__):
        raise TypeError(f"error name {cls.error!r} of {cls.__qualname__} is {other.__qualname__}'s already")
    ERRORS[cls.error] = cls


class AppError(Exception):
    """The base of every error: a subclass states its status, error name and default message."""

    status_code: ClassVar[int] = 400
    message = "Bad request."
    error: ClassVar[str] = "bad_request"

    def __init_subclass__(cls, *, status_code: int | None = None, error: str = "", message: str = "") -> None:
        """A subclass that names an `error` is a new error of its own and joins `ERRORS`; one
        that does not (an error with extra behaviour) answers as its parent does."""
        super().__init_subclass__()
        cls.status_code = status_code or cls.status_code
        cls.message = message or cls.message
        if error:
            cls.error = error
            _record(cls)

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.message)
        if message:
            self.message = message


class BadRequest(AppError, status_code=400, error="bad_request", message="Bad request."):
    """A body that does not parse."""


class Unauthorized(AppError, status_code=401, error="not_authenticated", message="Not authenticated."):
    """Not authenticated (a Socket.IO event on a connection that was ended meanwhile)."""


class Forbidden(AppError, status_code=403, error="permission_denied", message="Permission denied."):
    """The caller's grants do not hold the route's permission code."""


class NotFound(AppError, status_code=404, error="not_found", message="Not found."):
    """No such route, or the Swagger UI login in production."""


class MethodNotAllowed(AppError, status_code=405, error="method_not_allowed", message="Method not allowed."):
    """A method the path does not serve, when a function is invoked directly (API Gateway answers 404 itself)."""


class Conflict(AppError, status_code=409, error="conflict", message="Conflict."):
    """A uniqueness conflict without a name of its own."""


class InvalidInput(AppError, status_code=422, error="invalid_input", message="Invalid input."):
    """Validation failed; `data` lists the fields (also a schedule interval below
    `SCHEDULE_MIN_INTERVAL`, and a NUL character in any input)."""

    def __init__(self, message: str | None = None, *, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.fields = fields or {}  # what is wrong with which field: the 422 envelope's data


class TooManyRequests(AppError, status_code=429, error="too_many_requests", message="Too many requests."):
    """A limit without a name of its own."""

    def __init__(self, message: str | None = None, *, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = max(1, int(retry_after))  # seconds: the Retry-After header


class InternalError(AppError, status_code=500, error="internal_error", message="Internal server error."):
    """Anything unexpected; the message carries the request id."""


class ServiceUnavailable(AppError, status_code=503, error="service_unavailable", message="Service unavailable."):
    """A datastore or service is out of reach."""


class BackendUnavailable(ServiceUnavailable, error="backend_unavailable"):
    """PostgreSQL or Redis out of reach (connection or timeout errors)."""


class DocumentStoreUnavailable(ServiceUnavailable, error="document_store_unavailable"):
    """MongoDB out of reach."""


# Each status's own error: what the envelope answers when nothing more specific was raised.
GENERIC: tuple[type[AppError], ...] = (
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Conflict,
    InvalidInput,
    TooManyRequests,
    InternalError,
    ServiceUnavailable,
)
