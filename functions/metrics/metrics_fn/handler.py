"""Publish the broker's figures once a minute (an EventBridge schedule): `metrics_fn.handler.handler`.

- `QueuedTasks`: Celery messages waiting in the broker, in the default queue's Redis list
  `celery` and its priority lists (`celery\\x06\\x163`, …). The worker service scales on it,
  per running task.
- `ReservedTasks`: messages workers have taken and not yet acknowledged (the `unacked`
  hash): with acks late, the tasks running now.
- `BeatHeartbeatAge`: seconds since the beat that holds the lock last ticked. Absent when
  no beat ever ticked on this Redis; its alarm counts missing data as breaching.

They go out as one CloudWatch Embedded Metric Format line on stdout: CloudWatch Logs turns
it into metrics with no API call, so the function needs no monitoring endpoint in the VPC.
"""

import json
import time
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from multidb import logs
from multidb.keyspace import BEAT_HEARTBEAT
from multidb.settings import get_settings

if TYPE_CHECKING:
    from redis import Redis

NAMESPACE = "multidb"
DIMENSION = "Service"  # the settings' service_name, multidb-<stage>
QUEUE = "celery"  # Celery's default queue; the app routes every task there
PRIORITY_SEPARATOR = "\x06\x16"  # kombu's Redis transport: a priority's list is <queue><sep><step>
PRIORITY_STEPS = (3, 6, 9)  # and priority 0 is the queue's own list
UNACKED = "unacked"
UNITS = {"QueuedTasks": "Count", "ReservedTasks": "Count", "BeatHeartbeatAge": "Seconds"}

log = logs.get_logger("metrics")


def queue_keys(queue: str = QUEUE) -> list[str]:
    """Every Redis list that holds the queue's waiting messages."""
    return [queue, *(f"{queue}{PRIORITY_SEPARATOR}{step}" for step in PRIORITY_STEPS)]


def measure(broker: "Redis", now: float | None = None) -> dict[str, float]:
    """Read the figures in one round trip."""
    pipe = broker.pipeline(transaction=False)
    for key in queue_keys():
        pipe.llen(key)
    pipe.hlen(UNACKED)
    pipe.get(BEAT_HEARTBEAT)
    *lengths, reserved, heartbeat = pipe.execute()
    figures: dict[str, float] = {"QueuedTasks": sum(lengths), "ReservedTasks": reserved}
    if heartbeat is not None:
        age = (time.time() if now is None else now) - float(heartbeat)
        figures["BeatHeartbeatAge"] = round(max(age, 0.0), 1)
    return figures


def embedded_metrics(figures: dict[str, float], service: str, timestamp_ms: int) -> str:
    """The figures as one Embedded Metric Format log line."""
    metrics = [{"Name": name, "Unit": UNITS[name]} for name in figures]
    document: dict[str, Any] = {
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{"Namespace": NAMESPACE, "Dimensions": [[DIMENSION]], "Metrics": metrics}],
        },
        DIMENSION: service,
        **figures,
    }
    return json.dumps(document)


@lru_cache
def _broker() -> "Redis":
    import redis

    return redis.Redis.from_url(get_settings().message_broker_url, socket_connect_timeout=2, socket_timeout=2)


def handler(event: dict[str, Any], context: Any) -> dict[str, float]:
    settings = get_settings()
    logs.configure(settings.log_level)
    figures = measure(_broker())
    if "BeatHeartbeatAge" not in figures:
        log.warning("no beat has ever ticked on this broker")
    print(embedded_metrics(figures, settings.service_name, int(time.time() * 1000)), flush=True)
    return figures
