"""Domain errors; `multidb.api.errors` maps them to the response envelope."""


class AppError(Exception):
    status_code = 400
    message = "Bad request."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.message)
        if message:
            self.message = message


class Unauthorized(AppError):
    status_code = 401
    message = "Not authenticated."


class Forbidden(AppError):
    status_code = 403
    message = "Permission denied."


class NotFound(AppError):
    status_code = 404
    message = "Not found."


class Conflict(AppError):
    status_code = 409
    message = "Conflict."


class InvalidInput(AppError):
    """Bad input; `fields` names what is wrong with which field (the 422 envelope's data)."""

    status_code = 422
    message = "Invalid input."

    def __init__(self, message: str | None = None, *, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.fields = fields or {}


class TooManyRequests(AppError):
    """A limit was reached; `retry_after` says in how many seconds to try again (the Retry-After header)."""

    status_code = 429
    message = "Too many requests."

    def __init__(self, message: str | None = None, *, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = max(1, int(retry_after))


class ServiceUnavailable(AppError):
    status_code = 503
    message = "Service unavailable."
