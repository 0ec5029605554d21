"""A client generated from the merged OpenAPI document (openapi-python-client, as a frontend
team would) builds without a warning and parses every answer a client can receive: the
function's error envelope and API Gateway's own `{"message": ...}` denials alike."""

import importlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from infra.deploy.template import load
from infra.local.gateway.docs import merged_openapi

pytestmark = pytest.mark.process

PACKAGE = "multidb_generated_client"
LIST_ROLES = "list_roles_api_v1_roles_get"


@pytest.fixture(scope="module")
def client_package(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("generated")
    document = root / "openapi.json"
    document.write_text(json.dumps(merged_openapi(load())))
    config = root / "config.json"
    config.write_text(json.dumps({"package_name_override": PACKAGE, "post_hooks": []}))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "openapi_python_client",
            "generate",
            "--path",
            str(document),
            "--output-path",
            str(root / PACKAGE),
            "--meta",
            "none",
            "--config",
            str(config),
            "--fail-on-warning",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "warning" not in output.lower(), output
    sys.path.insert(0, str(root))
    try:
        yield root / PACKAGE
    finally:
        sys.path.remove(str(root))
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"{PACKAGE}.{name}")


def _answer(status: int, body: dict[str, Any]) -> Any:
    """What the generated `list roles` call makes of this answer."""
    client_module = _module("client")
    route = _module(f"api.role.{LIST_ROLES}")
    transport = httpx.MockTransport(lambda request: httpx.Response(status, json=body))
    client = client_module.Client(
        base_url="https://api.example", raise_on_unexpected_status=False, httpx_args={"transport": transport}
    )
    return route.sync_detailed(client=client).parsed


def test_a_gateway_denial_parses_into_its_own_type(client_package: Path) -> None:
    models = _module("models")
    for status, message in [(403, "Forbidden"), (401, "Unauthorized")]:
        parsed = _answer(status, {"message": message})
        assert isinstance(parsed, models.GatewayDenial)
        assert parsed.message == message


def test_an_envelope_401_parses_as_the_error_envelope_with_its_names(client_package: Path) -> None:
    """The envelope of a status is its own type: `ErrorResponse`'s fields, and `error` one of
    the names the route lists for that status (an enum the client can switch on)."""
    models = _module("models")
    body = {"code": 401, "error": "token_expired", "message": "token expired", "ts": 1, "data": None}
    parsed = _answer(401, body)
    assert not isinstance(parsed, models.GatewayDenial)
    assert (parsed.code, parsed.error, parsed.message) == (401, "token_expired", "token expired")
    names = {member.value for member in type(parsed.error)}
    assert {"missing_bearer_token", "token_expired", "token_revoked"} <= names
    assert "permission_denied" not in names  # a 403's
