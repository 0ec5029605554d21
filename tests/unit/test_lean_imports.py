"""Cold start is a feature: handlers import only what they use and touch nothing at import."""

import json
import subprocess
import sys

import pytest

from infra.deploy.template import Function, load
from tests.helpers import ROOT

pytestmark = pytest.mark.process

TEMPLATE = load()
PATHS = [str(ROOT / "shared"), *(str(function.code_uri) for function in TEMPLATE.functions.values())]
AUTHORIZERS = sorted({TEMPLATE.functions[a.function].module for a in TEMPLATE.authorizers.values()})
API_FUNCTIONS = [function.module for function in TEMPLATE.api_functions.values()]
# Where each API function's own data lives: what it may load on a request, never at import.
SQL, MONGODB = "PostgreSQL", "MongoDB"
STORES = {
    "AuthFunction": SQL,
    "RolesFunction": SQL,
    "UsersFunction": SQL,
    "RoutersFunction": SQL,
    "TasksFunction": SQL,  # schedules are rows
    "FilesFunction": MONGODB,
    "AuditFunction": MONGODB,
}


def holds_a_private_key(function: Function) -> bool:
    """Auth signs tokens and, like users, decrypts login passwords: cryptography is theirs at import."""
    return not {"KEYS_SECRET_ID", "LOGIN_KEY_SECRET_ID"}.isdisjoint(function.environment)


BEHIND_THE_GATEWAY = [f.module for f in TEMPLATE.api_functions.values() if not holds_a_private_key(f)]
ON_MONGODB = [TEMPLATE.functions[name].module for name, store in STORES.items() if store == MONGODB]
# Invoked by a schedule or by CloudFormation: the metrics and deploy functions.
UNSEEN = [f.module for name, f in TEMPLATE.functions.items() if name not in TEMPLATE.gateway_functions]


def imported_after(module: str, then: str = "pass", app_env: str = "PRODUCTION") -> set[str]:
    code = (
        f"import sys, json; sys.path[:0] = {PATHS!r}; import {module}; {then}; print(json.dumps(sorted(sys.modules)))"
    )
    env = {"PATH": "/usr/bin:/bin", "APP_ENV": app_env, "REDIS_URL": "redis://127.0.0.1:1/0"}
    # PRODUCTION with no keys configured: importing must not even read settings, let alone fail.
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env, cwd="/")
    return {name.split(".")[0] for name in json.loads(out.stdout)}


def test_every_function_serving_routes_says_where_its_data_lives() -> None:
    assert set(STORES) == set(TEMPLATE.api_functions)
    assert len(API_FUNCTIONS) > len(BEHIND_THE_GATEWAY) > len(ON_MONGODB) > 0
    assert UNSEEN


@pytest.mark.parametrize("module", AUTHORIZERS)
def test_the_authorizer_does_not_load_fastapi(module: str) -> None:
    loaded = imported_after(module)
    heavy = {"fastapi", "starlette", "mangum", "pydantic", "celery", "beanie", "socketio", "minio", "boto3"}
    assert heavy.isdisjoint(loaded)
    assert "jwt" not in loaded  # imported by the first verification: the cold start's first call


@pytest.mark.parametrize("module", API_FUNCTIONS)
def test_api_functions_load_no_celery_beanie_socketio_minio(module: str) -> None:
    loaded = imported_after(module)
    assert "fastapi" in loaded
    assert {"celery", "beanie", "socketio", "minio", "pymongo", "boto3", "fakeredis"}.isdisjoint(loaded)


@pytest.mark.parametrize("module", BEHIND_THE_GATEWAY)
def test_functions_behind_the_gateway_load_pyjwt_and_cryptography_only_to_verify_a_token(module: str) -> None:
    """Behind the gateway the caller comes from the authorizer's context: no token to verify."""
    assert {"jwt", "cryptography"}.isdisjoint(imported_after(module))
    verifying = (
        'exec(\'from multidb.security import tokens\\ntry:\\n    tokens.verify("x.y.z", tokens.TokenType.ACCESS)'
        "\\nexcept tokens.Unauthorized:\\n    pass')"
    )
    assert {"jwt", "cryptography"} <= imported_after(module, then=verifying, app_env="TESTING")


@pytest.mark.parametrize("module", UNSEEN)
def test_functions_api_gateway_does_not_invoke_load_at_most_the_settings_reader(module: str) -> None:
    """What a call needs (a broker, Alembic, boto3) is imported by the call."""
    third_party = {
        name
        for name in imported_after(module) - sys.stdlib_module_names
        if not name.startswith("_") and name not in {"multidb", module.split(".")[0]}
    }
    assert third_party <= {"msgspec", "typing_extensions"}


def test_the_tasks_function_loads_celery_only_when_a_call_needs_it() -> None:
    assert "celery" not in imported_after("tasks_fn.app")
    loaded = imported_after("tasks_fn.app", then="tasks_fn.service.registered()", app_env="TESTING")
    assert {"celery", "kombu"} <= loaded


def test_the_files_function_loads_boto3_only_when_a_call_needs_it() -> None:
    assert {"boto3", "botocore", "beanie", "pymongo"}.isdisjoint(imported_after("files_fn.app"))
    assert {"boto3", "botocore"} <= imported_after(
        "files_fn.app", then="import multidb.files.storage as s; s.get_s3()", app_env="TESTING"
    )


@pytest.mark.parametrize("module", ON_MONGODB)
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
        f"import {', '.join(function.module for function in TEMPLATE.functions.values())}\n"
        "from multidb.queue import scheduler, tasks\n"
        "import os; print(os.path.exists('.local/keys'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=str(tmp_path))
    assert out.stdout.strip() == "False"
