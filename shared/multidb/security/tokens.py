"""JWT issue and strict verification (PyJWT): RS256 only, every claim required, typed tokens.

PyJWT and the keys (cryptography) are imported by the first issue or verification: a
function behind the gateway takes its caller from the authorizer's context and never
verifies a token, and those imports were a tenth of its cold start and ~9 MiB of its memory.
"""

import base64
import json
import re
import time
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ..errors import Unauthorized
from ..settings import get_settings

ALGORITHMS = ["RS256"]
REQUIRED_CLAIMS = ["exp", "iat", "nbf", "iss", "aud", "sub", "jti", "typ", "fam"]
MAX_HEADER = 1024  # ours is ~90 characters


class MissingBearerToken(Unauthorized, error="missing_bearer_token", message="missing bearer token"):
    """No `Authorization: Bearer <token>` header."""


class InvalidToken(Unauthorized, error="invalid_token", message="invalid token"):
    """Bad signature, algorithm, `kid`, issuer, audience, claims, or the wrong token type; behind
    the gateway, a token whose signing key is no longer published."""


class TokenExpired(Unauthorized, error="token_expired", message="token expired"):
    """The token's `exp` (plus `JWT_LEEWAY`) has passed, also when API Gateway answered from a
    cached Allow: refresh."""


_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")


class TokenType(StrEnum):
    ACCESS = "access"
    REFRESH = "refresh"
    DEVICE = "device"  # a client that logged in as this user before (OWASP's device cookie)


@dataclass(frozen=True, slots=True)
class Claims:
    sub: str
    jti: str
    fam: str
    typ: TokenType
    iat: int
    exp: int
    kid: str = ""  # the signing key's id, from the token's header

    @classmethod
    def from_context(cls, context: dict[str, Any]) -> "Claims":
        """The claims the authorizer passed on in its context (`Principal.context`)."""
        payload = {**context, "sub": context["userId"], "typ": TokenType.ACCESS.value}
        return cls.from_payload(payload, kid=str(context["kid"]))

    @classmethod
    def from_payload(cls, payload: dict[str, Any], kid: str = "") -> "Claims":
        return cls(
            sub=str(payload["sub"]),
            jti=str(payload["jti"]),
            fam=str(payload["fam"]),
            typ=TokenType(payload["typ"]),
            iat=int(payload["iat"]),
            exp=int(payload["exp"]),
            kid=kid,
        )

    def seconds_left(self) -> int:
        return max(1, self.exp - int(time.time()))


def token_payload(subject: str, token_type: TokenType, family: str, ttl: int, now: int) -> dict[str, Any]:
    """The claims of a token issued at `now` (whole seconds) for `ttl` seconds, with an id of its own."""
    settings = get_settings()
    return {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": subject,
        "iat": now,
        "nbf": now,
        "exp": now + ttl,
        "jti": uuid.uuid4().hex,
        "typ": token_type.value,
        "fam": family,
    }


def issue(subject: str, token_type: TokenType, family: str, ttl: int) -> tuple[str, Claims]:
    import jwt

    from .keys import signing_key

    key = signing_key()
    payload = token_payload(subject, token_type, family, ttl, int(time.time()))
    token = jwt.encode(payload, key.private_key, algorithm="RS256", headers={"kid": key.kid})
    return token, Claims.from_payload(payload, kid=key.kid)


def _header(token: str) -> dict[str, Any]:
    """The token's header, only to pick the key: `jwt.decode` then checks all of it again.

    Not `jwt.get_unverified_header`, which would decode every segment (each checked character
    by character in Python) a second time: a third of a warm authorizer decision.
    """
    segment = token.split(".", 1)[0]
    if len(segment) > MAX_HEADER or not _BASE64URL.fullmatch(segment):
        raise ValueError("not a JWT header")
    header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    if not isinstance(header, dict):
        raise ValueError("not a JWT header")
    return header


# Access tokens this container has verified: token → (claims, kid, key, audience, issuer, leeway).
# A warm container sees the same token again and again (every request of a session); its
# signature and claims cannot have changed, so a repeat costs a dictionary lookup instead
# of an RS256 verification and PyJWT's checks (~0.1 ms, a quarter of a warm decision). What
# can change is checked on every hit: expiry, the key the token names (still published, and
# the same key), the audience, issuer and leeway expected. Revocation is not the token's business:
# callers check it in Redis every time. Only tokens that verified are kept, at most
# MAX_VERIFIED (the oldest go first); a SnapStart restore forgets them all.
MAX_VERIFIED = 1024
_verified: dict[str, tuple[Claims, str, Any, str, str, int]] = {}


