"""The deploy function's custom resources, called the way CloudFormation calls them.

Every answer arrives as CloudFormation gets it: a PUT to the presigned ResponseURL, here a
local HTTP server. The keys step runs in this process against moto; the migrations step
runs in its own interpreter, like a Lambda container (settings are read once per
process), against a PostgreSQL database made for the test, the test MongoDB server and
moto's Secrets Manager over HTTP.
"""

import asyncio
import json
import os
import queue
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from deploy_fn import cfn, handler
from infra.deploy.template import load
from tests.conftest import MONGO_PORT, REDIS_URL
from tests.helpers import ROOT

DEPLOY = load().functions["DeployFunction"].code_uri  # on pytest's pythonpath, as every function's folder

pytestmark = [pytest.mark.infra, pytest.mark.first_pass_only("the deploy function against moto")]

PARAMETER = "/multidb-test/jwt-public-keys"


@dataclass
class Answer:
    path: str
    content_type: str | None
    body: dict[str, Any]

    @property
    def status(self) -> str:
        return str(self.body["Status"])

    @property
    def reason(self) -> str:
        return str(self.body["Reason"])


class CloudFormation:
    """CloudFormation's side: builds events and receives their answers."""

    def __init__(self) -> None:
        answers: queue.Queue[Answer] = queue.Queue()

        class Receiver(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                length = int(self.headers["Content-Length"])
                body = json.loads(self.rfile.read(length))
                answers.put(Answer(self.path, self.headers.get("Content-Type"), body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.answers = answers
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def event(
        self,
        resource_type: str,
        request_type: str,
        properties: dict[str, Any],
        *,
        old: dict[str, Any] | None = None,
        physical_id: str | None = None,
    ) -> dict[str, Any]:
        request_id = str(uuid.uuid4())
        event = {
            "RequestType": request_type,
            "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:deploy:live",
            "ResponseURL": f"http://127.0.0.1:{self.server.server_port}/response/{request_id}?X-Amz-Signature=abc",
            "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/multidb-test/guid",
            "RequestId": request_id,
            "ResourceType": resource_type,
            "LogicalResourceId": resource_type.removeprefix("Custom::") + "Resource",
            "ResourceProperties": {"ServiceToken": "arn:…", **properties},
        }
        if old is not None:
            event["OldResourceProperties"] = old
        if physical_id is not None:
            event["PhysicalResourceId"] = physical_id
        return event

    def answer_to(self, event: dict[str, Any]) -> Answer:
        answer = self.answers.get(timeout=60)
        assert answer.path.startswith(f"/response/{event['RequestId']}")
        assert answer.body["RequestId"] == event["RequestId"]
        assert answer.body["StackId"] == event["StackId"]
        assert answer.body["LogicalResourceId"] == event["LogicalResourceId"]
        assert not answer.content_type  # presigned without one: S3 would refuse any other
        assert self.answers.empty(), "one answer per request"
        return answer

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def cloudformation() -> Iterator[CloudFormation]:
    server = CloudFormation()
    yield server
    server.close()


class Context:
    def __init__(self, remaining_ms: int = 600_000) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


# ------------------------------------------------------------------ the protocol itself


def test_a_step_that_raises_is_answered_failed_with_its_reason(cloudformation: CloudFormation) -> None:
    def broken(request: cfn.Request) -> cfn.Outcome:
        raise RuntimeError("cannot reach postgresql://multidb:s3cret@proxy:5432/multidb")

    event = cloudformation.event("Custom::Anything", "Create", {})
    assert cfn.serve(event, Context(), broken) == "FAILED"
    answer = cloudformation.answer_to(event)
    assert answer.status == "FAILED"
    assert answer.reason == "RuntimeError: cannot reach postgresql://***@proxy:5432/multidb"
    assert answer.body["PhysicalResourceId"] == event["RequestId"]


def test_a_step_that_outlives_its_time_is_answered_failed_before_the_function_times_out(
    cloudformation: CloudFormation,
) -> None:
    answered = threading.Event()

    def slow(request: cfn.Request) -> cfn.Outcome:
        answered.wait(timeout=30)  # until the timer has answered for it
        return cfn.Outcome("late")

    event = cloudformation.event("Custom::Anything", "Update", {}, physical_id="thing")
    result: list[str] = []
    worker = threading.Thread(target=lambda: result.append(cfn.serve(event, Context(cfn.TIMEOUT_MARGIN_MS), slow)))
    worker.start()
    answer = cloudformation.answers.get(timeout=30)
    answered.set()
    worker.join(timeout=30)
    assert answer.body["Status"] == "FAILED"
    assert "timed out" in answer.body["Reason"]
    assert answer.body["PhysicalResourceId"] == "thing"
    assert result == ["FAILED"]  # the late success is not sent
    assert cloudformation.answers.empty()


def test_an_unknown_resource_type_is_answered_failed(cloudformation: CloudFormation) -> None:
    event = cloudformation.event("Custom::Nothing", "Create", {})
    assert handler.handler(event, Context()) == {"Status": "FAILED"}
    assert "no deploy step" in cloudformation.answer_to(event).reason


# ------------------------------------------------------------------ Custom::Keys


@pytest.fixture
def aws() -> Iterator[tuple[Any, Any]]:
    """moto's Secrets Manager and SSM, with the two secrets as CloudFormation creates them: empty."""
    with mock_aws():
        handler._clients.cache_clear()
        secrets = boto3.client("secretsmanager", region_name="us-east-1")
        ssm = boto3.client("ssm", region_name="us-east-1")
        secrets.create_secret(Name="multidb-test/jwt-key")
        secrets.create_secret(Name="multidb-test/login-key")
        yield secrets, ssm
        handler._clients.cache_clear()


KEYS = {
    "SigningKeySecret": "multidb-test/jwt-key",
    "LoginKeySecret": "multidb-test/login-key",
    "PublicKeysParameter": PARAMETER,
}


def stored(secrets: Any, ssm: Any) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, str]]]:
    signing = json.loads(secrets.get_secret_value(SecretId=KEYS["SigningKeySecret"])["SecretString"])
    login = json.loads(secrets.get_secret_value(SecretId=KEYS["LoginKeySecret"])["SecretString"])
    published = json.loads(ssm.get_parameter(Name=PARAMETER)["Parameter"]["Value"])
    return signing, login, published


