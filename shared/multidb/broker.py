"""What the Celery broker (Redis) holds, read without Celery: the messages waiting in each queue,
those workers have taken and not yet acknowledged, and when beat last ticked.

The metrics function publishes these figures to CloudWatch (it must not import Celery); the tasks
function answers them at `GET /api/v1/tasks/status`. Both read them in one round trip, with a
blocking or an asyncio pipeline: `ask` queues the commands, `figures` reads the replies.
"""

from dataclasses import dataclass
from typing import Any, Protocol

from .keyspace import BEAT_HEARTBEAT

QUEUES = ("celery",)  # Celery's default queue; the app routes every task there
PRIORITY_SEPARATOR = "\x06\x16"  # kombu's Redis transport: a priority's list is <queue><sep><step>
PRIORITY_STEPS = (3, 6, 9)  # and priority 0 is the queue's own list
UNACKED = "unacked"  # kombu's hash of the messages workers hold (acks late: the tasks running now)


def queue_keys(queue: str) -> list[str]:
    """Every Redis list that holds the queue's waiting messages."""
    return [queue, *(f"{queue}{PRIORITY_SEPARATOR}{step}" for step in PRIORITY_STEPS)]


class Pipeline(Protocol):
    """redis-py's pipeline, blocking or asyncio: each command is queued until it executes."""

    def llen(self, name: str) -> Any: ...

    def hlen(self, name: str) -> Any: ...

    def get(self, name: str) -> Any: ...


@dataclass(frozen=True, slots=True)
class Figures:
    waiting: dict[str, int]  # messages waiting, by queue
    reserved: int  # taken by a worker, not yet acknowledged
    heartbeat_age: float | None  # seconds since beat's lock holder last ticked; None: no beat ever did


def ask(pipe: Pipeline) -> None:
    """Queue the commands `figures` reads the replies of."""
    for queue in QUEUES:
        for key in queue_keys(queue):
            pipe.llen(key)
    pipe.hlen(UNACKED)
    pipe.get(BEAT_HEARTBEAT)


def figures(replies: list[Any], now: float) -> Figures:
    """The figures from the replies to `ask`'s commands, at the time `now`."""
    *lengths, reserved, heartbeat = replies
    lists = len(PRIORITY_STEPS) + 1
    waiting = {queue: sum(lengths[n * lists : (n + 1) * lists]) for n, queue in enumerate(QUEUES)}
    age = None if heartbeat is None else round(max(now - float(heartbeat), 0.0), 1)
    return Figures(waiting=waiting, reserved=int(reserved), heartbeat_age=age)
