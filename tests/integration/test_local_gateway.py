"""The local gateway's parts: template reading, routing, isolated functions, local invoke, the dev plan."""

import json
import os
import subprocess
import sys

import pytest

from infra.deploy.template import parse
from infra.local.dev import plan
from infra.local.gateway.invoke import LocalGateway
from tests.conftest import ADMIN_PASSWORD
from tests.helpers import ROOT, Api

pytestmark = pytest.mark.first_pass_only("the gateway, whatever the datastores")

TEMPLATE = """
Parameters:
  Origins: {Type: CommaDelimitedList, Default: "http://a.test,http://b.test"}
Resources:
  Layer: {Type: AWS::Serverless::LayerVersion, Properties: {ContentUri: shared/}}
  Api:
    Type: AWS::Serverless::HttpApi
    Properties:
      Auth:
        DefaultAuthorizer: Lambda
        Authorizers:
          Lambda:
            FunctionArn: !GetAtt Authorizer.Arn
            Identity: {Headers: [Authorization], Context: [routeKey], ReauthorizeEvery: 300}
      CorsConfiguration: {AllowOrigins: !Ref Origins}
  Authorizer:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: functions/authorizer/, Handler: authorizer_fn.handler.handler, Layers: [!Ref Layer]}
  Things:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/auth/
      Handler: auth_fn.app.handler
      Layers: [!Ref Layer]
      Events:
        Mine: {Type: HttpApi, Properties: {Method: GET, Path: /things/mine}}
        One: {Type: HttpApi, Properties: {Method: GET, Path: "/things/{thing_id}", Auth: {Authorizer: NONE}}}
        Rest: {Type: HttpApi, Properties: {Method: ANY, Path: "/files/{proxy+}"}}
"""


def test_routes_prefer_exact_paths_then_parameters_then_greedy() -> None:
    template = parse(TEMPLATE, ROOT)
    mine = template.find("GET", "/things/mine")
    assert mine is not None
    assert mine[0].path == "/things/mine"
    one = template.find("GET", "/things/42")
    assert one is not None
    assert one[1] == {"thing_id": "42"}
    assert one[0].authorizer is None
    greedy = template.find("DELETE", "/files/a/b/c.txt")
    assert greedy is not None
    assert greedy[1] == {"proxy": "a/b/c.txt"}
    assert template.find("POST", "/things/mine") is None
    assert template.functions["Things"].layers == (ROOT / "shared/",)
    assert template.cors == {"AllowOrigins": ["http://a.test", "http://b.test"]}
    assert parse(TEMPLATE, ROOT, {"Origins": "http://c.test"}).cors == {"AllowOrigins": ["http://c.test"]}


def test_isolated_functions_run_in_their_own_processes(api: Api) -> None:
    isolated = LocalGateway(isolate=True)
    try:
        response = isolated.request("GET", "/api/v1/auth/keys/public")
        assert response.status_code == 200
        tokens = api.login("admin", ADMIN_PASSWORD)
        info = isolated.request("GET", "/api/v1/auth/user/info", headers={"authorization": f"Bearer {tokens.access}"})
        assert info.status_code == 200
        assert set(isolated._processes) == {"AuthFunction", "AuthorizerFunction"}
        pids = {p.process.pid for p in isolated._processes.values()}
        assert len(pids) == 2
        assert all(p.process.poll() is None for p in isolated._processes.values())  # kept warm
    finally:
        isolated.close()


def test_local_invoke_prints_the_function_response() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "infra.local.gateway",
            "invoke",
            "AuthFunction",
            "--event",
            "events/auth/get_public_key.json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'shared'}"},
    )
    response = json.loads(result.stdout)  # logs went to stderr
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["data"]["publicKey"].startswith("-----BEGIN PUBLIC KEY-----")


def test_dev_embeds_only_what_is_not_configured() -> None:
    embedded = plan({"LOCAL_STATE_DIR": "/tmp/state", "DEV_CONSOLE": "0"})
    assert set(embedded.processes) == {"redis", "mongodb", "s3", "gateway", "realtime", "worker", "beat"}
    with_console = plan({"LOCAL_STATE_DIR": "/tmp/state", "DEV_CONSOLE": "1"})
    assert set(with_console.processes) == {*embedded.processes, "console"}
    assert embedded.env["REDIS_URL"] == "redis://127.0.0.1:6390/0"
    assert embedded.env["DATABASE_URL"] == "sqlite+aiosqlite:////tmp/state/multidb.sqlite3"
    real = plan(
        {
            "REDIS_URL": "redis://10.0.0.5:6379/0",
            "MONGO_URL": "mongodb://db:27017",
            "S3_ENDPOINT_URL": "http://minio:9000",
            "DATABASE_URL": "postgresql+asyncpg://app@db/app",
            "DEV_CONSOLE": "0",
        }
    )
    assert set(real.processes) == {"gateway", "realtime", "worker", "beat"}
    assert real.env["REDIS_URL"] == "redis://10.0.0.5:6379/0"
    assert any("from REDIS_URL" in line for line in real.banner)