def secret_versions(secrets: Any) -> list[Any]:
    """Each key secret's versions and their stages (moto's dates move with the clock)."""
    names = ("SigningKeySecret", "LoginKeySecret")
    listed = [secrets.list_secret_version_ids(SecretId=KEYS[name])["Versions"] for name in names]
    return [[(version["VersionId"], version["VersionStages"]) for version in versions] for versions in listed]


def keys_event(cloudformation: CloudFormation, request_type: str) -> dict[str, Any]:
    physical_id = None if request_type == "Create" else PARAMETER
    return cloudformation.event("Custom::Keys", request_type, KEYS, old=KEYS, physical_id=physical_id)


def send(cloudformation: CloudFormation, event: dict[str, Any]) -> Answer:
    handler.handler(event, Context())
    return cloudformation.answer_to(event)


def test_keys_create_fills_the_empty_secrets_and_publishes_the_public_key(
    cloudformation: CloudFormation, aws: tuple[Any, Any]
) -> None:
    from multidb.security.keys import kid_of, load_private

    answer = send(cloudformation, keys_event(cloudformation, "Create"))
    assert answer.status == "SUCCESS", answer.reason
    assert answer.body["PhysicalResourceId"] == PARAMETER
    signing, login, published = stored(*aws)
    kid = kid_of(load_private(signing["jwt_private_key"]).public_key())
    assert signing["jwt_key_id"] == kid == answer.body["Data"]["KeyId"]
    assert [entry["kid"] for entry in published] == [kid]
    assert load_private(login["login_private_key"]).key_size == 2048


def test_keys_create_twice_changes_nothing(cloudformation: CloudFormation, aws: tuple[Any, Any]) -> None:
    secrets, ssm = aws
    assert send(cloudformation, keys_event(cloudformation, "Create")).status == "SUCCESS"
    first = stored(secrets, ssm)
    versions = secret_versions(secrets)
    assert send(cloudformation, keys_event(cloudformation, "Create")).status == "SUCCESS"
    assert send(cloudformation, keys_event(cloudformation, "Update")).status == "SUCCESS"
    assert stored(secrets, ssm) == first
    assert secret_versions(secrets) == versions


