"""Domain errors; `multidb.api.errors` maps them to the response envelope.

Each carries a stable, machine-readable `error` name beside its HTTP status and its English
message, so a client can tell two 409s apart without parsing text (docs/api.md lists them).
A raise site names its error when the class default says too little.
"""


class AppError(Exception):
    status_code = 400
    message = "Bad request."
    error = "bad_request"

    def __init__(self, message: str | None = None, *, error: str | None = None) -> None:
        super().__init__(message or self.message)
        if message:
            self.message = message
        if error:
            self.error = error


class Unauthorized(AppError):
    status_code = 401
    message = "Not authenticated."
    error = "not_authenticated"


class Forbidden(AppError):
    status_code = 403
    message = "Permission denied."
    error = "permission_denied"


class NotFound(AppError):
    status_code = 404
    message = "Not found."
    error = "not_found"


class Conflict(AppError):
    status_code = 409
    message = "Conflict."
    error = "conflict"


class InvalidInput(AppError):
    """Bad input; `fields` names what is wrong with which field (the 422 envelope's data)."""

    status_code = 422
    message = "Invalid input."
    error = "invalid_input"

    def __init__(
        self, message: str | None = None, *, error: str | None = None, fields: dict[str, str] | None = None
    ) -> None:
        super().__init__(message, error=error)
        self.fields = fields or {}


class TooManyRequests(AppError):
    """A limit was reached; `retry_after` says in how many seconds to try again (the Retry-After header)."""

    status_code = 429
    message = "Too many requests."
    error = "too_many_requests"

    def __init__(self, message: str | None = None, *, error: str | None = None, retry_after: int = 1) -> None:
        super().__init__(message, error=error)
        self.retry_after = max(1, int(retry_after))


class ServiceUnavailable(AppError):
    status_code = 503
    message = "Service unavailable."
    error = "service_unavailable"
