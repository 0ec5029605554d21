"""template.yaml: valid for SAM, wired as the contracts say, one with the catalogue (cfn-lint: test_stacks)."""

import json
import subprocess
from functools import cache
from typing import Any

import pytest

from infra.deploy.template import load
from multidb.rbac import Access, catalogue, code_from_route_key
from tests.helpers import ROOT

pytestmark = [pytest.mark.infra, pytest.mark.first_pass_only("the templates")]

SAM_VENV = ROOT / ".venv-sam" / "bin"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)


@cache
def translated() -> dict[str, Any]:
    result = run(str(SAM_VENV / "python"), "tests/integration/sam_translate.py", "template.yaml")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_sam_validate_lint_passes_on_the_root_and_the_services_and_monitoring_stacks() -> None:
    """One `sam validate --lint` per template, run side by side (each takes seconds to start)."""
    from concurrent.futures import ThreadPoolExecutor

    templates = [
        "template.yaml",
        *(f"infra/deploy/stacks/{name}.yaml" for name in ("network", "data", "services", "monitoring")),
    ]
    with ThreadPoolExecutor(len(templates)) as pool:
        results = pool.map(lambda t: run(str(SAM_VENV / "sam"), "validate", "--lint", "--template-file", t), templates)
    for template, result in zip(templates, results, strict=True):
        assert result.returncode == 0, (template, result.stdout + result.stderr)
        assert "is a valid SAM Template" in result.stdout + result.stderr, template


def test_the_authorizer_cache_key_includes_the_route() -> None:
    authorizer = translated()["authorizers"]["LambdaAuthorizer"]
    assert authorizer["identitySource"] == ["$request.header.Authorization", "$context.routeKey"]
    assert authorizer["authorizerPayloadFormatVersion"] == "2.0"
    assert authorizer["enableSimpleResponses"] is True
    assert authorizer["type"] == "request"


def test_api_gateway_may_invoke_the_authorizer() -> None:
    """Without this permission every protected route fails in AWS; nothing local would notice."""
    allowed = [p for p in translated()["permissions"] if "AuthorizerFunction" in json.dumps(p["function"])]
    assert len(allowed) == 1
    assert "/authorizers/" in allowed[0]["source"]


def test_routes_are_guarded_exactly_as_the_catalogue_says() -> None:
    routes = translated()["routes"]
    assert {code_from_route_key(key) for key in routes} == set(catalogue())
    for key, security in routes.items():
        access = Access(catalogue()[code_from_route_key(key)]["access"])
        expected = ["NONE"] if access is Access.PUBLIC else ["LambdaAuthorizer"]
        assert security == expected, key


def test_the_local_gateway_reads_the_same_routes() -> None:
    template = load()
    assert {route.route_key for route in template.routes} == set(translated()["routes"])
    assert {f"{e['method']} {e['path']}" for e in catalogue().values()} == set(translated()["routes"])


def test_least_privilege_the_authorizer_cannot_read_private_keys() -> None:
    policies = translated()["policies"]
    assert "JwtKeySecret" not in policies["AuthorizerFunction"]
    assert "JwtKeySecret" in policies["AuthFunction"]
    assert "LoginKeySecret" not in policies["AuthorizerFunction"]
    for name, document in policies.items():
        assert '"Action": "*"' not in document, name
        assert "secretsmanager:*" not in document, name


def test_the_catalogue_file_is_current() -> None:
    result = run(str(ROOT / ".venv/bin/python"), "-m", "infra.deploy.catalogue", "--check")
    assert result.returncode == 0, result.stderr


def test_cors_never_combines_a_wildcard_with_credentials() -> None:
    """CORS lives in the template (API Gateway answers it); credentials stay off, so no origin gets them."""
    import pytest

    from infra.deploy.template import parse

    template = (ROOT / "template.yaml").read_text()
    assert load().cors is not None
    assert load().cors["AllowCredentials"] is False  # type: ignore[index]
    risky = template.replace("AllowCredentials: false", "AllowCredentials: true")
    with pytest.raises(ValueError, match="wildcard"):
        parse(risky, ROOT, {"CorsAllowOrigins": "*"})


def test_sam_local_start_api_reads_the_root_templates_routes_with_the_nested_stacks_present() -> None:
    """SAM's own providers (what `sam local start-api` serves) see every route, each on its function."""
    result = run(str(SAM_VENV / "python"), "tests/integration/sam_local_routes.py", "template.yaml")
    assert result.returncode == 0, result.stderr[-3000:]
    local = json.loads(result.stdout)
    stacks = ["", "ConsoleStack", "DataStack", "MonitoringStack", "NetworkStack", "ServicesStack"]
    assert local["stacks"] == stacks  # all were read
    served = {key: function for key, function in local["routes"] if not key.startswith("OPTIONS ")}  # CORS
    assert set(served) == set(translated()["routes"])
    assert served == {route.route_key: route.function for route in load().routes}
