"""Lambda entry point: one CloudFormation custom resource event in, one answer out.

Importing this module opens nothing; each step imports what it uses when it runs.
"""

import logging
from functools import lru_cache
from typing import Any

from .cfn import Context, Outcome, Request, serve

# Our own logger only: the local gateway and the catalogue import every handler in one process.
logging.getLogger("deploy_fn").setLevel(logging.INFO)


@lru_cache
def _clients() -> tuple[Any, Any]:
    """Secrets Manager and SSM with timeouts well inside the function's (reused while warm)."""
    import boto3
    from botocore.config import Config

    config = Config(connect_timeout=5, read_timeout=10, retries={"max_attempts": 3, "mode": "standard"})
    return boto3.client("secretsmanager", config=config), boto3.client("ssm", config=config)


def _keys(request: Request) -> Outcome:
    from . import keys

    secrets, ssm = _clients()
    return keys.run(request, secrets, ssm)


def _migrations(request: Request) -> Outcome:
    from . import migrations

    secrets, _ = _clients()
    return migrations.run(request, secrets)


STEPS = {"Custom::Keys": _keys, "Custom::Migrations": _migrations}


def handler(event: dict[str, Any], context: Context) -> dict[str, str]:
    status = serve(event, context, STEPS.get(str(event.get("ResourceType"))))
    return {"Status": status}
