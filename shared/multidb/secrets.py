"""Deployed secrets from AWS Secrets Manager and SSM Parameter Store, read once per container."""

import json
from functools import lru_cache
from typing import Any


@lru_cache
def secret_json(secret_id: str) -> dict[str, Any]:
    import boto3

    value = boto3.client("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"]
    data = json.loads(value)
    if not isinstance(data, dict):
        raise ValueError("the secret must hold a JSON object")
    return data


@lru_cache
def parameter(name: str) -> str:
    import boto3

    response = boto3.client("ssm").get_parameter(Name=name, WithDecryption=True)
    return str(response["Parameter"]["Value"])