def test_an_existing_key_is_never_overwritten(cloudformation: CloudFormation, aws: tuple[Any, Any]) -> None:
    """A rotated key (infra/deploy/keys.py rotate) survives every later deploy, and so does its published history."""
    from infra.deploy import keys

    secrets, ssm = aws
    assert send(cloudformation, keys_event(cloudformation, "Create")).status == "SUCCESS"
    rotated = keys.rotate(secrets, ssm, KEYS["SigningKeySecret"], PARAMETER)
    before = stored(secrets, ssm)
    assert before[2][0]["kid"] == rotated
    for request_type in ("Update", "Create"):
        answer = send(cloudformation, keys_event(cloudformation, request_type))
        assert answer.status == "SUCCESS", answer.reason
        assert answer.body["Data"]["KeyId"] == rotated
    assert stored(secrets, ssm) == before


def test_a_lost_public_key_parameter_is_published_again_from_the_secret(
    cloudformation: CloudFormation, aws: tuple[Any, Any]
) -> None:
    secrets, ssm = aws
    assert send(cloudformation, keys_event(cloudformation, "Create")).status == "SUCCESS"
    signing, login, published = stored(secrets, ssm)
    ssm.delete_parameter(Name=PARAMETER)
    answer = send(cloudformation, keys_event(cloudformation, "Update"))
    assert answer.status == "SUCCESS"
    assert "published again" in answer.reason
    assert stored(secrets, ssm) == (signing, login, published)


def test_keys_delete_removes_the_parameter_and_leaves_the_secrets_to_cloudformation(
    cloudformation: CloudFormation, aws: tuple[Any, Any]
) -> None:
    secrets, ssm = aws
    assert send(cloudformation, keys_event(cloudformation, "Create")).status == "SUCCESS"
    signing, _, _ = stored(secrets, ssm)
    assert send(cloudformation, keys_event(cloudformation, "Delete")).status == "SUCCESS"
    with pytest.raises(ssm.exceptions.ParameterNotFound):
        ssm.get_parameter(Name=PARAMETER)
    assert json.loads(secrets.get_secret_value(SecretId=KEYS["SigningKeySecret"])["SecretString"]) == signing
    assert send(cloudformation, keys_event(cloudformation, "Delete")).status == "SUCCESS"  # again: still fine


# ------------------------------------------------------------------ Custom::Migrations

RUNNING_VERSION = "8"
ADMIN_PASSWORD = "deploy-test-" + uuid.uuid4().hex[:12]


async def _admin_sql(statement: str, *args: Any) -> Any:
    import asyncpg

    connection = await asyncpg.connect(user="postgres", host="127.0.0.1", port=5432, database="test")
    try:
        return await connection.execute(statement, *args)
    finally:
        await connection.close()


async def _query(database: str, statement: str) -> list[Any]:
    import asyncpg

    connection = await asyncpg.connect(user="postgres", host="127.0.0.1", port=5432, database=database)
    try:
        return list(await connection.fetch(statement))
    finally:
        await connection.close()


def query(database: str, statement: str) -> list[Any]:
    return asyncio.run(_query(database, statement))


@pytest.fixture
def deploy_database() -> Iterator[str]:
    """A database of its own, so Alembic runs from nothing; dropped afterwards."""
    name = f"multidb_deploy_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin_sql(f'CREATE DATABASE "{name}"'))
    yield name
    asyncio.run(_admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="module")
def moto_server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


