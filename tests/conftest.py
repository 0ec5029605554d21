"""Test configuration: real PostgreSQL and Redis when reachable (always on CI), embedded otherwise.

Embedded means what `make dev` runs: SQLite, and the Redis-compatible server of
infra/local/embedded_redis.py over TCP (the Celery worker, beat and the Socket.IO server are
separate processes, so an in-process stand-in would not do).

The environment is set here, before anything imports `multidb`, exactly as a Lambda
container would receive it.
"""

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.processes import Process, free_port

if TYPE_CHECKING:  # annotations only: both import multidb, which must first see the environment set below
    from infra.local.gateway.invoke import LocalGateway
    from tests.helpers import Api

pytest_plugins = ["tests.aws_calls"]  # records every AWS call the code makes (tests/integration/test_aws_calls.py)

ON_CI = os.environ.get("CI") == "true"
PG_HOST, PG_PORT = "127.0.0.1", 5432
REDIS_HOST = "127.0.0.1"
# Two suites may share one machine's servers (say, a developer's and a helper's run):
# each names its own database and Redis numbers, or a Redis server of its own.
REDIS_PORT = int(os.environ.get("TEST_REDIS_PORT", "6379"))
# Under pytest-xdist (`make test` runs workers gw0, gw1…) each worker has a database of its
# own and a Redis server of its own: Redis's pub/sub channels and CLIENT LIST span its
# numbered databases, so numbers alone would not keep two workers apart.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
PG_DATABASE = os.environ.get("TEST_PG_DATABASE", "multidb_test") + (f"_{WORKER}" if WORKER else "")
REDIS_DB = int(os.environ.get("TEST_REDIS_DB", "9"))
# Celery's queues and results, and the Socket.IO channel: never flushed between tests
BROKER_DB = int(os.environ.get("TEST_BROKER_DB", "10"))
SPARE_DB = int(os.environ.get("TEST_SPARE_DB", "13"))  # a broker of their own, for tests that need one
ROOT = Path(__file__).resolve().parents[1]


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


EMBEDDED = os.environ.get("TEST_EMBEDDED") == "1"  # asked for: SQLite and the in-process Redis
USE_POSTGRES = not EMBEDDED and _reachable(PG_HOST, PG_PORT)
USE_REDIS = not EMBEDDED and _reachable(REDIS_HOST, REDIS_PORT)
STATE_DIR = Path(tempfile.mkdtemp(prefix="multidb-tests-"))
ADMIN_PASSWORD = "admin-test-password"
OWN_REDIS = USE_REDIS and bool(WORKER)  # a real redis-server this worker starts for itself
REDIS_SERVER_PORT = REDIS_PORT if USE_REDIS and not OWN_REDIS else free_port()
REDIS_URL = f"redis://{REDIS_HOST}:{REDIS_SERVER_PORT}/{REDIS_DB}"
BROKER_URL = f"redis://{REDIS_HOST}:{REDIS_SERVER_PORT}/{BROKER_DB}"
SPARE_URL = f"redis://{REDIS_HOST}:{REDIS_SERVER_PORT}/{SPARE_DB}"
# MongoDB and S3 servers start when a test first needs them (the `files_backends` fixture).
MONGO_PORT, S3_PORT = free_port(), free_port()
S3_ENDPOINT_URL = f"http://127.0.0.1:{S3_PORT}"
FILES_BUCKET = "multidb-test-files"
_redis_server: subprocess.Popen[bytes] | None = None  # the embedded one, or a worker's own

os.environ.update(
    {
        "APP_ENV": "TESTING",
        "KEYS_DIR": str(STATE_DIR / "keys"),
        "PASSWORD_HASH_ROUNDS": "4",
        "ADMIN_PASSWORD": ADMIN_PASSWORD,
        "LOG_LEVEL": "WARNING",
        "DATABASE_URL": f"postgresql+asyncpg://postgres@{PG_HOST}:{PG_PORT}/{PG_DATABASE}"
        if USE_POSTGRES
        else f"sqlite+aiosqlite:///{STATE_DIR}/test.sqlite3",
        "REDIS_URL": REDIS_URL,
        "BROKER_URL": BROKER_URL,
        "MONGO_URL": f"mongodb://127.0.0.1:{MONGO_PORT}",
        "MONGO_DATABASE": PG_DATABASE,
        "S3_ENDPOINT_URL": S3_ENDPOINT_URL,
        "FILES_BUCKET": FILES_BUCKET,
        "AWS_ACCESS_KEY_ID": "testing",  # the embedded S3 server checks no signature
        "AWS_SECRET_ACCESS_KEY": "testing",
        "REALTIME_SWEEP_INTERVAL": "0.5",
        "BEAT_REFRESH_INTERVAL": "0.5",
        "BEAT_LOCK_TTL": "2",
        "SCHEDULE_MIN_INTERVAL": "1",  # beat's tests fire schedules every second
        "AWS_DEFAULT_REGION": "us-east-1",
        "SAM_CLI_TELEMETRY": "0",
    }
)
for name in (
    "TRUST_GATEWAY_AUTHORIZER",
    "CONNECTIONS_SECRET_ID",
    "KEYS_SECRET_ID",
    "LOGIN_KEY_SECRET_ID",
    "PUBLIC_KEYS_PARAMETER",
):
    os.environ.pop(name, None)


