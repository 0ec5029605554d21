"""The one event loop of a Lambda container.

Mangum runs each invocation on the thread's current loop; the authorizer and scripts use
the same loop, so pooled connections (bound to the loop that opened them) survive across
warm invocations.
"""

import asyncio
from collections.abc import Coroutine
from typing import Any

_loop: asyncio.AbstractEventLoop | None = None


def get_loop() -> asyncio.AbstractEventLoop:
    """Return the container's loop (created on first use) and make it the thread's current one."""
    global _loop
    if _loop is None or _loop.is_closed():
        _loop = asyncio.new_event_loop()
    asyncio.set_event_loop(_loop)
    return _loop


def run[T](coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on the container's loop."""
    return get_loop().run_until_complete(coro)


def close_loop() -> None:
    """Close the container's loop (its self-pipe is a socket pair); the next `get_loop` makes
    a new one. Whatever was bound to the old loop must be closed first."""
    global _loop
    if _loop is not None and not _loop.is_closed():
        _loop.close()
    _loop = None
