"""infra.deploy.keys against Secrets Manager and SSM (moto): init, rotate, and tokens across a rotation."""

import uuid
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from infra.deploy import keys as deploy_keys
from multidb import settings
from multidb.config_cache import Expiring, max_age
from multidb.errors import Unauthorized
from multidb.security import keys
from multidb.security.tokens import TokenType, issue, verify

pytestmark = pytest.mark.infra  # the deploy tooling against moto

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


def older(seconds: float, *caches: Expiring[..., object]) -> None:
    """Make what these caches hold `seconds` older, as if that much time had passed."""
    for cache in caches:
        cache.backdate(seconds)


def test_tokens_survive_a_rotation_and_warm_containers_learn_the_new_key(aws: tuple[object, object]) -> None:
    old_kid = deploy_keys.init(*aws, SECRET, LOGIN, PARAMETER)
    old_token, _ = issue(str(uuid.uuid4()), TokenType.ACCESS, "f", 300)
    verify(old_token, TokenType.ACCESS)  # a warm verifier now holds [old]

    new_kid = deploy_keys.rotate(*aws, SECRET, PARAMETER)
    assert new_kid != old_kid
    assert keys.signing_key().kid == old_kid  # a warm signer keeps its key for CONFIG_MAX_AGE...
    older(max_age() + 1, keys.signing_key, keys.secrets.secret_json)
    assert keys.signing_key().kid == new_kid  # ...then reads the secret again: no cold start needed
    new_token, _ = issue(str(uuid.uuid4()), TokenType.ACCESS, "f", 300)

    older(61, keys.secrets.parameter)  # the warm verifier read the published keys over a minute ago
    verify(new_token, TokenType.ACCESS)  # unknown kid: it reads them again
    verify(old_token, TokenType.ACCESS)  # the previous key is still published

    deploy_keys.rotate(*aws, SECRET, PARAMETER)  # a second rotation drops the oldest key
    keys.reset_cache()
    with pytest.raises(Unauthorized):
        verify(old_token, TokenType.ACCESS)


def test_made_up_kids_read_the_published_keys_at_most_once_a_minute(
    aws: tuple[object, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    deploy_keys.init(*aws, SECRET, LOGIN, PARAMETER)
    keys.verification_keys()
    reads = []
    load = keys.secrets.parameter.load
    monkeypatch.setattr(keys.secrets.parameter, "load", lambda name: reads.append(name) or load(name))
    for _ in range(5):
        assert keys.verification_keys(refresh=True)  # a token naming a kid nobody published
    assert reads == []  # the list was read less than a minute ago
    older(61, keys.secrets.parameter)
    keys.verification_keys(refresh=True)
    assert reads == [PARAMETER]


def test_behind_the_gateway_a_rotation_is_learned_and_a_retired_key_refused(aws: tuple[object, object]) -> None:
    """`published.is_published`, which functions run on a cached decision's `kid`, follows the
    SSM parameter as `verify` does: an unknown kid reads it again, at most once a minute."""
    from multidb.security.published import is_published

    old_kid = deploy_keys.init(*aws, SECRET, LOGIN, PARAMETER)
    assert is_published(old_kid)
    new_kid = deploy_keys.rotate(*aws, SECRET, PARAMETER)
    assert not is_published(new_kid)  # read less than a minute ago: not read again yet
    older(61, keys.secrets.parameter)
    assert is_published(new_kid)
    assert is_published(old_kid)
    deploy_keys.rotate(*aws, SECRET, PARAMETER)  # the oldest key is retired...
    older(max_age() + 1, keys.secrets.parameter)  # ...and counts until the list is read again
    assert not is_published(old_kid)
