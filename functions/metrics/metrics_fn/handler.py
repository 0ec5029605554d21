"""Publish the broker's figures once a minute (an EventBridge schedule): `metrics_fn.handler.handler`.

- `QueuedTasks`: Celery messages waiting in the broker, in the default queue's Redis list
  `celery` and its priority lists (`celery\\x06\\x163`, …; `multidb.broker` reads them). The
  worker service scales on it, per running task.
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

from multidb import broker, logs
from multidb.settings import get_settings

if TYPE_CHECKING:
    from redis import Redis

NAMESPACE = "multidb"
DIMENSION = "Service"  # the settings' service_name, multidb-<stage>
UNITS = {"QueuedTasks": "Count", "ReservedTasks": "Count", "BeatHeartbeatAge": "Seconds"}

log = logs.get_logger("metrics")


def measure(client: "Redis", now: float | None = None) -> dict[str, float]:
    """Read the figures in one round trip."""
    pipe = client.pipeline(transaction=False)
    broker.ask(pipe)
    found = broker.figures(pipe.execute(), time.time() if now is None else now)
    figures: dict[str, float] = {"QueuedTasks": sum(found.waiting.values()), "ReservedTasks": found.reserved}
    if found.heartbeat_age is not None:
        figures["BeatHeartbeatAge"] = found.heartbeat_age
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
