"""Cold start is a feature: handlers import only what they use and touch nothing at import."""

import json
import subprocess
import sys

import pytest

from tests.helpers import ROOT

pytestmark = pytest.mark.process

PATHS = [str(ROOT / "shared"), *(str(folder) for folder in sorted((ROOT / "functions").iterdir()))]
API_FUNCTIONS = ["auth_fn.app", "roles_fn.app", "users_fn.app", "routers_fn.app", "tasks_fn.app", "files_fn.app"]


def imported_after(module: str, then: str = "pass", app_env: str = "PRODUCTION") -> set[str]:
    code = (
        f"import sys, json; sys.path[:0] = {PATHS!r}; import {module}; {then}; print(json.dumps(sorted(sys.modules)))"
    )
    env = {"PATH": "/usr/bin:/bin", "APP_ENV": app_env, "REDIS_URL": "redis://127.0.0.1:1/0"}
    # PRODUCTION with no keys configured: importing must not even read settings, let alone fail.
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env, cwd="/")
    return {name.split(".")[0] for name in json.loads(out.stdout)}


def test_the_authorizer_does_not_load_fastapi() -> None:
    loaded = imported_after("authorizer_fn.handler")
    heavy = {"fastapi", "starlette", "mangum", "pydantic", "celery", "beanie", "socketio", "minio", "boto3"}
    assert heavy.isdisjoint(loaded)
    assert "jwt" not in loaded  # imported by the first verification: the cold start's first call


@pytest.mark.parametrize("module", API_FUNCTIONS)
def test_api_functions_load_no_celery_beanie_socketio_minio(module: str) -> None:
    loaded = imported_after(module)
    assert "fastapi" in loaded
    assert {"celery", "beanie", "socketio", "minio", "pymongo", "boto3", "fakeredis"}.isdisjoint(loaded)


@pytest.mark.parametrize("module", ["roles_fn.app", "routers_fn.app", "tasks_fn.app", "files_fn.app", "audit_fn.app"])
def test_functions_behind_the_gateway_load_pyjwt_and_cryptography_only_to_verify_a_token(module: str) -> None:
    """Behind the gateway the caller comes from the authorizer's context: no token to verify."""
    assert {"jwt", "cryptography"}.isdisjoint(imported_after(module))
    verifying = (
        'exec(\'from multidb.security import tokens\\ntry:\\n    tokens.verify("x.y.z", tokens.TokenType.ACCESS)'
        "\\nexcept tokens.Unauthorized:\\n    pass')"
    )
    assert {"jwt", "cryptography"} <= imported_after(module, then=verifying, app_env="TESTING")


def test_the_tasks_function_loads_celery_only_when_a_call_needs_it() -> None:
    assert "celery" not in imported_after("tasks_fn.app")
    loaded = imported_after("tasks_fn.app", then="tasks_fn.service.registered()", app_env="TESTING")
    assert {"celery", "kombu"} <= loaded


def test_the_files_function_loads_boto3_only_when_a_call_needs_it() -> None:
    assert {"boto3", "botocore", "beanie", "pymongo"}.isdisjoint(imported_after("files_fn.app"))
    assert {"boto3", "botocore"} <= imported_after(
        "files_fn.app", then="import multidb.storage as s; s.get_s3()", app_env="TESTING"
    )


@pytest.mark.parametrize("module", ["files_fn.app", "audit_fn.app"])
def test_functions_on_mongodb_load_sql_only_on_a_permission_cache_miss(module: str) -> None:
    assert {"sqlmodel", "sqlalchemy", "asyncpg"}.isdisjoint(imported_after(module))
    # what a page of documents loads: the document repository, without the SQL one
    then = "import multidb.document_repository"
    assert {"sqlmodel", "sqlalchemy", "asyncpg"}.isdisjoint(imported_after(module, then=then, app_env="TESTING"))


def test_importing_handlers_opens_nothing_and_generates_no_key(tmp_path: object) -> None:
    code = (
        f"import sys, socket; sys.path[:0] = {PATHS!r}\n"
        "def refuse(*a, **k): raise AssertionError('network at import')\n"
        "socket.socket.connect = refuse\n"
        "import auth_fn.app, roles_fn.app, users_fn.app, routers_fn.app, tasks_fn.app, files_fn.app\n"
        "import authorizer_fn.handler\n"
        "from multidb.queue import scheduler, tasks\n"
        "import os; print(os.path.exists('.local/keys'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=str(tmp_path))
    assert out.stdout.strip() == "False"
