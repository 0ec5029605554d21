"""`sam build` succeeds, and each built handler imports and answers a stored event in a clean
Python 3.12 whose sys.path holds only the built function and layer folders (as in Lambda)."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import ADMIN_PASSWORD
from tests.helpers import EVENTS, ROOT, Api

SAM = ROOT / ".venv-sam" / "bin" / "sam"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    build_dir = tmp_path_factory.mktemp("sam-build")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "SAM_CLI_TELEMETRY": "0"}
    result = subprocess.run(
        [str(SAM), "build", "--build-dir", str(build_dir), "--template-file", "template.yaml"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Build Succeeded" in result.stdout + result.stderr
    return build_dir


def invoke_clean(built: Path, function: str, handler: str, event: dict[str, object]) -> dict[str, object]:
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
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
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


def test_the_built_layer_holds_the_package_and_no_dev_tools(built: Path) -> None:
    layer = built / "SharedLayer" / "python"
    assert (layer / "multidb" / "catalogue.json").exists()
    assert (layer / "fastapi").is_dir()
    for unwanted in ("secantusdb", "moto", "fakeredis", "pytest", "alembic", "celery", "socketio"):
        assert not (layer / unwanted).exists(), unwanted


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