class Container:
    """The deploy function in its own interpreter, warm across events as a Lambda container is."""

    def __init__(self, env: dict[str, str]) -> None:
        code = (
            "import json, sys\n"
            "from deploy_fn.handler import handler\n"
            "class Context:\n"
            "    def get_remaining_time_in_millis(self): return 600000\n"
            "out, sys.stdout = sys.stdout, sys.stderr\n"
            "for line in sys.stdin:\n"
            "    out.write(json.dumps(handler(json.loads(line), Context())) + '\\n'); out.flush()\n"
        )
        self.process = subprocess.Popen(
            [sys.executable, "-c", code],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=DEPLOY,
            env=env,
        )

    def send(self, cloudformation: CloudFormation, event: dict[str, Any]) -> Answer:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(json.dumps(event) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        assert line, self.close()
        answer = cloudformation.answer_to(event)
        assert json.loads(line) == {"Status": answer.status}
        return answer

    def close(self) -> str:
        if self.process.poll() is None:
            self.process.terminate()
        _, errors = self.process.communicate(timeout=30)
        return errors[-3000:]


@pytest.fixture
def deploy(deploy_database: str, moto_server: str, files_backends: None) -> Iterator[Container]:
    database = deploy_database
    """A Lambda-like container whose connections secret names the test's database."""
    secrets = boto3.client("secretsmanager", endpoint_url=moto_server, region_name="us-east-1")
    connections = f"multidb-test/connections-{database}"
    secrets.create_secret(
        Name=connections,
        SecretString=json.dumps(
            {
                "database_url": f"postgresql+asyncpg://postgres@127.0.0.1:5432/{database}",
                "redis_url": REDIS_URL,
                "broker_url": REDIS_URL,
                "mongo_url": f"mongodb://127.0.0.1:{MONGO_PORT}",
            }
        ),
    )
    secrets.create_secret(
        Name=f"multidb-test/admin-{database}",
        SecretString=json.dumps({"username": "admin", "password": ADMIN_PASSWORD}),
    )
    template = load()
    declared = {
        name: value
        for name, raw in template.functions["DeployFunction"].environment.items()
        if isinstance(value := template.resolve(raw), str)
    }
    assert declared["APP_ENV"] == "PRODUCTION"
    env = {
        **declared,  # what the template gives the function, as Lambda would
        "PATH": os.environ["PATH"],
        "PYTHONPATH": os.pathsep.join(str(p) for p in (DEPLOY, ROOT / "shared", ROOT)),
        # The local servers speak no TLS, which PRODUCTION settings refuse; all else is the template's.
        "APP_ENV": "TESTING",
        "CONNECTIONS_SECRET_ID": connections,
        "PUBLIC_KEYS_PARAMETER": PARAMETER,
        "MONGO_DATABASE": database,
        "PASSWORD_HASH_ROUNDS": "4",
        "LOG_LEVEL": "WARNING",
        "AWS_ENDPOINT_URL": moto_server,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_LAMBDA_FUNCTION_VERSION": RUNNING_VERSION,
    }
    container = Container(env)
    yield container
    container.close()


def migrations(
    cloudformation: CloudFormation, database: str, request_type: str, version: str = RUNNING_VERSION
) -> dict[str, Any]:
    properties = {
        "CodeVersion": f"arn:aws:lambda:us-east-1:123456789012:function:deploy:{version}",
        "SharedLayer": "arn:aws:lambda:us-east-1:123456789012:layer:multidb-shared-test:3",
        "AdminPasswordSecret": f"multidb-test/admin-{database}",
    }
    physical_id = None if request_type == "Create" else "multidb-datastores"
    return cloudformation.event("Custom::Migrations", request_type, properties, old=properties, physical_id=physical_id)


def state(database: str) -> dict[str, Any]:
    """What the deploy step writes: the schema version, the admin, the catalogue, the indexes."""
    from pymongo import MongoClient

    with MongoClient(f"mongodb://127.0.0.1:{MONGO_PORT}", serverSelectionTimeoutMS=5000) as client:
        indexes = sorted(str(index["key"]) for index in client[database]["files"].list_indexes())
    return {
        "revision": [row[0] for row in query(database, "SELECT version_num FROM alembic_version")],
        "admins": [tuple(row) for row in query(database, "SELECT username, password_hash, is_admin FROM users")],
        "routes": sorted(row[0] for row in query(database, "SELECT code FROM interface_routes")),
        "indexes": indexes,
    }


def test_migrations_create_builds_everything_and_repeats_change_nothing(
    cloudformation: CloudFormation, deploy_database: str, deploy: Container
) -> None:
    database = deploy_database
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from multidb.rbac import catalogue
    from multidb.security.passwords import verify_password

    answer = deploy.send(cloudformation, migrations(cloudformation, database, "Create"))
    assert answer.status == "SUCCESS", answer.reason
    assert answer.body["PhysicalResourceId"] == "multidb-datastores"
    assert answer.body["Data"] == {"Migrated": "true"}
    built = state(database)
    head = ScriptDirectory.from_config(Config(str(ROOT / "infra" / "deploy" / "alembic.ini"))).get_current_head()
    assert built["revision"] == [head]
    [(username, password_hash, is_admin)] = built["admins"]
    assert (username, is_admin) == ("admin", True)
    assert verify_password(ADMIN_PASSWORD, password_hash)  # the generated secret's, never 123456
    assert set(catalogue()) <= set(built["routes"])  # every route's permission code is in the table
    assert len(built["indexes"]) > 1  # _id and the documents' own

    for request_type in ("Create", "Update"):
        again = deploy.send(cloudformation, migrations(cloudformation, database, request_type))
        assert again.status == "SUCCESS", again.reason
        assert state(database) == built

    gone = deploy.send(cloudformation, migrations(cloudformation, database, "Delete"))
    assert gone.status == "SUCCESS"
    assert state(database) == built  # Delete never touches the data


def test_a_rollback_update_leaves_the_database_alone(
    cloudformation: CloudFormation, deploy_database: str, deploy: Container
) -> None:
    """During a rollback the new code gets the old version's event: it answers SUCCESS and does nothing."""
    database = deploy_database
    assert deploy.send(cloudformation, migrations(cloudformation, database, "Create")).status == "SUCCESS"
    query(database, "DELETE FROM users")
    rollback = deploy.send(cloudformation, migrations(cloudformation, database, "Update", version="7"))
    assert rollback.status == "SUCCESS"
    assert "rollback" in rollback.reason
    assert rollback.body["Data"] == {"Migrated": "false"}
    assert state(database)["admins"] == []  # nothing ran
    assert deploy.send(cloudformation, migrations(cloudformation, database, "Update")).status == "SUCCESS"
    assert len(state(database)["admins"]) == 1


def test_a_database_ahead_of_the_code_fails_a_create_but_never_a_rollback(
    cloudformation: CloudFormation, deploy_database: str, deploy: Container
) -> None:
    database = deploy_database
    assert deploy.send(cloudformation, migrations(cloudformation, database, "Create")).status == "SUCCESS"
    query(database, "UPDATE alembic_version SET version_num = 'f00dfacef00d'")
    update = deploy.send(cloudformation, migrations(cloudformation, database, "Update"))
    assert update.status == "SUCCESS"
    assert "ahead of this code" in update.reason
    create = deploy.send(cloudformation, migrations(cloudformation, database, "Create"))
    assert create.status == "FAILED"
    assert "f00dfacef00d" in create.reason


def test_a_failing_migration_fails_the_deploy_with_its_reason(
    cloudformation: CloudFormation, deploy_database: str, deploy: Container
) -> None:
    database = deploy_database
    query(database, "CREATE TABLE users (id integer)")  # in the first migration's way
    answer = deploy.send(cloudformation, migrations(cloudformation, database, "Create"))
    assert answer.status == "FAILED"
    assert "users" in answer.reason
    assert "already exists" in answer.reason
    assert "postgresql+asyncpg://postgres@" not in answer.reason  # no connection URL in the console
    assert query(database, "SELECT to_regclass('alembic_version') IS NULL")[0][0]  # nothing half-applied


def test_the_artifact_sources_are_where_the_makefile_copies_them_from() -> None:
    makefile = (DEPLOY / "Makefile").read_text()
    for source in (
        "infra/deploy/initdb.py",
        "infra/deploy/keys.py",
        "infra/deploy/alembic.ini",
        "infra/deploy/migrations",
    ):
        assert (ROOT / source).exists(), source
        assert f"$(ROOT)/{source}" in makefile, source
    assert Path(DEPLOY / "deploy_fn" / "handler.py").exists()


def test_importing_the_deploy_handler_loads_no_client_or_database_library() -> None:
    code = (
        "import sys, deploy_fn.handler\n"
        "heavy = {'boto3', 'botocore', 'alembic', 'sqlalchemy', 'pymongo', 'beanie', 'multidb', 'infra'}\n"
        "print(sorted(heavy & {name.split('.')[0] for name in sys.modules}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=DEPLOY,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(DEPLOY)},
    )
    assert result.stdout.strip() == "[]", result.stderr
