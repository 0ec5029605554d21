"""The worker, beat and Socket.IO images without Docker, started the way ECS starts them.

Each image is its Dockerfile target: /app laid out from the target's COPY lines (read-only,
as the task definitions mount the root filesystem), a clean virtualenv made from the
target's requirement files only (uv, from its local cache), the target's ENV and its CMD as
written. The environment is the task definition's and nothing else: its Environment
values, and its Secrets resolved the way ECS resolves them when a task starts (a Secrets
Manager JSON key, an SSM parameter), here from moto. What a test machine has instead of AWS
is listed in STAND_INS, each with its reason.
"""

import json
import os
import queue
import re
import shutil
import socket
import stat
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis

from multidb.settings import Settings
from tests.conftest import (
    ADMIN_PASSWORD,
    BROKER_URL,
    FILES_BUCKET,
    MONGO_PORT,
    REDIS_URL,
    S3_ENDPOINT_URL,
)
from tests.helpers import Api, get_user_id
from tests.integration.dockerfile import TARGETS, command, copies, environment, requirement_files, stages, user
from tests.integration.test_services_stack import container, nested, rendered
from tests.processes import Process, free_port, listening, wait_for

pytestmark = [pytest.mark.infra, pytest.mark.first_pass_only("the container images")]

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
STACK = "multidb-dev"  # what the root's defaults name things (samconfig's dev stack)
# What a test machine has instead of AWS. Every other variable is the task definition's.
STAND_INS = {
    "APP_ENV": "TESTING",  # the local datastores speak no TLS, which PRODUCTION demands (test_tls proves it)
    "FILES_BUCKET": FILES_BUCKET,  # the stack's bucket: the test S3 server's
}
TASK_ROLE = {  # what ECS gives a task with a role, and the S3 it reaches: moto's
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "S3_ENDPOINT_URL": S3_ENDPOINT_URL,
}


# ------------------------------------------------------------------ the Dockerfile


def test_every_target_exists_and_runs_as_a_non_root_user() -> None:
    found = stages()
    assert set(TARGETS) <= set(found)
    assert "python:3.12-slim" in found["base"][0]
    for target in TARGETS:
        assert user(target) == "app", target


def test_everything_copied_exists_and_passes_the_dockerignore() -> None:
    allowed = [
        line.lstrip("!").rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    ]
    for target in TARGETS:
        for source, _ in copies(target):
            assert (ROOT / source).exists(), source
            assert any(source == rule or source.startswith(f"{rule}/") for rule in allowed), source


def test_only_the_worker_image_carries_the_aws_sdk() -> None:
    """The files sweep needs boto3; nothing else calls AWS, and no image reads its configuration with it."""
    for target in TARGETS:
        lines = [
            line.split("#")[0].strip() for path in requirement_files(target) for line in path.read_text().splitlines()
        ]
        packages = {re.split(r"[\[=<>~]", line)[0].lower() for line in lines if line}
        assert ("boto3" in packages) == (target == "worker"), target


def test_the_image_tag_is_the_hash_of_what_the_images_are_made_of() -> None:
    """`make images` tags by content: the same sources, the same tag (no push, no rollout)."""
    from infra.deploy import images

    sources = {str(path.relative_to(ROOT)) for path in images.copied_sources()}
    assert {
        "shared/multidb/settings.py",
        "infra/services/realtime/server.py",
        "infra/services/realtime/handlers.py",
        "infra/services/worker-requirements.txt",
    } <= sources
    assert not any(source.startswith(("tests/", "functions/")) or "__pycache__" in source for source in sources)
    assert re.fullmatch(r"[0-9a-f]{16}-arm64", images.tag("linux/arm64"))
    assert images.tag("linux/arm64") == images.tag("linux/arm64")
    assert set(images.TARGETS) == set(TARGETS)


