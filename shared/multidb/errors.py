"""Domain errors; `multidb.api.errors` maps them to the response envelope.

Each carries a stable, machine-readable `error` name beside its HTTP status and its English
message, so a client can tell two 409s apart without parsing text (docs/api.md lists them).
A raise site names its error when the class default says too little.
"""


class AppError(Exception):
    """A subclass states its status, error name and default message as class keywords."""

    status_code = 400
    message = "Bad request."
    error = "bad_request"

    def __init_subclass__(cls, *, status_code: int | None = None, error: str = "", message: str = "") -> None:
        super().__init_subclass__()
        cls.status_code = status_code or cls.status_code
        cls.error = error or cls.error
        cls.message = message or cls.message

    def __init__(self, message: str | None = None, *, error: str | None = None) -> None:
        super().__init__(message or self.message)
        if message:
            self.message = message
        if error:
            self.error = error


class Unauthorized(AppError, status_code=401, error="not_authenticated", message="Not authenticated."):
    pass


class Forbidden(AppError, status_code=403, error="permission_denied", message="Permission denied."):
    pass


class NotFound(AppError, status_code=404, error="not_found", message="Not found."):
    pass


class Conflict(AppError, status_code=409, error="conflict", message="Conflict."):
    pass


class InvalidInput(AppError, status_code=422, error="invalid_input", message="Invalid input."):
    """Bad input; `fields` names what is wrong with which field (the 422 envelope's data)."""

    def __init__(
        self, message: str | None = None, *, error: str | None = None, fields: dict[str, str] | None = None
    ) -> None:
        super().__init__(message, error=error)
        self.fields = fields or {}


class TooManyRequests(AppError, status_code=429, error="too_many_requests", message="Too many requests."):
    """A limit was reached; `retry_after` says in how many seconds to try again (the Retry-After header)."""

    def __init__(self, message: str | None = None, *, error: str | None = None, retry_after: int = 1) -> None:
        super().__init__(message, error=error)
        self.retry_after = max(1, int(retry_after))


class ServiceUnavailable(AppError, status_code=503, error="service_unavailable", message="Service unavailable."):
    pass
