"""The built handlers import only what they use: tests/unit/test_lean_imports.py, on the `sam
build` artifacts. Each handler is imported in a clean interpreter whose sys.path holds only
its function's folder and the layer, as in Lambda (none of the venv, which holds more), with
the production environment and no configuration (importing must not even read settings),
and every package it loaded from the artifacts must be one its function uses."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from infra.deploy.template import load

pytestmark = [pytest.mark.sam, pytest.mark.infra, pytest.mark.first_pass_only("the build artifacts")]

# What reading the configuration takes: msgspec, which imports typing_extensions when it is
# installed (python-dotenv only outside Lambda, so never here).
SETTINGS = {"msgspec", "typing_extensions"}
# Pydantic: request and response models, so every FastAPI function, and SQLModel.
PYDANTIC = {"pydantic", "pydantic_core", "annotated_types", "typing_extensions", "typing_inspection"}
# Verifying JWTs (RS256); cryptography's serialization module imports bcrypt when it is installed.
TOKENS = {"jwt", "cryptography", "_cffi_backend", "bcrypt"}
# An API function: FastAPI on Mangum (FastAPI imports opentelemetry's API, and email-validator and
# python-multipart when installed), the caller check on Redis.
API = (
    SETTINGS
    | PYDANTIC
    | TOKENS
    | {
        "fastapi",
        "starlette",
        "mangum",
        "anyio",
        "idna",
        "annotated_doc",
        "opentelemetry",
        "email_validator",
        "python_multipart",
        "redis",
    }
)
SQL = {"sqlmodel", "sqlalchemy", "greenlet"}
# Loaded when a call needs them, never at import: Celery (tasks), Beanie and PyMongo (files,
# audit), boto3 (files), asyncpg (the first query), and nothing of the containers or the tests.
ALLOWED: dict[str, set[str]] = {
    "AuthorizerFunction": SETTINGS | TOKENS | {"redis"},  # SQL on a permission-cache miss only
    "AuthFunction": API | SQL,
    "UsersFunction": API | SQL,
    "RolesFunction": API | SQL,
    "RoutersFunction": API | SQL,
    "TasksFunction": API | SQL,  # schedules are rows
    "FilesFunction": API,  # MongoDB and S3; SQL on a permission-cache miss only
    "AuditFunction": API,  # MongoDB; SQL on a permission-cache miss only
    "MetricsFunction": SETTINGS | {"redis"},
    "DeployFunction": set(),  # its steps import Alembic and the rest when CloudFormation calls
}
FUNCTIONS = load().functions


def loaded_packages(built: Path, function: str, module: str) -> set[str]:
    """The top-level packages of the artifacts that importing `module` loads (first-party ones too)."""
    roots = [str(built / function), str(built / "SharedLayer" / "python")]
    code = textwrap.dedent(
        f"""
        import json, socket, sys
        sys.path[:] = [p for p in sys.path if "site-packages" not in p and p not in ("", ".")]
        roots = {roots!r}
        sys.path[:0] = roots

        def refuse(*args, **kwargs):
            raise AssertionError("a connection while importing the handler")

        socket.socket.connect = refuse
        import {module}
        files = [getattr(m, "__file__", None) or "" for m in list(sys.modules.values())]
        found = {{f[len(r) + 1 :].split("/")[0].split(".")[0] for f in files for r in roots if f.startswith(r + "/")}}
        print(json.dumps(sorted(found)))
        """
    )
    env = {"PATH": "/usr/bin:/bin", "APP_ENV": "PRODUCTION", "REDIS_URL": "redis://127.0.0.1:1/0"}
    # Bytecode may be written: the next handler imports the layer faster, and the bench copies
    # the artifacts without it.
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, env=env, cwd=str(built)
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return set(json.loads(result.stdout))


def test_every_function_of_the_template_says_what_it_may_load() -> None:
    assert set(ALLOWED) == set(FUNCTIONS)


@pytest.mark.parametrize("function", sorted(ALLOWED))
def test_a_built_handler_loads_only_packages_its_function_uses(built: Path, function: str) -> None:
    module = FUNCTIONS[function].module
    first_party = {"multidb", "infra", module.split(".")[0]}
    loaded = loaded_packages(built, function, module) - first_party
    unused = loaded - ALLOWED[function]
    assert not unused, f"importing {module} loads {sorted(unused)}: import them in the calls that need them"


def test_the_check_sees_what_a_handler_imports(built: Path, tmp_path: Path) -> None:
    """A handler importing SQLModel at module level shows it, and SQLAlchemy under it."""
    (tmp_path / "LeakyFunction" / "leaky_fn").mkdir(parents=True)
    (tmp_path / "LeakyFunction" / "leaky_fn" / "__init__.py").write_text("")
    (tmp_path / "LeakyFunction" / "leaky_fn" / "app.py").write_text("import sqlmodel\n")
    os.symlink(built / "SharedLayer", tmp_path / "SharedLayer")
    loaded = loaded_packages(tmp_path, "LeakyFunction", "leaky_fn.app")
    assert {"sqlmodel", "sqlalchemy"} <= loaded - ALLOWED["FilesFunction"]
