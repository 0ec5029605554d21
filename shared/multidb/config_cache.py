"""The one cache for configuration read from outside: settings, secrets, parameters and the
keys made from them. An entry lives `CONFIG_MAX_AGE` seconds (300 by default), so a rotated
secret or key counts within minutes and without a cold start; `refresh` reads again at once
(a token names an unknown `kid`). A failed read is never cached: the next call tries again.

    @expiring
    def secret_json(secret_id: str) -> dict[str, Any]: ...

It reads its own variable straight from the environment: settings themselves live in it.
"""

import functools
import os
import time
from collections.abc import Callable, Hashable
from typing import Any

DEFAULT_MAX_AGE = 300.0
_ALL: "list[Expiring[Any, Any]]" = []


def max_age() -> float:
    return float(os.environ.get("CONFIG_MAX_AGE", DEFAULT_MAX_AGE))


class Expiring[**P, R]:
    """A function's results, by argument, each kept for `max_age()` seconds (as it was when
    the entry was read: a hit costs a dictionary lookup and a clock read, nothing more)."""

    def __init__(self, load: Callable[P, R]) -> None:
        self.load = load
        self.entries: dict[Hashable, tuple[float, float, R]] = {}  # read at, expires at, value
        functools.update_wrapper(self, load)
        _ALL.append(self)

    @staticmethod
    def _key(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Hashable:
        return (args, tuple(sorted(kwargs.items()))) if kwargs else args

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        entry = self.entries.get(self._key(args, kwargs))
        if entry is not None and time.monotonic() < entry[1]:
            return entry[2]
        return self.refresh(*args, **kwargs)

    def refresh(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Read again now, whatever the entry's age."""
        value = self.load(*args, **kwargs)
        now = time.monotonic()
        self.entries[self._key(args, kwargs)] = (now, now + max_age(), value)
        return value

    def age(self, *args: P.args, **kwargs: P.kwargs) -> float:
        """Seconds since this entry was read (infinite if it never was)."""
        entry = self.entries.get(self._key(args, kwargs))
        return float("inf") if entry is None else time.monotonic() - entry[0]

    def cache_clear(self) -> None:
        self.entries.clear()

    def backdate(self, seconds: float) -> None:
        """Make every entry `seconds` older, as if that much time had passed (tests)."""
        self.entries = {key: (read - seconds, end - seconds, v) for key, (read, end, v) in self.entries.items()}


def expiring[**P, R](load: Callable[P, R]) -> Expiring[P, R]:
    return Expiring(load)


def forget_all() -> None:
    """Drop every entry of every cache (after a SnapStart restore: the snapshot may be hours
    old, and the monotonic clock that dates the entries does not count the time in between)."""
    for cache in _ALL:
        cache.cache_clear()
