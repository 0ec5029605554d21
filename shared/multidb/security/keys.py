"""Where keys come from: the environment, AWS, or (LOCAL/TESTING only) a generated folder.

Two RSA keys with two jobs, kept in two secrets: the signing key signs JWTs (its public
half, named by `kid`, is all the authorizer holds; only the auth function can read the
private half), the login key decrypts RSA-OAEP passwords (the auth and users functions).
"""

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .. import secrets
from ..config_cache import expiring
from ..settings import get_settings


class KeyConfigurationError(RuntimeError):
    """Keys are missing or would have to be generated where that is refused."""


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    private_key: rsa.RSAPrivateKey


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def public_jwk(public_key: rsa.RSAPublicKey, kid: str | None = None) -> dict[str, str]:
    numbers = public_key.public_numbers()
    jwk = {"e": _b64url_uint(numbers.e), "kty": "RSA", "n": _b64url_uint(numbers.n)}
    jwk["kid"] = kid or thumbprint(jwk)
    return {**jwk, "alg": "RS256", "use": "sig"}


def thumbprint(jwk: dict[str, str]) -> str:
    """RFC 7638 thumbprint: a `kid` that follows from the key itself."""
    canonical = json.dumps({k: jwk[k] for k in ("e", "kty", "n")}, separators=(",", ":"))
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()


def kid_of(public_key: rsa.RSAPublicKey) -> str:
    return public_jwk(public_key)["kid"]


def load_private(pem: str, *, check: bool = False) -> rsa.RSAPrivateKey:
    """A private key of ours. The RSA consistency checks cryptography runs on a key it cannot
    trust cost ~50 ms of a cold start: the deploy steps run them (`check`) on the keys they
    store, and the functions, which read only those, skip them."""
    key = serialization.load_pem_private_key(pem.encode(), password=None, unsafe_skip_rsa_key_validation=not check)
    if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < 2048:
        raise KeyConfigurationError("keys must be RSA, 2048 bits or more")
    return key


def load_public(pem: str) -> rsa.RSAPublicKey:
    key = serialization.load_pem_public_key(pem.encode())
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < 2048:
        raise KeyConfigurationError("keys must be RSA, 2048 bits or more")
    return key


def private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def public_pem(key: rsa.RSAPublicKey) -> str:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def _generated(name: str) -> str:
    """Read or create `<keys_dir>/<name>.pem`; refuses outside LOCAL/TESTING."""
    settings = get_settings()
    if not settings.may_generate_keys:
        raise KeyConfigurationError("generated keys are refused in production")
    path = Path(settings.keys_dir) / f"{name}.pem"
    if path.exists():
        return path.read_text()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    pem = private_pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    try:
        # Exclusive create: when two processes race, both end up with the winner's key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text()
    with os.fdopen(fd, "w") as handle:
        handle.write(pem)
    return pem


def _secret(secret_id: str | None) -> dict[str, Any]:
    return secrets.secret_json(secret_id) if secret_id else {}


@expiring
def signing_key() -> SigningKey:
    settings = get_settings()
    stored = _secret(settings.keys_secret_id)
    key = load_private(settings.jwt_private_key or stored.get("jwt_private_key") or _generated("jwt-signing"))
    kid = settings.jwt_key_id or stored.get("jwt_key_id") or kid_of(key.public_key())
    return SigningKey(kid=kid, private_key=key)


@expiring
def login_key() -> rsa.RSAPrivateKey:
    settings = get_settings()
    stored = _secret(settings.login_key_secret_id)
    return load_private(settings.login_private_key or stored.get("login_private_key") or _generated("login"))


def _published(*, refresh: bool = False) -> str | None:
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


REFRESH_INTERVAL = 60.0


def verification_keys(*, refresh: bool = False) -> dict[str, rsa.RSAPublicKey]:
    """Every public key a token may be signed with, by `kid` (old keys stay during rotation).

    Kept like every configuration value (CONFIG_MAX_AGE); `refresh=True` (a token names an
    unknown `kid`) reads the published list again, at most once a minute.
    """
    published = _published(refresh=refresh)
    if published is not None:
        return _parsed(published)
    current = signing_key()
    return {current.kid: current.private_key.public_key()}


@lru_cache(maxsize=4)
def _parsed(published: str) -> dict[str, rsa.RSAPublicKey]:
    keys = {entry["kid"]: load_public(entry["pem"]) for entry in json.loads(published)}
    if not keys:
        raise KeyConfigurationError("the published key list is empty")
    return keys


def reset_cache() -> None:
    """Forget every key read so far (tests; a process that rotated keys itself)."""
    for cached in (signing_key, login_key, secrets.secret_json, secrets.parameter, _parsed):
        cached.cache_clear()


def jwks() -> dict[str, list[dict[str, str]]]:
    return {"keys": [public_jwk(key, kid) for kid, key in verification_keys().items()]}