def backends() -> str:
    sql = f"PostgreSQL {PG_HOST}:{PG_PORT}/{PG_DATABASE}" if USE_POSTGRES else "SQLite (embedded, aiosqlite)"
    cache = (
        f"Redis {REDIS_HOST}:{REDIS_SERVER_PORT}"
        if USE_REDIS
        else f"embedded Redis (fakeredis, TCP :{REDIS_SERVER_PORT})"
    )
    return f"backends: {sql}; {cache}"


def _backends(config: pytest.Config) -> str:
    if not controls_workers(config):
        return backends()
    where = "a database and a Redis server of its own" if USE_REDIS else "a database of its own"
    return f"{backends()}; each worker (gw0, gw1…) has {where}"


def pytest_report_header(config: pytest.Config) -> str:
    return _backends(config)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    terminalreporter.write_line(_backends(terminalreporter.config))
    costs = [f"{name} {int(n)} tests {t:.0f} s, {cpu:.0f} CPU s" for name, (n, t, cpu) in _tier_costs.items() if n]
    if costs:
        terminalreporter.write_line("tiers (test time summed over workers, and CPU time): " + "; ".join(costs))
    costly = sorted(_file_cpu.items(), key=lambda pair: -pair[1])[:12]
    if costly:
        listed = ", ".join(f"{path} {cpu:.0f}" for path, cpu in costly)
        terminalreporter.write_line(f"costliest files (CPU s): {listed}")


# Tiers by cost: a test's tier is its own marker, or its folder's (tests/unit: unit, tests/e2e:
# process, any other: integration). `make test-fast` runs the unit tier.
TIERS = ("unit", "integration", "process", "infra")
FOLDER_TIERS = {"unit": "unit", "e2e": "process", "docker": "process"}
# tests/docker drives a Docker engine and `sam local` for minutes, as root: `make test-docker`
# alone runs it (DOCKER_TESTS=1), never `make test`.
collect_ignore = [] if os.environ.get("DOCKER_TESTS") == "1" else ["docker"]
PROCESS_FIXTURES = {"worker", "realtime", "built"}  # a test that uses one is a process test
# The costly tiers first, so that two workers finish together rather than one waiting on the
# last long file (a sort is stable: a file's tests keep their order).
RUN_ORDER = ("process", "infra", "integration", "unit")


def tier(item: pytest.Item) -> str:
    return next((name for name in TIERS if item.get_closest_marker(name)), "")


# What each tier cost in this run: its tests' setup, call and teardown, summed over workers, in
# time and in CPU time (the worker's and that of the child processes it reaped meanwhile: what
# the run costs on a busy machine, where the time says more about the others).
_tier_costs: dict[str, list[float]] = {name: [0.0, 0.0, 0.0] for name in TIERS}
_file_cpu: dict[str, float] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    properties = dict(report.user_properties)
    name = properties.get("tier")
    if name not in _tier_costs:
        return
    _tier_costs[name][0] += report.when == "call" or (report.when == "setup" and report.outcome != "passed")
    _tier_costs[name][1] += report.duration
    _tier_costs[name][2] += properties.get("cpu", 0.0)
    path = report.nodeid.split("::", 1)[0]
    _file_cpu[path] = _file_cpu.get(path, 0.0) + properties.get("cpu", 0.0)


def cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


@pytest.hookimpl(tryfirst=True)  # before -m selects by tier
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if not tier(item):
            starts_processes = PROCESS_FIXTURES & set(getattr(item, "fixturenames", ()))
            item.add_marker("process" if starts_processes else FOLDER_TIERS.get(item.path.parent.name, "integration"))
        item.user_properties.append(("tier", tier(item)))  # reaches the controller with each report
    items.sort(key=lambda item: RUN_ORDER.index(tier(item)))


# pytest-xdist hands a worker a whole group of tests: a file, so that its module fixtures start
# once, or a folder whose files share a session fixture (tests/e2e: one `make dev` stack).
# (A scheduler of our own: xdist's `xdist_group` marks rename node ids, which pytest 9 no
# longer lets a plugin do.)
SHARED_FOLDERS = ("tests/e2e/",)


