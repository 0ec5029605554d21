"""The datastores the measured functions talk to, and the data they find there.

PostgreSQL and Redis are the machine's servers (a database and a Redis number of the bench's
own); MongoDB (SecantusDB) and S3 (moto) are started here on free ports, as the tests start
them. The data is what a representative request reads: a non-admin user whose role grants
each measured route, a full page of roles, users, files and audit entries, and a finished
task run. The bench's own process writes it through the source tree's `multidb`, with the
same environment the measured containers get.
"""

import asyncio
import base64
import hashlib
import json
import os
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.processes import Process, free_port, listening, wait_for

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
PG_HOST, PG_PORT = "127.0.0.1", 5432
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
BUCKET = "multidb-bench-files"
PAGE = 10  # records of each kind, so a page is full


@dataclass(frozen=True)
class Servers:
    pg_database: str
    redis_db: int
    mongo_port: int
    s3_port: int
    redis_port: int = REDIS_PORT

    @property
    def database_url(self) -> str:
        return f"postgresql+asyncpg://postgres@{PG_HOST}:{PG_PORT}/{self.pg_database}"

    @property
    def redis_url(self) -> str:
        return f"redis://{REDIS_HOST}:{self.redis_port}/{self.redis_db}"


async def _recreate_database(name: str, *, drop_only: bool = False) -> None:
    import asyncpg

    connection = await asyncpg.connect(user="postgres", host=PG_HOST, port=PG_PORT, database="test")
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop_only:
            await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


MARKER = "bench:run"  # the bench's key in its Redis database: no key of anyone else is flushed


def _claim_redis(db: int, port: int) -> None:
    """Empty the Redis database for this run: refused when it holds keys no bench wrote."""
    import redis

    with redis.Redis(host=REDIS_HOST, port=port, db=db) as client:
        if client.dbsize() and not client.exists(MARKER):
            raise SystemExit(f"Redis database {db} holds keys another program wrote: choose another (--redis-db)")
        client.flushdb()
        client.set(MARKER, os.getpid())


def _release_redis(db: int, port: int) -> None:
    """Empty the database again; fail the run if something else flushed it meanwhile."""
    import redis

    with redis.Redis(host=REDIS_HOST, port=port, db=db) as client:
        ours = client.get(MARKER) == str(os.getpid()).encode()
        client.flushdb()
    if not ours:
        raise RuntimeError(f"Redis database {db} was flushed during the run by another program: choose another")


@contextmanager
def servers(pg_database: str, redis_db: int, redis_port: int = REDIS_PORT) -> Iterator[Servers]:
    """A fresh PostgreSQL database and Redis number, and MongoDB and S3 servers; all gone after."""
    for host, port, what in ((PG_HOST, PG_PORT, "PostgreSQL"), (REDIS_HOST, redis_port, "Redis")):
        if not listening(port):
            raise SystemExit(f"the bench needs {what} on {host}:{port}")
    found = Servers(pg_database, redis_db, free_port(), free_port(), redis_port)
    bin_dir = Path(sys.executable).parent
    started = [
        Process(
            "bench-mongodb",
            [
                str(bin_dir / "secantusd-py"),
                *("--host", "127.0.0.1", "--port", str(found.mongo_port)),
                *("--storage-path", ":memory:", "--log-level", "WARNING"),
            ],
        ),
        Process("bench-s3", [str(bin_dir / "moto_server"), "-H", "127.0.0.1", "-p", str(found.s3_port)]),
    ]
    try:
        asyncio.run(_recreate_database(pg_database))  # while the servers start
        _claim_redis(redis_db, redis_port)
        for server, port in zip(started, (found.mongo_port, found.s3_port), strict=True):
            wait_for(lambda: listening(port) or not server.alive(), timeout=30, what=f"the {server.name} server")
            if not server.alive():
                raise RuntimeError(server.log())
        yield found
    finally:
        for server in started:
            server.stop()
        asyncio.run(_recreate_database(pg_database, drop_only=True))
        _release_redis(redis_db, redis_port)


