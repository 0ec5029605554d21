"""Configuration that cannot be read fails closed and fast: the authorizer denies (never a
500), functions answer 503 in the envelope, an AWS endpoint that never answers is given up
on well within a function's timeout, and a fixed configuration counts on the next call."""

import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from infra.local.gateway.invoke import GatewayResponse, LambdaContext
from multidb import secrets
from multidb.secrets import ConfigurationUnavailable
from multidb.settings import get_settings
from tests.conftest import REDIS_URL
from tests.helpers import Api, load_event, reset_clients

pytestmark = pytest.mark.first_pass_only("configuration loading")

AUTHORIZER_TIMEOUT = 5  # the shortest function timeout in template.yaml; a cold start reads two values


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Moto's Secrets Manager, and settings that read their connections from it."""
    with mock_aws():
        secrets._client.cache_clear()
        secrets.secret_json.cache_clear()
        monkeypatch.setenv("CONNECTIONS_SECRET_ID", "multidb/test/connections")
        reset_clients()
        yield boto3.client("secretsmanager", region_name="us-east-1")
        monkeypatch.undo()
        secrets._client.cache_clear()
        secrets.secret_json.cache_clear()
        reset_clients()


def authorize(api: Api, token: str) -> dict[str, Any]:
    event = load_event("authorizer/user_info")
    event["headers"]["authorization"] = f"Bearer {token}"
    return api.gateway.handler("AuthorizerFunction")(event, LambdaContext("AuthorizerFunction"))


@pytest.fixture
def genuine_token() -> str:
    """A valid access token, signed before the configuration goes missing."""
    from multidb.security.tokens import TokenType, issue

    return issue("00000000-0000-0000-0000-000000000001", TokenType.ACCESS, "family", 60)[0]


def test_an_unreadable_connections_secret_denies_and_503s_then_recovers(api: Api, genuine_token: str, aws: Any) -> None:
    token = genuine_token
    assert authorize(api, token) == {"isAuthorized": False}  # the secret does not exist: Deny, not 500
    public = GatewayResponse.from_lambda(api.gateway.invoke("AuthFunction", load_event("auth/login")))
    assert public.status_code == 503
    assert public.json() == {**public.json(), "code": 503, "message": "Service unavailable.", "data": None}

    aws.create_secret(
        Name="multidb/test/connections",
        SecretString=json.dumps({"database_url": os.environ["DATABASE_URL"], "redis_url": REDIS_URL}),
    )
    assert get_settings().database_url == os.environ["DATABASE_URL"]  # a failure was not cached: read again


def test_a_secret_that_is_not_json_is_503_too(aws: Any) -> None:
    aws.create_secret(Name="multidb/test/connections", SecretString="postgresql://not-json")
    with pytest.raises(ConfigurationUnavailable):
        get_settings()


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """An HTTP endpoint that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    server.close()


def test_a_secret_read_against_an_endpoint_that_never_answers_gives_up_in_time(
    silent_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", silent_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    secrets._client.cache_clear()
    secrets.secret_json.cache_clear()
    secrets._client("secretsmanager")  # built first: what is timed is the reads, not botocore's setup
    started = time.monotonic()
    try:
        with pytest.raises(ConfigurationUnavailable):
            secrets.secret_json("multidb/test/connections")
    finally:
        secrets._client.cache_clear()
    elapsed = time.monotonic() - started
    # Two attempts of a 0.8 s read: it waited on the endpoint, and gave up with time to spare
    # for the second read of a cold start (the public keys) within the authorizer's timeout.
    assert secrets.READ_TIMEOUT * secrets.ATTEMPTS <= elapsed < AUTHORIZER_TIMEOUT / 2


def test_every_aws_client_is_bounded() -> None:
    config = secrets.client_config()
    assert (config.connect_timeout, config.read_timeout) == (0.5, 0.8)
    assert config.retries == {"total_max_attempts": 1, "mode": "standard"}  # one retry of ours, 0.1 s later
    from multidb.files import storage

    s3 = storage.get_s3()
    assert (s3.meta.config.connect_timeout, s3.meta.config.read_timeout) == (3, 10)
    assert s3.meta.config.retries["total_max_attempts"] == 2


def test_a_rotated_connections_secret_counts_without_a_cold_start(aws: Any) -> None:
    """Within CONFIG_MAX_AGE the container keeps what it read; after it, the new URLs, and the
    clients follow (they are keyed by their URL)."""
    from multidb.config_cache import max_age
    from multidb.db import get_engine
    from multidb.redis import get_redis
    from multidb.settings import get_settings
    from tests.conftest import BROKER_URL

    url = os.environ["DATABASE_URL"]
    aws.create_secret(
        Name="multidb/test/connections", SecretString=json.dumps({"database_url": url, "redis_url": REDIS_URL})
    )
    engine, redis = get_engine(), get_redis()
    assert str(engine.url).split("@")[-1] == url.split("@")[-1]
    rotated = {"database_url": url + ("?application_name=rotated" if "?" not in url else ""), "redis_url": BROKER_URL}
    aws.put_secret_value(SecretId="multidb/test/connections", SecretString=json.dumps(rotated))
    assert get_settings().redis_url == REDIS_URL  # still what it read, for CONFIG_MAX_AGE

    for cache in (get_settings, secrets.secret_json):
        cache.backdate(max_age() + 1)
    assert get_settings().redis_url == BROKER_URL
    assert get_redis() is not redis
    assert get_engine() is not engine
