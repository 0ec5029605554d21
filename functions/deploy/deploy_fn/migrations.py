"""Custom::Migrations: bring the datastores to what this code expects, on every deploy that changes it.

Alembic upgrade, route catalogue sync and the first admin (`infra.deploy.initdb`), then the
MongoDB indexes. Each step is idempotent, so a repeated event changes nothing. Delete
leaves the data alone. A failure fails the deploy, which rolls back; the rollback's Update
names the previous code version while this (newer) code still runs, and must not fail or
downgrade: it is answered without touching the database (Alembic never downgrades here,
so migrations must suit the code before them, i.e. expand first, contract a release later).
"""

import json
import os
from typing import Any

from .cfn import Outcome, Request

PHYSICAL_ID = "multidb-datastores"


def _version(arn: str) -> str:
    return arn.rsplit(":", 1)[-1]


def _admin_password(secrets: Any, secret_id: str) -> str:
    return str(json.loads(secrets.get_secret_value(SecretId=secret_id)["SecretString"])["password"])


def _database_ahead(exc: Exception) -> bool:
    """Alembic's answer when the database carries a revision this code does not know."""
    return "Can't locate revision" in str(exc) or "No such revision" in str(exc)


def run(request: Request, secrets: Any) -> Outcome:
    if request.type == "Delete":
        return Outcome(request.physical_id or PHYSICAL_ID, reason="left the data as it is")
    wanted = _version(str(request.properties.get("CodeVersion", "")))
    running = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "")
    if request.type == "Update" and running not in ("", "$LATEST") and wanted != running:
        return Outcome(
            request.physical_id or PHYSICAL_ID,
            {"Migrated": "false"},
            f"version {running} asked for version {wanted}'s schema (a rollback): the database is left as it is",
        )

    # Settings are read here for the first time in this container, with the admin password.
    os.environ["ADMIN_PASSWORD"] = _admin_password(secrets, str(request.properties["AdminPasswordSecret"]))
    from multidb import runtime
    from multidb.settings import get_settings

    get_settings.cache_clear()
    from infra.deploy import initdb

    try:
        initdb.migrate()
    except Exception as exc:
        if request.type == "Update" and _database_ahead(exc):
            return Outcome(
                request.physical_id or PHYSICAL_ID,
                {"Migrated": "false"},
                f"the database is ahead of this code ({exc}); left as it is",
            )
        raise
    runtime.run(initdb.seed())
    runtime.run(initdb.build_mongo_indexes())
    return Outcome(PHYSICAL_ID, {"Migrated": "true"}, "migrated, catalogue synced, admin ensured, indexes built")
