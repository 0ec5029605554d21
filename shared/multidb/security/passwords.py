"""bcrypt password hashes, and a decoy check so unknown users cost what wrong passwords cost."""

from functools import lru_cache

import bcrypt

from ..errors import InvalidInput
from ..settings import get_settings

MAX_PASSWORD_BYTES = 72  # bcrypt reads no further; longer passwords are refused, not truncated
MIN_PASSWORD_LENGTH = 8


class WeakPassword(
    InvalidInput,
    error="weak_password",
    message=f"passwords need {MIN_PASSWORD_LENGTH} characters and at most {MAX_PASSWORD_BYTES} bytes",
):
    """A new password under 8 characters or over 72 bytes."""


def hash_new_password(password: str) -> str:
    """Hash a password someone is choosing now: it must meet the length policy."""
    if len(password) < MIN_PASSWORD_LENGTH or len(password.encode()) > MAX_PASSWORD_BYTES:
        raise WeakPassword()
    return hash_password(password)


def hash_password(password: str) -> str:
    encoded = password.encode()
    if len(encoded) > MAX_PASSWORD_BYTES:
        raise ValueError(f"passwords are limited to {MAX_PASSWORD_BYTES} bytes")
    return bcrypt.hashpw(encoded, bcrypt.gensalt(rounds=get_settings().password_hash_rounds)).decode()


def verify_password(password: str, password_hash: str) -> bool:
    encoded = password.encode()
    if len(encoded) > MAX_PASSWORD_BYTES:
        return False
    try:
        return bcrypt.checkpw(encoded, password_hash.encode())
    except ValueError:
        return False


@lru_cache
def _decoy_hash() -> str:
    return hash_password("decoy password that never matches")


def burn_password_check(password: str) -> None:
    """Spend one verification on a user that does not exist, so timing tells nothing."""
    verify_password(password, _decoy_hash())
