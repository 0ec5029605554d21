"""Keys: from the environment, from AWS (moto), or generated once where that is allowed."""

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from moto import mock_aws

from multidb import settings
from multidb.security import keys
from multidb.security.keys import KeyConfigurationError, private_pem, public_pem


def _clear() -> None:
    settings.get_settings.cache_clear()
    keys.reset_cache()


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    _clear()
    yield monkeypatch
    monkeypatch.undo()
    _clear()


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def test_generated_keys_survive_a_restart(fresh: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fresh.setenv("KEYS_DIR", str(tmp_path))
    first = keys.signing_key()
    assert (tmp_path / "jwt-signing.pem").stat().st_mode & 0o777 == 0o600
    _clear()  # a new process
    assert keys.signing_key().kid == first.kid
    assert keys.login_key().key_size == 2048
    assert keys.kid_of(keys.login_key().public_key()) != first.kid  # two keys, two jobs


def test_production_refuses_to_generate(fresh: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fresh.setenv("KEYS_DIR", str(tmp_path))
    fresh.setenv("APP_ENV", "PRODUCTION")
    fresh.setenv("DATABASE_URL", "postgresql+asyncpg://x@db/x?ssl=verify-full")
    fresh.setenv("REDIS_URL", "rediss://cache:6379/0")
    fresh.setenv("BROKER_URL", "rediss://cache:6379/1")
    fresh.setenv("MONGO_URL", "mongodb+srv://x@docs.example.net/")
    fresh.setenv("PUBLIC_KEYS_PARAMETER", "/multidb/keys")
    with pytest.raises(KeyConfigurationError):
        keys.login_key()
    assert not list(tmp_path.iterdir())


def test_keys_from_the_environment(fresh: pytest.MonkeyPatch) -> None:
    key = new_key()
    fresh.setenv("JWT_PRIVATE_KEY", private_pem(key))
    fresh.setenv("JWT_KEY_ID", "2026-11")
    assert keys.signing_key().kid == "2026-11"
    assert list(keys.verification_keys()) == ["2026-11"]


def test_small_keys_are_refused(fresh: pytest.MonkeyPatch) -> None:
    fresh.setenv("JWT_PRIVATE_KEY", private_pem(rsa.generate_private_key(public_exponent=65537, key_size=1024)))
    with pytest.raises(KeyConfigurationError):
        keys.signing_key()


def test_kid_is_the_rfc7638_thumbprint() -> None:
    # RFC 7638, section 3.1 example.
    jwk = {
        "kty": "RSA",
        "e": "AQAB",
        "n": (
            "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV"
            "4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d"
            "0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-c"
            "sFCur-kEgU8awapJzKnqDKgw"
        ),
    }
    assert keys.thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


@mock_aws
def test_deployed_keys_come_from_secrets_manager_and_ssm(fresh: pytest.MonkeyPatch) -> None:
    signing, login, old = new_key(), new_key(), new_key()
    client = boto3.client("secretsmanager")
    secret = client.create_secret(
        Name="multidb/jwt-key", SecretString=json.dumps({"jwt_private_key": private_pem(signing), "jwt_key_id": "k2"})
    )
    login_secret = client.create_secret(
        Name="multidb/login-key", SecretString=json.dumps({"login_private_key": private_pem(login)})
    )
    published = [
        {"kid": "k2", "pem": public_pem(signing.public_key())},
        {"kid": "k1", "pem": public_pem(old.public_key())},
    ]
    boto3.client("ssm").put_parameter(Name="/multidb/jwt-public-keys", Value=json.dumps(published), Type="String")
    fresh.setenv("KEYS_SECRET_ID", secret["ARN"])
    fresh.setenv("LOGIN_KEY_SECRET_ID", login_secret["ARN"])
    fresh.setenv("PUBLIC_KEYS_PARAMETER", "/multidb/jwt-public-keys")
    assert keys.signing_key().kid == "k2"
    assert keys.login_key().public_key().public_numbers() == login.public_key().public_numbers()
    assert set(keys.verification_keys()) == {"k1", "k2"}  # the old key still verifies during rotation
    assert {k["kid"] for k in keys.jwks()["keys"]} == {"k1", "k2"}


@mock_aws
def test_connection_urls_come_from_secrets_manager(fresh: pytest.MonkeyPatch) -> None:
    secret = boto3.client("secretsmanager").create_secret(
        Name="multidb/connections",
        SecretString=json.dumps(
            {"database_url": "postgresql+asyncpg://app:pw@db/app", "redis_url": "redis://cache:6379/1"}
        ),
    )
    fresh.setenv("CONNECTIONS_SECRET_ID", secret["ARN"])
    current = settings.get_settings()
    assert current.database_url == "postgresql+asyncpg://app:pw@db/app"
    assert current.redis_url == "redis://cache:6379/1"
