"""`sam build` succeeds, and each built handler imports and answers a stored event in a clean
Python 3.12 whose sys.path holds only the built function and layer folders (as in Lambda)."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.benchmarks.build import native_libraries
from tests.conftest import ADMIN_PASSWORD
from tests.helpers import EVENTS, ROOT, Api
from tests.integration.conftest import build_for

pytestmark = [pytest.mark.infra, pytest.mark.first_pass_only("the build artifacts")]


@pytest.fixture(scope="module")
def built_arm64() -> Path:
    """Built for Graviton, the template's default, on this x86 machine without Docker (the
    x86_64 build is the session's `built`; both: tests/integration/conftest.py)."""
    return build_for("arm64")


@pytest.mark.parametrize("architecture", ["arm64", "x86_64"])
def test_every_native_library_is_built_for_the_functions_cpu(architecture: str, request: pytest.FixtureRequest) -> None:
    build = request.getfixturevalue("built_arm64" if architecture == "arm64" else "built")
    for artifact in ("SharedLayer", "DeployFunction"):
        libraries = native_libraries(build / artifact)
        assert libraries, artifact  # pydantic-core, asyncpg, cryptography, markupsafe…
        wrong = {path: cpu for path, cpu in libraries.items() if cpu != architecture}
        assert not wrong, wrong
    assert any("asyncpg" in path for path in native_libraries(build / "SharedLayer"))


def test_the_built_deploy_function_carries_alembic_and_infra_under_their_import_paths(built: Path) -> None:
    deploy = built / "DeployFunction"
    for path in (
        "deploy_fn/handler.py",
        "infra/deploy/initdb.py",
        "infra/deploy/keys.py",
        "infra/deploy/alembic.ini",
        "alembic",
        "mako",
    ):
        assert (deploy / path).exists(), path
    assert sorted(p.name for p in (deploy / "infra" / "deploy" / "migrations" / "versions").glob("*.py")) == sorted(
        p.name for p in (ROOT / "infra" / "deploy" / "migrations" / "versions").glob("*.py")
    )
    for unwanted in ("sqlalchemy", "multidb", "local", "services", "pytest"):  # the layer's, or not for Lambda
        assert not (deploy / unwanted).exists(), unwanted
        assert not (deploy / "infra" / unwanted).exists(), unwanted
    code = textwrap.dedent(
        f"""
        import sys
        sys.path = [p for p in sys.path if "site-packages" not in p and p not in ("", ".")]
        sys.path[:0] = [{str(deploy)!r}, {str(built / "SharedLayer" / "python")!r}]
        import alembic.command, deploy_fn.handler, deploy_fn.keys, deploy_fn.migrations, infra.deploy.initdb
        assert infra.deploy.initdb.ALEMBIC_INI.is_file(), infra.deploy.initdb.ALEMBIC_INI
        assert alembic.command.__file__.startswith({str(deploy)!r})
        print("ok")
        """
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, env=env, cwd=str(built), timeout=120
    )
    assert result.stdout.strip() == "ok", result.stderr[-3000:]