def forget_verified() -> None:
    _verified.clear()


def _seen(token: str, settings: Any) -> Claims | None:
    """The claims of an access token verified before, if nothing it was checked against changed."""
    entry = _verified.get(token)
    if entry is None:
        return None
    from .keys import verification_keys  # loaded already: the entry was verified with it

    claims, kid, key, *checked_against = entry
    expected = [settings.jwt_audience, settings.jwt_issuer, settings.jwt_leeway]
    if checked_against != expected or verification_keys().get(kid) != key:
        _verified.pop(token, None)
        return None
    if time.time() >= claims.exp + settings.jwt_leeway:  # PyJWT's rule: expired once exp + leeway has passed
        _verified.pop(token, None)
        raise TokenExpired()
    return claims


def verify(token: str, expected: TokenType) -> Claims:
    """Return the claims of a genuine, current token of the expected type, or raise Unauthorized."""
    settings = get_settings()
    if expected is TokenType.ACCESS and (seen := _seen(token, settings)) is not None:
        return seen
    claims, key = _decode(token, expected, settings, check_exp=True)
    if expected is TokenType.ACCESS:
        if len(_verified) >= MAX_VERIFIED:
            _verified.pop(next(iter(_verified)), None)
        _verified[token] = (claims, claims.kid, key, settings.jwt_audience, settings.jwt_issuer, settings.jwt_leeway)
    return claims


def verify_lapsed(token: str) -> Claims:
    """The claims of a genuine access token whose one fault is its `exp`: passed beyond the
    leeway, but less than REFRESH_TOKEN_TTL after the token was issued (the lifetime of the
    refresh token issued with it, and the least time a revocation of its family is kept).
    Anything else, older ones included, raises Unauthorized; a token still current too.

    The authorizer lets such a token through marked `expired`, and every function answers
    it 401 `token_expired`: the one signal an HTTP API can carry (docs/api.md, "Expiry").
    """
    settings = get_settings()
    claims, _ = _decode(token, TokenType.ACCESS, settings, check_exp=False)
    now = time.time()
    if now < claims.exp + settings.jwt_leeway:
        raise InvalidToken("token not expired")
    if now >= claims.iat + settings.refresh_token_ttl:
        raise InvalidToken("token expired too long ago")
    return claims


def _decode(token: str, expected: TokenType, settings: Any, *, check_exp: bool) -> tuple[Claims, Any]:
    """The claims of a token whose signature, algorithm, key, claims and type all hold (and its
    `exp` if `check_exp`), and the key that verified it."""
    import jwt

    from .keys import verification_keys

    try:
        header = _header(token)
        kid = str(header.get("kid"))
        key = verification_keys().get(kid) or verification_keys(refresh=True).get(kid)
        if key is None or header.get("alg") not in ALGORITHMS:
            raise InvalidToken()
        payload = jwt.decode(
            token,
            key,
            algorithms=ALGORITHMS,
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            leeway=settings.jwt_leeway,
            options={"require": REQUIRED_CLAIMS, "strict_aud": True, "verify_exp": check_exp},
        )
        claims = Claims.from_payload(payload, kid=kid)
    except jwt.ExpiredSignatureError as exc:
        raise TokenExpired() from exc
    except (jwt.PyJWTError, ValueError, KeyError, TypeError) as exc:
        raise InvalidToken() from exc
    if claims.typ is not expected:
        raise InvalidToken("invalid token type")
    return claims, key


def check_still_valid(claims: Claims) -> Claims:
    """The claims of a token verified earlier, elsewhere (the authorizer), if what time can
    undo still holds: its `exp` (with the leeway, as PyJWT counts it) and its signing key,
    still published. API Gateway may answer from a decision it cached for up to an hour."""
    if time.time() >= claims.exp + get_settings().jwt_leeway:
        raise TokenExpired()
    from .published import is_published

    if not is_published(claims.kid):
        raise InvalidToken("the token's signing key is no longer published")
    return claims


def bearer(authorization: str | None, *, bare: bool = False) -> str:
    """The token of an `Authorization: Bearer <token>` header — the one parser every entry point
    uses (functions, the authorizer, the Socket.IO server). `bare` also accepts the token alone
    (a Socket.IO `auth` payload)."""
    value = (authorization or "").strip()
    scheme, _, token = value.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    if bare and value and " " not in value:
        return value
    raise MissingBearerToken()