def worker_group(nodeid: str) -> str:
    path = nodeid.split("::", 1)[0]
    return next((folder for folder in SHARED_FOLDERS if path.startswith(folder)), path)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    from xdist.scheduler import LoadScopeScheduling

    class Groups(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return worker_group(nodeid)

    return Groups(config, log)


_TEST_STARTED = pytest.StashKey[float]()
_CPU_MARK = pytest.StashKey[float]()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    item.stash[_TEST_STARTED] = time.time()
    item.stash[_CPU_MARK] = cpu_seconds()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> "Iterator[None]":
    """Each report carries the CPU time of its phase; a failed test's report carries the log
    tails of the worker, beat and Socket.IO processes it used."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    now = cpu_seconds()
    report.user_properties.append(("cpu", now - item.stash.get(_CPU_MARK, now)))
    item.stash[_CPU_MARK] = now
    processes = sys.modules.get("tests.processes")
    if not report.failed or processes is None:
        return
    started = item.stash.get(_TEST_STARTED, 0.0)
    for process in processes.STARTED:
        if process.alive() or process.started >= started:
            state = "running" if process.alive() else f"exited {process.popen.returncode}"
            report.sections.append((f"{process.name} (pid {process.popen.pid}, {state})", process.tail()))


async def _recreate_postgres_database() -> None:
    import asyncpg

    connection = await asyncpg.connect(user="postgres", host=PG_HOST, port=PG_PORT, database="test")
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')
        await connection.execute(f'CREATE DATABASE "{PG_DATABASE}"')
    finally:
        await connection.close()


def controls_workers(config: pytest.Config) -> bool:
    """This process hands tests to pytest-xdist workers and runs none itself."""
    return bool(getattr(config.option, "numprocesses", None)) and not hasattr(config, "workerinput")


def pytest_configure(config: pytest.Config) -> None:
    if controls_workers(config):  # the workers share one folder for what they build once
        os.environ["TEST_RUN_DIR"] = tempfile.mkdtemp(prefix="multidb-run-")
        return
    if ON_CI and not EMBEDDED and not (USE_POSTGRES and USE_REDIS):
        raise pytest.UsageError(f"CI must test against real PostgreSQL and Redis; found {backends()}")
    if USE_POSTGRES:
        asyncio.run(_recreate_postgres_database())
    if OWN_REDIS:
        if shutil.which("redis-server") is None:
            raise pytest.UsageError("parallel workers each start a Redis server: redis-server must be on PATH")
        _start_redis_server(["redis-server", "--port", str(REDIS_SERVER_PORT), "--save", "", "--appendonly", "no"])
    elif not USE_REDIS:
        _start_redis_server([sys.executable, "-m", "infra.local.embedded_redis", "--port", str(REDIS_SERVER_PORT)])
    _flush_broker()


def _start_redis_server(command: list[str]) -> None:
    global _redis_server
    _redis_server = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while not _reachable(REDIS_HOST, REDIS_SERVER_PORT):
        if _redis_server.poll() is not None or time.monotonic() > deadline:
            raise pytest.UsageError(f"the Redis server did not start: {' '.join(command)}")
        time.sleep(0.05)


def _flush_broker() -> None:
    import redis

    with redis.Redis.from_url(BROKER_URL) as client:
        client.flushdb()


def pytest_unconfigure(config: pytest.Config) -> None:
    if controls_workers(config):
        shutil.rmtree(os.environ.pop("TEST_RUN_DIR"), ignore_errors=True)
    if _redis_server is not None:
        _redis_server.terminate()
        _redis_server.wait(timeout=10)


@pytest.fixture(scope="session")
def database() -> None:
    """Migrate the test database with Alembic and run the initdb seed, as a deploy does."""
    from infra.deploy import initdb
    from multidb import runtime

    initdb.migrate()
    runtime.run(initdb.seed())


@pytest.fixture
def clean_state(database: None) -> None:
    """An empty Redis and only the admin user in the database (every integration and e2e test
    starts so: their conftest.py uses it for each; a unit test asks for it by name)."""
    from tests.helpers import reset_state

    reset_state()


@pytest.fixture(scope="session")
def gateway() -> "LocalGateway":
    from infra.local.gateway.invoke import LocalGateway

    return LocalGateway()


def _api(gateway: "LocalGateway") -> "Api":
    from tests.helpers import Api

    gateway.forget_decisions()
    return Api(gateway)


@pytest.fixture
def api(gateway: "LocalGateway", files_backends: None) -> "Api":
    """The API through the local gateway; MongoDB runs, since user and role changes are audited there."""
    return _api(gateway)


@pytest.fixture
def admin(api: "Api") -> str:
    """An access token of the admin user the database starts with."""
    return api.login("admin", ADMIN_PASSWORD).access


@pytest.fixture
def spare_broker() -> "Iterator[str]":
    """A broker database no worker reads, emptied before and after: only the process under test
    answers or takes what is sent there, and every message sent stays to be counted."""
    import redis

    with redis.Redis.from_url(SPARE_URL) as client:
        client.flushdb()
    yield SPARE_URL
    with redis.Redis.from_url(SPARE_URL) as client:
        client.flushdb()


@pytest.fixture(scope="session")
def caching_gateway() -> "LocalGateway":
    """The gateway with API Gateway's authorizer cache on (AuthorizerCacheTtl=300)."""
    from infra.deploy.template import load
    from infra.local.gateway.invoke import LocalGateway

    return LocalGateway(load(overrides=(("AuthorizerCacheTtl", "300"),)))


@pytest.fixture
def caching_api(caching_gateway: "LocalGateway", files_backends: None) -> "Api":
    return _api(caching_gateway)


@pytest.fixture(scope="session")
def worker() -> "Iterator[Process]":
    """A real Celery worker on the test broker, ready once it has answered a ping."""
    from multidb.queue.tasks import ping
    from tests.processes import start_worker

    process = start_worker()
    try:
        assert ping.apply_async().get(timeout=60) == "pong", process.log()
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="session")
def files_backends() -> "Iterator[None]":
    """MongoDB (SecantusDB) and S3 (moto) over TCP on the ports the environment names, with the bucket."""
    import boto3

    from tests.processes import Process, listening, wait_for

    bin_dir = Path(sys.executable).parent
    servers = [
        Process(
            "mongodb",
            [
                str(bin_dir / "secantusd-py"),
                "--host",
                "127.0.0.1",
                "--port",
                str(MONGO_PORT),
                "--storage-path",
                ":memory:",
                "--log-level",
                "WARNING",
            ],
        ),
        Process("s3", [str(bin_dir / "moto_server"), "-H", "127.0.0.1", "-p", str(S3_PORT)]),
    ]
    try:
        for server, port in zip(servers, (MONGO_PORT, S3_PORT), strict=True):
            wait_for(lambda: listening(port) or not server.alive(), timeout=30, what=f"the {server.name} server")
            assert server.alive(), server.log()
        boto3.client("s3", endpoint_url=S3_ENDPOINT_URL, region_name="us-east-1").create_bucket(Bucket=FILES_BUCKET)
        yield
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def empty_files(files_backends: None) -> None:
    """An empty files collection (indexes built) and an empty bucket, no upload left open."""
    import boto3

    from multidb import mongo, runtime
    from multidb.files.documents import StoredFile

    async def clear() -> None:
        await mongo.init_documents(StoredFile, build_indexes=True)
        await StoredFile.find_all().delete()
        await mongo.database()["counters"].delete_many({"_id": {"$regex": "^file_bytes:"}})  # owners' totals

    runtime.run(clear())
    s3 = boto3.client("s3", endpoint_url=S3_ENDPOINT_URL, region_name="us-east-1")
    for item in s3.list_objects_v2(Bucket=FILES_BUCKET).get("Contents", []):
        s3.delete_object(Bucket=FILES_BUCKET, Key=item["Key"])
    for upload in s3.list_multipart_uploads(Bucket=FILES_BUCKET).get("Uploads", []):
        s3.abort_multipart_upload(Bucket=FILES_BUCKET, Key=upload["Key"], UploadId=upload["UploadId"])


@pytest.fixture(scope="session")
def realtime() -> "Iterator[str]":
    """The Socket.IO server on a free port; yields its URL."""
    from tests.processes import start_realtime

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = start_realtime(port, origins=url)
    try:
        process.wait_listening(port, "the Socket.IO server")
        yield url
    finally:
        process.stop()


@pytest.fixture
def configure(monkeypatch: pytest.MonkeyPatch) -> "Iterator[Callable[..., None]]":
    """Set environment variables the settings read, for one test: `configure(LOGIN_MAX_FAILURES=2)`."""
    from tests.helpers import reset_clients

    def apply(**values: object) -> None:
        for name, value in values.items():
            monkeypatch.setenv(name, str(value))
        reset_clients()

    yield apply
    monkeypatch.undo()
    reset_clients()


@pytest.fixture
def statements() -> "Iterator[list[str]]":
    """Every SQL statement sent to the database while the test runs (this process's engine)."""
    from sqlalchemy import event

    from multidb.db import get_engine

    sent: list[str] = []
    engine = get_engine().sync_engine

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        sent.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", record)
    yield sent
    event.remove(engine, "before_cursor_execute", record)