def invoke_clean(
    built: Path, function: str, handler: str, event: dict[str, object], env: dict[str, str] | None = None
) -> dict[str, object]:
    module, attribute = handler.rsplit(".", 1)
    code = textwrap.dedent(
        f"""
        import json, sys
        sys.path = [p for p in sys.path if "site-packages" not in p and p not in ("", ".")]
        sys.path[:0] = [{str(built / function)!r}, {str(built / "SharedLayer" / "python")!r}]
        from {module} import {attribute} as handler
        event = json.loads(sys.stdin.read())
        print("RESULT" + json.dumps(handler(event, None)))
        """
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")} | (env or {})
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code],
        input=json.dumps(event),
        capture_output=True,
        text=True,
        env=env,
        cwd=str(built),
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    line = next(line for line in result.stdout.splitlines() if line.startswith("RESULT"))
    return json.loads(line.removeprefix("RESULT"))  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("function", "module"),
    [
        ("AuthFunction", "auth_fn.app"),
        # and what its first decision imports: PyJWT with the keys, redis-py
        ("AuthorizerFunction", "authorizer_fn.handler, multidb.security.keys, jwt, redis.asyncio"),
    ],
)
def test_the_build_ships_the_bytecode_of_every_module_a_handler_imports(
    built: Path, function: str, module: str
) -> None:
    """Lambda's code folders are read-only: a module without shipped bytecode is compiled at
    every cold start. `make build` writes unchecked-hash .pyc files (flags 1 in the header);
    one an import wrote here would be timestamp-based (flags 0), so it cannot pass for one."""
    roots = [str(built / function), str(built / "SharedLayer" / "python")]
    code = textwrap.dedent(
        f"""
        import importlib.util, json, sys
        sys.path[:] = [p for p in sys.path if "site-packages" not in p and p not in ("", ".")]
        sys.path[:0] = {roots!r}
        import {module}
        shipped, missing = 0, []
        for loaded in list(sys.modules.values()):
            source = getattr(loaded, "__file__", None) or ""
            if not source.endswith(".py") or not source.startswith(tuple({roots!r})):
                continue
            try:
                with open(importlib.util.cache_from_source(source), "rb") as cached:
                    header = cached.read(8)
            except FileNotFoundError:
                header = b""
            if header[:4] == importlib.util.MAGIC_NUMBER and int.from_bytes(header[4:8], "little") == 1:
                shipped += 1
            else:
                missing.append(loaded.__name__)
        print(json.dumps({{"shipped": shipped, "missing": missing}}))
        """
    )
    env = {"PATH": "/usr/bin:/bin", "APP_ENV": "PRODUCTION", "REDIS_URL": "redis://127.0.0.1:1/0"}
    result = subprocess.run([sys.executable, "-I", "-S", "-B", "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout)
    assert found["shipped"] > 50  # PyJWT, cryptography, msgspec, … and multidb (FastAPI's too for auth)
    assert found["missing"] == []


def test_the_built_layer_holds_the_package_and_no_dev_tools(built: Path) -> None:
    layer = built / "SharedLayer" / "python"
    assert (layer / "multidb" / "catalogue.json").exists()
    assert (layer / "fastapi").is_dir()
    for unwanted in ("secantusdb", "moto", "fakeredis", "pytest", "alembic", "celery", "socketio"):
        assert not (layer / unwanted).exists(), unwanted
    # What functions use to reach the Socket.IO server, and nothing of the server itself
    # (infra/services/realtime): no Lambda serves client events.
    assert (layer / "multidb" / "realtime.py").is_file()
    assert (layer / "multidb" / "notices.py").is_file()
    assert not (layer / "multidb" / "sockets").exists()
    assert not (layer / "infra").exists()


def test_the_built_auth_function_answers_its_stored_event(built: Path) -> None:
    event = json.loads((EVENTS / "auth" / "get_public_key.json").read_text())
    response = invoke_clean(built, "AuthFunction", "auth_fn.app.handler", event)
    assert response["statusCode"] == 200
    assert json.loads(str(response["body"]))["data"]["publicKey"].startswith("-----BEGIN PUBLIC KEY-----")


@pytest.mark.parametrize(
    ("function", "handler", "event"),
    [
        ("RolesFunction", "roles_fn.app.handler", "roles/list_roles"),
        ("UsersFunction", "users_fn.app.handler", "users/list_users"),
        ("RoutersFunction", "routers_fn.app.handler", "routers/backend_routes"),
        ("TasksFunction", "tasks_fn.app.handler", "tasks/list_tasks"),
    ],
)
def test_the_built_admin_functions_answer_their_stored_events(
    built: Path, function: str, handler: str, event: str
) -> None:
    """Invoked directly with the stored placeholder token, each refuses it itself: 401 in the envelope."""
    stored = json.loads((EVENTS / f"{event}.json").read_text())
    response = invoke_clean(built, function, handler, stored)
    assert response["statusCode"] == 401
    assert json.loads(str(response["body"]))["code"] == 401


def test_the_built_authorizer_denies_its_stored_event_without_a_token(built: Path) -> None:
    event = json.loads((EVENTS / "authorizer" / "no_token.json").read_text())
    assert invoke_clean(built, "AuthorizerFunction", "authorizer_fn.handler.handler", event) == {"isAuthorized": False}


def test_the_built_authorizer_allows_a_real_token(built: Path, api: Api) -> None:
    token = api.login("admin", ADMIN_PASSWORD).access
    text = (EVENTS / "authorizer" / "user_info.json").read_text().replace("<access-token>", token)
    decision = invoke_clean(built, "AuthorizerFunction", "authorizer_fn.handler.handler", json.loads(text))
    assert decision["isAuthorized"] is True


def test_the_built_metrics_function_publishes_the_queue_depth_from_a_real_broker(built: Path) -> None:
    """Invoked as EventBridge invokes it each minute, against a broker holding three queued tasks."""
    import redis

    from tests.conftest import SPARE_URL

    scheduled = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
    with redis.Redis.from_url(SPARE_URL) as broker:
        broker.flushdb()
        broker.lpush("celery", "one", "two", "three")
        try:
            figures = invoke_clean(
                built, "MetricsFunction", "metrics_fn.handler.handler", scheduled, {"BROKER_URL": SPARE_URL}
            )
        finally:
            broker.flushdb()
    assert figures == {"QueuedTasks": 3, "ReservedTasks": 0}
