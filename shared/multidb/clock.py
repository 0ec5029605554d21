"""Time in UTC, the only time zone the app stores. SQLite and MongoDB keep no zone and hand
stored times back naive; `as_utc` is how every reader makes them aware again."""

from datetime import UTC, datetime
from typing import overload


def utcnow() -> datetime:
    return datetime.now(UTC)


@overload
def as_utc(moment: datetime) -> datetime: ...
@overload
def as_utc(moment: None) -> None: ...
def as_utc(moment: datetime | None) -> datetime | None:
    """A naive time taken as UTC; an aware one (and None) as it is."""
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment
