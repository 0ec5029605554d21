"""Deployed secrets from AWS Secrets Manager and SSM Parameter Store, read once per container.

Every call is bounded well under a function's timeout (1 s to connect, 1 s to read, two
attempts in all; these services answer in tens of milliseconds): in a VPC whose endpoints
are missing, a cold start must fail fast and closed, not hang until Lambda kills it (the
authorizer has 5 s, and reads a secret and a parameter). A read that fails raises `ConfigurationUnavailable` (503;
the authorizer denies), and is tried again on the next call.
"""

import json
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from .errors import ServiceUnavailable
from .logs import get_logger

if TYPE_CHECKING:
    from botocore.config import Config

log = get_logger("secrets")

CONNECT_TIMEOUT = 1
READ_TIMEOUT = 1
TOTAL_ATTEMPTS = 2


class ConfigurationUnavailable(ServiceUnavailable):
    """Settings, a secret or a parameter could not be read: nothing can be served safely."""

    message = "Service unavailable."
    error = "configuration_unavailable"


def client_config() -> "Config":
    """The botocore settings of every AWS SDK client this package makes."""
    from botocore.config import Config

    return Config(
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        retries={"total_max_attempts": TOTAL_ATTEMPTS, "mode": "standard"},
    )


@lru_cache
def _client(service: str) -> Any:
    import boto3

    return boto3.client(service, config=client_config())  # type: ignore[call-overload]


@lru_cache
def secret_json(secret_id: str) -> dict[str, Any]:
    try:
        value = _client("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"]
        data = json.loads(value)
    except Exception as exc:
        log.error("could not read a secret: %s", type(exc).__name__)
        raise ConfigurationUnavailable() from exc
    if not isinstance(data, dict):
        log.error("a secret does not hold a JSON object")
        raise ConfigurationUnavailable()
    return data


@lru_cache
def parameter(name: str) -> str:
    try:
        response = _client("ssm").get_parameter(Name=name, WithDecryption=True)
    except Exception as exc:
        log.error("could not read a parameter: %s", type(exc).__name__)
        raise ConfigurationUnavailable() from exc
    return str(response["Parameter"]["Value"])
