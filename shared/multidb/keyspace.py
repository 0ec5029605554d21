"""Redis key names: a family of keys is a name, and one key is that name and its ids joined by
colons (`auth:refresh:<user id>:<jti>`). Families are declared beside the code that owns them;
docs/database.md lists them all."""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Keys:
    """`Keys("auth:refresh")(user_id, jti)` is `auth:refresh:<user_id>:<jti>`."""

    name: str

    @property
    def prefix(self) -> str:
        """What every key of the family starts with."""
        return f"{self.name}:"

    def __call__(self, *ids: str) -> str:
        return ":".join((self.name, *ids))


# Written by beat (queue/scheduler.py) and read by the metrics function, which must not import
# Celery: declared here, where both can import them.
beat_key = Keys("multidb:beat")
BEAT_LOCK = beat_key("lock")  # which beat sends the schedules' runs
BEAT_HEARTBEAT = beat_key("heartbeat")  # when that beat last ticked
