"""The worker's scaling input and beat's liveness: the figures the metrics function publishes,
read from a real Redis broker that Celery itself filled, printed as CloudWatch reads them."""

import json
import time
from collections.abc import Callable, Iterator

import pytest
import redis
from kombu import Connection

from metrics_fn import handler as metrics
from multidb.keyspace import BEAT_HEARTBEAT
from tests.conftest import SPARE_URL

pytestmark = pytest.mark.first_pass_only("the metrics function reads PostgreSQL and Redis themselves")


@pytest.fixture
def broker(configure: Callable[..., None]) -> Iterator[redis.Redis]:
    """A broker database no worker reads, set as the function's broker."""
    client = redis.Redis.from_url(SPARE_URL)
    client.flushdb()
    configure(BROKER_URL=SPARE_URL, SERVICE_NAME="multidb-test")
    metrics._broker.cache_clear()
    yield client
    metrics._broker.cache_clear()
    client.flushdb()
    client.close()


def send(count: int, **options: object) -> None:
    """Queue tasks the way the tasks function does: Celery's send_task to the broker."""
    from celery import Celery

    client = Celery(broker=SPARE_URL)
    try:
        for number in range(count):
            client.send_task("multidb.add", (number, 1), **options)
    finally:
        client.close()


def published(capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    """Run the function as Lambda does and read back the one line CloudWatch turns into metrics."""
    figures = metrics.handler({"source": "aws.events", "detail-type": "Scheduled Event"}, None)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    assert len(lines) == 1, lines
    document: dict[str, object] = json.loads(lines[0])
    for name, value in figures.items():
        assert document[name] == value
    return document


def test_the_queue_depth_is_the_number_of_tasks_waiting(
    broker: redis.Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    send(7)
    send(3, priority=9)  # Redis keeps each priority in a list of its own
    document = published(capsys)
    assert document["QueuedTasks"] == 10
    assert document["ReservedTasks"] == 0
    assert document["Service"] == "multidb-test"
    [directive] = document["_aws"]["CloudWatchMetrics"]  # type: ignore[index]
    assert directive["Namespace"] == "multidb"
    assert directive["Dimensions"] == [["Service"]]
    assert {m["Name"]: m["Unit"] for m in directive["Metrics"]} == {"QueuedTasks": "Count", "ReservedTasks": "Count"}
    assert abs(document["_aws"]["Timestamp"] / 1000 - time.time()) < 60  # type: ignore[index]


def test_a_task_a_worker_took_counts_as_reserved_not_queued(
    broker: redis.Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    send(5)
    with Connection(SPARE_URL) as connection:  # what a worker does: take one, acknowledge it when done
        queue = connection.SimpleQueue("celery")
        message = queue.get(timeout=5)
        taken = published(capsys)
        message.ack()
        done = published(capsys)
        queue.close()
    assert (taken["QueuedTasks"], taken["ReservedTasks"]) == (4, 1)
    assert (done["QueuedTasks"], done["ReservedTasks"]) == (4, 0)


def test_beats_heartbeat_age_is_published_once_a_beat_ticked(
    broker: redis.Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "BeatHeartbeatAge" not in published(capsys)  # no beat yet: the alarm counts that as breaching
    broker.set(BEAT_HEARTBEAT, f"{time.time() - 42:.3f}")
    age = published(capsys)["BeatHeartbeatAge"]
    assert 41 <= age <= 44  # type: ignore[operator]


def test_the_metrics_function_imports_only_what_it_uses_and_opens_nothing_at_import() -> None:
    """Contract 3: no framework, no database driver, no connection until the first invocation."""
    import subprocess
    import sys

    from tests.helpers import ROOT

    paths = [str(ROOT / "shared"), str(ROOT / "functions" / "metrics")]
    code = (
        f"import sys, json, socket; sys.path[:0] = {paths!r}\n"
        "def refuse(*a, **k): raise AssertionError('network at import')\n"
        "socket.socket.connect = refuse\n"
        "import metrics_fn.handler\n"
        "print(json.dumps(sorted({name.split('.')[0] for name in sys.modules})))\n"
    )
    env = {"PATH": "/usr/bin:/bin", "APP_ENV": "PRODUCTION"}
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env, cwd="/")
    loaded = set(json.loads(out.stdout))
    assert {"fastapi", "celery", "kombu", "sqlalchemy", "asyncpg", "beanie", "pymongo", "boto3", "redis"}.isdisjoint(
        loaded
    )
