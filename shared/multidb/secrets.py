"""Deployed secrets from AWS Secrets Manager and SSM Parameter Store, kept for CONFIG_MAX_AGE
(see config_cache.py: a rotated secret counts without a cold start).

Every read is bounded well under a function's timeout: 0.5 s to connect, 0.8 s to read, and
one retry after 0.1 s when the network failed or the service throttled (these services
answer in tens of milliseconds). In a VPC whose endpoints are missing a cold start must fail
fast and closed, not hang until Lambda kills it: the authorizer has 5 s and reads a secret
and a parameter, at most about 1.7 s each. botocore's own retries (jittered exponential
backoff, up to seconds) are off. A read that fails raises `ConfigurationUnavailable` (503;
the authorizer denies), and is tried again on the next call.
"""

import json
import time
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from .config_cache import expiring
from .errors import ServiceUnavailable
from .logs import get_logger

if TYPE_CHECKING:
    from botocore.config import Config

log = get_logger("secrets")

CONNECT_TIMEOUT = 0.5
READ_TIMEOUT = 0.8
ATTEMPTS = 2
RETRY_PAUSE = 0.1
_RETRYABLE_CODES = {"ThrottlingException", "Throttling", "TooManyRequestsException", "InternalServiceError"}


class ConfigurationUnavailable(ServiceUnavailable, error="configuration_unavailable"):
    """Settings, a secret or a parameter could not be read."""


def client_config() -> "Config":
    """The botocore settings of every AWS SDK client this module makes (retries are ours)."""
    from botocore.config import Config

    return Config(
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        retries={"total_max_attempts": 1, "mode": "standard"},
    )


_made: list[Any] = []  # what `close` closes


@lru_cache
def _client(service: str) -> Any:
    import boto3

    client = boto3.client(service, config=client_config())  # type: ignore[call-overload]
    _made.append(client)
    return client


def close() -> None:
    """Close the Secrets Manager and SSM clients' pools and forget them (before a snapshot)."""
    _client.cache_clear()
    while _made:
        _made.pop().close()


def _retryable(exc: Exception) -> bool:
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code")) in _RETRYABLE_CODES
    return isinstance(exc, ConnectionError | HTTPClientError)  # timeouts and refused connections


def _read[T](what: str, call: Callable[[], T]) -> T:
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return call()
        except Exception as exc:
            if attempt < ATTEMPTS and _retryable(exc):
                time.sleep(RETRY_PAUSE)
                continue
            log.error("could not read a %s: %s", what, type(exc).__name__)
            raise ConfigurationUnavailable() from exc
    raise AssertionError("unreachable")


@expiring
def secret_json(secret_id: str) -> dict[str, Any]:
    value = _read("secret", lambda: _client("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"])
    try:
        data = json.loads(value)
    except ValueError as exc:
        log.error("a secret does not hold JSON")
        raise ConfigurationUnavailable() from exc
    if not isinstance(data, dict):
        log.error("a secret does not hold a JSON object")
        raise ConfigurationUnavailable()
    return data


@expiring
def parameter(name: str) -> str:
    response = _read("parameter", lambda: _client("ssm").get_parameter(Name=name, WithDecryption=True))
    return str(response["Parameter"]["Value"])