def _keys() -> dict[str, str]:
    """Fresh RSA keys, given to the functions in the environment (the deployed ones read the
    same PEM text from Secrets Manager and SSM)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    def pem(key: rsa.RSAPrivateKey) -> str:
        return key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()

    signing = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = signing.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    kid = base64.urlsafe_b64encode(hashlib.sha256(public).digest()[:16]).rstrip(b"=").decode()
    return {
        "JWT_PRIVATE_KEY": pem(signing),
        "JWT_KEY_ID": kid,
        "JWT_PUBLIC_KEYS": json.dumps([{"kid": kid, "pem": public.decode()}]),
        "LOGIN_PRIVATE_KEY": pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)),
    }


def environment(found: Servers, state: Path) -> dict[str, str]:
    """What every measured container and the seeding process share."""
    return {
        "APP_ENV": "TESTING",  # PRODUCTION insists on TLS to every datastore; nothing else differs
        "SERVICE_NAME": "multidb-bench",
        "LOG_LEVEL": "INFO",  # the template's default: the access log line is part of each request
        "TRUST_GATEWAY_AUTHORIZER": "true",  # as deployed: the events carry the authorizer's context
        "DATABASE_URL": found.database_url,
        "REDIS_URL": found.redis_url,
        "MONGO_URL": f"mongodb://127.0.0.1:{found.mongo_port}",
        "MONGO_DATABASE": found.pg_database,
        "S3_ENDPOINT_URL": f"http://127.0.0.1:{found.s3_port}",
        "FILES_BUCKET": BUCKET,
        "AWS_ACCESS_KEY_ID": "bench",  # moto checks no signature
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "KEYS_DIR": str(state / "keys"),  # never written: the keys are in the environment
        "ADMIN_PASSWORD": "bench-admin-password",
        "PASSWORD_HASH_ROUNDS": "4",  # seeding only: no measured route hashes a password
        **_keys(),
    }


# The permission codes the bench user's role grants: one per measured route that needs one.
GRANTED = (
    "GET:/api/v1/roles",
    "GET:/api/v1/users",
    "GET:/api/v1/router/backend",
    "GET:/api/v1/files",
    "GET:/api/v1/tasks/runs/{task_id}",
    "GET:/api/v1/audit",
)


@dataclass(frozen=True)
class Seeded:
    user_id: str
    token: str
    task_id: str
    contexts: dict[str, dict[str, Any]]  # the authorizer's context, by route key


async def _seed_sql() -> str:
    from multidb.db import session_scope
    from multidb.models import Role, User
    from multidb.security.passwords import hash_password

    password = hash_password("bench-user-password")
    async with session_scope() as session:
        for n in range(PAGE):
            role = Role(name=f"Bench role {n}", code=f"bench-{n}", interface_permissions=list(GRANTED[: n % 6 + 1]))
            session.add(
                User(
                    name=f"Bench User {n}",
                    email=f"bench{n}@example.com",
                    username=f"bench{n}",
                    password_hash=password,
                    roles=[role],
                )
            )
        reader = Role(name="Bench reader", code="bench-reader", interface_permissions=list(GRANTED))
        user = User(name="Bench", email="bench@example.com", username="bench", password_hash=password, roles=[reader])
        session.add(user)
        await session.flush()
        return str(user.id)


async def _seed_documents(user_id: str) -> None:
    from infra.deploy.initdb import build_mongo_indexes
    from multidb import audit
    from multidb.files.documents import FileStatus, StoredFile

    await build_mongo_indexes()  # the deploy step
    now = datetime.now(UTC)
    for n in range(PAGE):
        await StoredFile(
            owner_id=user_id,
            name=f"report-{n}.pdf",
            content_type="application/pdf",
            size=1024 * (n + 1),
            key=f"{user_id}/{uuid.uuid4()}",
            status=FileStatus.READY,
            etag=f'"{n:032x}"',
            created_at=now - timedelta(minutes=n),
        ).insert()
        await audit.record("file.upload", user_id=user_id, target=("file", str(n)), details={"name": f"report-{n}"})


async def _seed_task_run(user_id: str) -> str:
    from multidb.queue import runs
    from multidb.redis import get_redis

    task_id = str(uuid.uuid4())
    redis = get_redis()
    await runs.queued(redis, task_id, user_id, "multidb.ping")
    done = datetime.now(UTC).isoformat()
    meta = {"status": "SUCCESS", "result": "pong", "traceback": None, "children": [], "date_done": done}
    await redis.set(f"celery-task-meta-{task_id}", json.dumps({**meta, "task_id": task_id}))
    return task_id


def seed(env: dict[str, str], route_keys: list[str], source: Path = ROOT) -> Seeded:
    """Migrate and seed as a deploy does, then the bench's data; returns who calls and how.

    The authorizer decides each route once here, so the user's permission cache is warm when
    a function's container starts, as it is behind the gateway (the authorizer ran first).
    The migrations, models and authorizer are those of `source`, the checkout measured.
    """
    sys.path[:0] = [str(source), str(source / "shared"), str(source / "functions" / "authorizer")]
    from multidb.settings import FIELDS

    for name in FIELDS:  # nothing of the caller's configuration (a secret id, say) leaks in
        os.environ.pop(name.upper(), None)
    os.environ.update(env)
    import boto3

    from authorizer_fn.handler import handler as authorizer
    from infra.deploy import initdb
    from multidb import runtime
    from multidb.security.tokens import TokenType, issue

    initdb.migrate()
    runtime.run(initdb.seed())
    user_id = runtime.run(_seed_sql())
    runtime.run(_seed_documents(user_id))
    task_id = runtime.run(_seed_task_run(user_id))
    boto3.client("s3", endpoint_url=env["S3_ENDPOINT_URL"], region_name="us-east-1").create_bucket(Bucket=BUCKET)
    # The functions refuse a context past its token's exp: this one outlives any run.
    token, _ = issue(user_id, TokenType.ACCESS, uuid.uuid4().hex, 24 * 3600)
    contexts = {}
    for route_key in route_keys:
        decision = authorizer(authorizer_event(token, route_key), None)
        if not decision.get("isAuthorized"):
            raise RuntimeError(f"the authorizer denies the bench user {route_key}: {decision}")
        contexts[route_key] = decision["context"]
    return Seeded(user_id, token, task_id, contexts)


def _filled(name: str, seeded: Seeded) -> dict[str, Any]:
    text = (EVENTS / f"{name}.json").read_text()
    for placeholder, value in (
        ("<access-token>", seeded.token),
        ("<user-id>", seeded.user_id),
        ("<task_id>", seeded.task_id),
    ):
        text = text.replace(placeholder, value)
    event: dict[str, Any] = json.loads(text)
    return event


def authorizer_event(token: str, route_key: str) -> dict[str, Any]:
    """The stored authorizer event, for another route than the one it was recorded for."""
    event: dict[str, Any] = json.loads((EVENTS / "authorizer" / "user_info.json").read_text())
    recorded = event["routeKey"]
    method, path = route_key.split(" ", 1)
    text = json.dumps(event).replace(recorded, route_key).replace(recorded.split(" ", 1)[1], path)
    text = text.replace(f"/{recorded.split(' ', 1)[0]}/", f"/{method}/").replace("<access-token>", token)
    filled: dict[str, Any] = json.loads(text)
    return filled


def function_event(name: str, seeded: Seeded, query: dict[str, str] | None = None) -> dict[str, Any]:
    """A stored event from events/, as API Gateway passes it on after the authorizer allowed it."""
    event = _filled(name, seeded)
    event["requestContext"]["authorizer"] = {"lambda": seeded.contexts[event["routeKey"]]}
    if query is not None:
        event["rawQueryString"] = "&".join(f"{key}={value}" for key, value in query.items())
        event["queryStringParameters"] = dict(query)
    return event


def hello_event() -> dict[str, Any]:
    """The floor's request: the stored public-key event (no authorizer), sent to /hello."""
    event: dict[str, Any] = json.loads((EVENTS / "auth" / "get_public_key.json").read_text())
    event["routeKey"] = event["requestContext"]["routeKey"] = "GET /hello"
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/hello"
    return event


def stack_page_event() -> dict[str, Any]:
    """The stack page's request: the floor's event, sent to /page?page=1&pageSize=10."""
    event = hello_event()
    event["routeKey"] = event["requestContext"]["routeKey"] = "GET /page"
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/page"
    event["rawQueryString"] = "page=1&pageSize=10"
    event["queryStringParameters"] = {"page": "1", "pageSize": "10"}
    return event


def authorized(seeded: Seeded, route_key: str) -> Callable[[], None]:
    """Let the authorizer decide the request first, as the gateway does: the user's
    permission cache is then warm (the source tree's authorizer, in this process)."""
    from authorizer_fn.handler import handler

    event = authorizer_event(seeded.token, route_key)
    return lambda: None if handler(event, None).get("isAuthorized") else _refused(route_key)


def _refused(route_key: str) -> None:
    raise RuntimeError(f"the authorizer now denies {route_key}")


def empty_permission_cache(seeded: Seeded) -> Callable[[], None]:
    """Forget the user's cached grants, so the next decision reads them from PostgreSQL."""
    from multidb import runtime
    from multidb.rbac import permission_key
    from multidb.redis import get_redis

    return lambda: runtime.run(get_redis().delete(permission_key(seeded.user_id)))
