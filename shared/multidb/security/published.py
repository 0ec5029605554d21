"""The published public keys as text, and the `kid`s they name: no cryptography imported.

A function behind the gateway takes its caller from the authorizer's context, which API
Gateway may have cached; it checks that the key the token was signed with is still
published without loading cryptography (a tenth of its cold start) to parse the keys.
"""

import json
from functools import lru_cache

from .. import secrets
from ..settings import get_settings

REFRESH_INTERVAL = 60.0


def published(*, refresh: bool = False) -> str | None:
    """The JSON list of published public keys: the SSM parameter, or the environment's."""
    settings = get_settings()
    if settings.public_keys_parameter:
        name = settings.public_keys_parameter
        # An unknown kid may mean a rotation: read again, but at most once a minute (tokens
        # naming made-up kids must not turn into a parameter read each).
        if refresh and secrets.parameter.age(name) > REFRESH_INTERVAL:
            return secrets.parameter.refresh(name)
        return secrets.parameter(name)
    return settings.jwt_public_keys


@lru_cache(maxsize=4)
def kids_of(text: str) -> frozenset[str]:
    """The `kid`s a published list names."""
    return frozenset(str(entry["kid"]) for entry in json.loads(text))


def is_published(kid: str) -> bool:
    """Whether a token signed with the key `kid` still verifies; an unknown kid reads the
    published list again (at most once a minute), as `tokens.verify` does."""
    for refresh in (False, True):
        text = published(refresh=refresh)
        if text is None:  # keys from the environment or generated (local, tests): parse them
            from .keys import verification_keys

            found = kid in verification_keys(refresh=refresh)
        else:
            found = kid in kids_of(text)
        if found:
            return True
    return False
