"""infra.keys against Secrets Manager and SSM (moto): init, rotate, and tokens across a rotation."""

import uuid
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from infra import keys as deploy_keys
from multidb import settings
from multidb.errors import Unauthorized
from multidb.security import keys
from multidb.security.tokens import TokenType, issue, verify

SECRET, LOGIN, PARAMETER = "multidb/test/jwt-key", "multidb/test/login-key", "/multidb/test/jwt-public-keys"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[object, object]]:
    with mock_aws():
        secrets, ssm = boto3.client("secretsmanager"), boto3.client("ssm")
        monkeypatch.setenv("KEYS_SECRET_ID", SECRET)
        monkeypatch.setenv("LOGIN_KEY_SECRET_ID", LOGIN)
        monkeypatch.setenv("PUBLIC_KEYS_PARAMETER", PARAMETER)
        settings.get_settings.cache_clear()
        keys.reset_cache()
        yield secrets, ssm
    monkeypatch.undo()
    settings.get_settings.cache_clear()
    keys.reset_cache()


def test_init_is_idempotent(aws: tuple[object, object]) -> None:
    first = deploy_keys.init(*aws, SECRET, LOGIN, PARAMETER)
    assert deploy_keys.init(*aws, SECRET, LOGIN, PARAMETER) == first
    assert keys.signing_key().kid == first
    assert list(keys.verification_keys()) == [first]
    assert keys.login_key().key_size == 2048
    assert keys.kid_of(keys.login_key().public_key()) != first


def test_tokens_survive_a_rotation_and_warm_verifiers_learn_the_new_kid(aws: tuple[object, object]) -> None:
    old_kid = deploy_keys.init(*aws, SECRET, LOGIN, PARAMETER)
    old_token, _ = issue(str(uuid.uuid4()), TokenType.ACCESS, "f", 300)
    verify(old_token, TokenType.ACCESS)  # a warm verifier now caches [old]

    new_kid = deploy_keys.rotate(*aws, SECRET, PARAMETER)
    assert new_kid != old_kid
    keys.signing_key.cache_clear()  # a new auth container signs with the new key
    keys.secrets.secret_json.cache_clear()
    new_token, _ = issue(str(uuid.uuid4()), TokenType.ACCESS, "f", 300)
    assert keys.signing_key().kid == new_kid

    keys._verification = (0.0, keys._verification[1])  # type: ignore[index]  # the minute has passed
    verify(new_token, TokenType.ACCESS)  # unknown kid: the verifier re-reads the published keys
    verify(old_token, TokenType.ACCESS)  # the previous key is still published

    deploy_keys.rotate(*aws, SECRET, PARAMETER)  # a second rotation drops the oldest key
    keys.reset_cache()
    with pytest.raises(Unauthorized):
        verify(old_token, TokenType.ACCESS)