# ------------------------------------------------------------------ images, without Docker


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """/app as the target's COPY lines fill it, read-only."""
    made: dict[str, Path] = {}

    def image(target: str) -> Path:
        if target not in made:
            app = tmp_path_factory.mktemp(f"image-{target}") / "app"
            for source, destination in copies(target):
                if destination.startswith("/tmp/"):
                    continue
                path = app / destination.removeprefix("/app/")
                path.parent.mkdir(parents=True, exist_ok=True)
                if (ROOT / source).is_dir():
                    shutil.copytree(ROOT / source, path, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    shutil.copy(ROOT / source, path)
            for path in [app, *app.rglob("*")]:  # ReadonlyRootFilesystem: nothing may write here
                path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
            made[target] = app
        return made[target]

    yield image  # type: ignore[misc]
    for app in made.values():
        for path in [app, *app.rglob("*")]:
            path.chmod(path.stat().st_mode | stat.S_IWUSR)


@pytest.fixture(scope="module")
def virtualenvs(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """A clean virtualenv per set of requirement files: what `pip install -r …` puts in the image."""
    uv = Path(sys.executable).parent / "uv"
    made: dict[tuple[Path, ...], Path] = {}

    def virtualenv(target: str) -> Path:
        files = tuple(requirement_files(target))
        if files not in made:
            folder = tmp_path_factory.mktemp(f"venv-{target}")
            subprocess.run([str(uv), "venv", "-q", "--python", sys.executable, str(folder)], check=True)
            install = [str(uv), "pip", "install", "-q", "--python", str(folder / "bin" / "python")]
            subprocess.run([*install, *(arg for path in files for arg in ("-r", str(path)))], check=True)
            made[files] = folder
        return made[files]

    return virtualenv


# ------------------------------------------------------------------ configuration, as ECS injects it


def ecs_environment(target: str, connections: dict[str, str], public_keys: str) -> dict[str, str]:
    """The container's environment: its Environment values, and its Secrets resolved from Secrets
    Manager and SSM the way ECS resolves them at task start (moto holding what the stack would)."""
    import boto3
    from moto import mock_aws

    definition = container(target)
    values = {v["Name"]: rendered("ServicesStack", v["Value"]) for v in definition["Environment"]}
    with mock_aws():
        secrets = boto3.client("secretsmanager", region_name=REGION)
        ssm = boto3.client("ssm", region_name=REGION)
        secret = secrets.create_secret(Name=f"{STACK}/connections", SecretString=json.dumps(connections))
        ssm.put_parameter(Name=f"/{STACK}/jwt-public-keys", Value=public_keys, Type="String")
        account = boto3.client("sts", region_name=REGION).get_caller_identity()["Account"]
        names = {
            "ConnectionsSecretArn": secret["ARN"],
            "PublicKeysParameterName": f"/{STACK}/jwt-public-keys",
            "AWS::Partition": "aws",
            "AWS::Region": REGION,
            "AWS::AccountId": account,
        }
        for entry in definition["Secrets"]:
            value_from = entry["ValueFrom"]["Fn::Sub"]
            for name, value in names.items():
                value_from = value_from.replace(f"${{{name}}}", value)
            values[entry["Name"]] = resolve(value_from, secrets, ssm)
    return {**values, **{name: value for name, value in STAND_INS.items() if name in values}}


def resolve(value_from: str, secrets: Any, ssm: Any) -> str:
    """What ECS puts in the variable: `arn:…:secret:name-AbCdEf:json-key:version-stage:version-id`
    or an SSM parameter's ARN."""
    if ":secretsmanager:" in value_from:
        parts = value_from.split(":")
        arn, json_key = ":".join(parts[:7]), parts[7]
        document = json.loads(secrets.get_secret_value(SecretId=arn)["SecretString"])
        return str(document[json_key]) if json_key else json.dumps(document)
    assert ":ssm:" in value_from, value_from
    name = value_from.split(":parameter", 1)[1]
    return str(ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"])


def connections(broker_url: str) -> dict[str, str]:
    """The connections secret, holding the test datastores' URLs."""
    return {
        "database_url": os.environ["DATABASE_URL"],
        "redis_url": REDIS_URL,
        "mongo_url": f"mongodb://127.0.0.1:{MONGO_PORT}",
        "broker_url": broker_url,
    }


def published_keys() -> str:
    """What the keys step publishes: the signing key's public half (this test run's key)."""
    from multidb.security.keys import public_pem, signing_key

    key = signing_key()
    return json.dumps([{"kid": key.kid, "pem": public_pem(key.private_key.public_key())}])


STRACE = shutil.which("strace")
WRITES = ("O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_APPEND")
SPECIAL = ("/dev/", "/proc/", "/sys/")  # not the root filesystem


def start(target: str, image: Path, venv: Path, env: dict[str, str], argv: list[str] | None = None) -> Process:
    """The target's CMD, in /app, with the image's ENV and the given environment only (env -i).
    A container whose task definition mounts its root filesystem read-only runs under strace,
    which records every file it writes (see written())."""
    base = {name: value.replace("/app", str(image)) for name, value in environment(target).items()}
    variables = {**base, **env, "PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(image)}
    assignments = [f"{name}={value}" for name, value in variables.items()]
    argv = argv or command(target)
    if STRACE and container(target)["ReadonlyRootFilesystem"]:
        calls = "trace=open,openat,creat,mkdir,mkdirat,rename,renameat,renameat2,unlink,unlinkat"
        argv = [STRACE, "-f", "-qq", "-e", calls, "-o", str(image.parent / "writes.log"), *argv]
    return Process(f"image-{target}", ["env", "-i", *assignments, *argv], cwd=image)


def written(image: Path) -> set[str]:
    """The files a traced container created, wrote, renamed or removed outside /dev, /proc and /sys."""
    paths = set()
    for line in (image.parent / "writes.log").read_text().splitlines():
        if "= -1" in line or "resumed>" in line or '"' not in line:
            continue
        call, path = line.split(None, 1)[-1].split("(", 1)[0], line.split('"')[1]
        if (call.startswith(("open", "creat")) and not any(f in line for f in WRITES)) or path.startswith(SPECIAL):
            continue
        paths.add(path)
    return paths


# ------------------------------------------------------------------ the three images


@pytest.fixture
def stale_upload(files_backends: None) -> Iterator[str]:
    """An upload never completed, a day old, in the database the container uses (its default) and the bucket."""
    import boto3
    from bson import ObjectId
    from pymongo import MongoClient

    key = f"stale/{ObjectId()}"
    created = datetime.now(UTC) - timedelta(days=2)
    document = {"owner_id": "someone", "name": "x.txt", "content_type": "text/plain", "size": 1, "key": key}
    document |= {"status": "pending", "created_at": created, "updated_at": created}
    s3 = boto3.client("s3", endpoint_url=S3_ENDPOINT_URL, region_name=REGION)
    s3.put_object(Bucket=FILES_BUCKET, Key=key, Body=b"x")
    database = Settings().mongo_database  # the task definitions leave it at that
    with MongoClient(port=MONGO_PORT) as client:
        files = client[database]["files"]
        files.insert_one(document)
        yield key
        files.delete_many({"key": key})


def test_the_worker_image_runs_tasks_and_the_files_sweep(
    images: Callable[[str], Path], virtualenvs: Callable[[str], Path], spare_broker: str, stale_upload: str
) -> None:
    import boto3
    from celery import Celery

    env = ecs_environment("worker", connections(spare_broker), published_keys()) | TASK_ROLE
    worker = start("worker", images("worker"), virtualenvs("worker"), env)
    client = Celery(broker=spare_broker, backend=spare_broker)
    try:
        assert client.send_task("multidb.add", (20, 22)).get(timeout=60) == 42, worker.log()
        assert client.send_task("multidb.files.sweep").get(timeout=60) == 1, worker.log()  # boto3 and MongoDB
        s3 = boto3.client("s3", endpoint_url=S3_ENDPOINT_URL, region_name=REGION)
        assert "Contents" not in s3.list_objects_v2(Bucket=FILES_BUCKET, Prefix=stale_upload)
    finally:
        client.close()
        assert worker.stop() == 0, worker.log()


def test_the_beat_image_takes_the_lock_and_fires_a_schedule(
    images: Callable[[str], Path], virtualenvs: Callable[[str], Path], spare_broker: str
) -> None:
    from multidb import runtime
    from multidb.keyspace import BEAT_LOCK
    from multidb.models import PeriodicTask
    from multidb.queue.scheduler import RUN_HEADER
    from tests.tasks.test_scheduler import _store

    created = datetime.now(UTC) - timedelta(minutes=1)
    runtime.run(_store(PeriodicTask(name="image-tick", task="multidb.ping", interval_seconds=1, created_at=created)))
    env = ecs_environment("beat", connections(spare_broker), published_keys())
    beat = start("beat", images("beat"), virtualenvs("beat"), env)
    broker = redis.Redis.from_url(spare_broker)
    try:

        def sent() -> list[dict[str, Any]]:
            messages = [json.loads(item) for item in broker.lrange("celery", 0, -1)]
            return [m for m in messages if m["headers"].get("multidb_schedule") == "image-tick"]

        wait_for(lambda: sent() or not beat.alive(), timeout=30, what="beat to send the schedule")
        assert "multidb.queue.scheduler.DatabaseScheduler" in beat.log()
        assert sent()[0]["headers"][RUN_HEADER] == 1
        holder = (broker.get(BEAT_LOCK) or b"").decode()
        assert holder.startswith(f"{socket.gethostname()}:")  # this beat holds it
    finally:
        assert beat.stop() == 0, beat.log()
        assert broker.exists(BEAT_LOCK) == 0  # released on a clean stop: a successor takes over at once
        broker.close()
    if STRACE:
        assert written(images("beat")) == set()  # a read-only root filesystem is enough


def test_the_realtime_image_accepts_a_token_and_relays_an_event_emitted_from_a_function(
    images: Callable[[str], Path], virtualenvs: Callable[[str], Path], api: Api, configure: Callable[..., None]
) -> None:
    import socketio

    from multidb import runtime
    from multidb.realtime import emit, user_room

    environment_of = {v["Name"]: rendered("ServicesStack", v["Value"]) for v in container("realtime")["Environment"]}
    # Tokens as the deployed auth function signs them: the stage's issuer and audience.
    configure(JWT_ISSUER=environment_of["JWT_ISSUER"], JWT_AUDIENCE=environment_of["JWT_AUDIENCE"])
    token = api.login("admin", ADMIN_PASSWORD).access
    env = ecs_environment("realtime", connections(BROKER_URL), published_keys())
    port = free_port()
    argv = [str(port) if part == "3001" else part for part in command("realtime")]
    assert "0.0.0.0" in argv  # reachable from the load balancer
    argv = [part if part != "0.0.0.0" else "127.0.0.1" for part in argv]
    server = start("realtime", images("realtime"), virtualenvs("realtime"), env, argv)
    url = f"http://127.0.0.1:{port}"
    heard: queue.Queue[Any] = queue.Queue()
    # A browser on the app's page (an origin of CorsAllowOrigins), over WebSocket as browsers upgrade.
    page = environment_of["REALTIME_CORS_ORIGINS"].split(",")[0]
    client = socketio.Client(reconnection=False, websocket_extra_options={"origin": page})
    client.on("notification", heard.put)
    try:
        wait_for(lambda: listening(port) or not server.alive(), what="the Socket.IO server")
        health = nested("ServicesStack")["Resources"]["RealtimeTargetGroup"]["Properties"]["HealthCheckPath"]
        with urllib.request.urlopen(f"{url}{health}", timeout=10) as response:  # the ALB's check
            assert response.status == 200
            assert response.read().startswith(b"0{")  # an Engine.IO handshake, no token needed
        client.connect(url, auth={"token": token}, transports=["websocket"], wait_timeout=10)
        runtime.run(emit("notification", {"text": "from a function"}, room=user_room(get_user_id("admin"))))
        assert heard.get(timeout=10) == {"text": "from a function"}
        # Another site's page is refused, token or not: the origins are the task definition's.
        stranger = socketio.Client(reconnection=False, websocket_extra_options={"origin": "https://elsewhere.example"})
        with pytest.raises(socketio.exceptions.ConnectionError):
            stranger.connect(url, auth={"token": token}, transports=["websocket"], wait_timeout=10)
    finally:
        client.disconnect()
        server.stop()
    if STRACE:
        assert written(images("realtime")) == set()  # a read-only root filesystem is enough
