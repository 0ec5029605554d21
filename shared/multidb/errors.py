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
    status_code = 422
    message = "Invalid input."


class TooManyRequests(AppError):
    status_code = 429
    message = "Too many requests."


class ServiceUnavailable(AppError):
    status_code = 503
    message = "Service unavailable."
