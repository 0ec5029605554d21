"""The audit log: who did what, when, from where, and how it ended — an append-only MongoDB
collection (`audit`), each entry numbered from a counter so that a missing one shows.

    await audit.record("role.update", target=("role", role_id), details=audit.changes(before, after))

The request's client IP, User-Agent and request id come from the request context. Details
never hold a password, a hash, a token, a key or a secret (such fields are dropped).

Writing an entry never fails the request it records — a MongoDB outage logs an error and
the request goes on — except where an entry is `required`: changes to roles and users (who
may do what) are audited or refused (503, nothing changed). Entries live
AUDIT_RETENTION_DAYS (365) days: a TTL index the deploy step builds.
"""

import re
import time
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from . import logs
from .errors import ServiceUnavailable

log = logs.get_logger("audit")

COLLECTION = "audit"
TIMEOUT = 1.0  # seconds an audit write may take, server selection included
PAUSE_AFTER_FAILURE = 30.0  # best-effort entries are not even tried this long after a failure
_SENSITIVE = re.compile(r"password|hash|token|secret|key", re.IGNORECASE)
_down_until = 0.0


class Outcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"


def view(row: Any, *fields: str) -> dict[str, Any]:
    """What an entry keeps of a row: these fields, lists sorted (so `changes` sees only real changes)."""
    values = {name: getattr(row, name) for name in fields}
    return {name: sorted(v) if isinstance(v, list) else v for name, v in values.items()}


def changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The fields that changed, as {field: {"from": old, "to": new}}."""
    return {k: {"from": before.get(k), "to": v} for k, v in after.items() if before.get(k) != v}


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items() if not _SENSITIVE.search(str(k))}
    if isinstance(value, list | tuple | set):
        return [_clean(v) for v in value]
    if isinstance(value, str | int | float | bool | datetime) or value is None:
        return value
    return str(value)


async def record(
    action: str,
    *,
    outcome: Outcome = Outcome.SUCCESS,
    user_id: str | None = None,
    target: tuple[str, str | None] | None = None,
    details: dict[str, Any] | None = None,
    required: bool = False,
) -> None:
    """Append one entry; `required` ones raise 503 when they cannot be written."""
    global _down_until
    if not required and time.monotonic() < _down_until:
        log.error("audit entry skipped (the log was unreachable moments ago): %s", action)
        return
    entry = {
        "at": datetime.now(UTC),
        "action": action,
        "outcome": outcome.value,
        "user_id": user_id,
        "target_type": target[0] if target else None,
        "target_id": target[1] if target else None,
        "ip": logs.client_ip.get(),
        "user_agent": logs.user_agent.get(),
        "request_id": logs.request_id.get(),
        "details": _clean(details or {}),
    }
    try:
        import pymongo

        from .document_repository import next_value
        from .mongo import database

        with pymongo.timeout(TIMEOUT):
            entry["seq"] = await next_value(COLLECTION)
            await database()[COLLECTION].insert_one(entry)
    except Exception as exc:
        _down_until = time.monotonic() + PAUSE_AFTER_FAILURE
        log.error("audit entry not written: %s (%s)", action, type(exc).__name__)
        if required:
            raise ServiceUnavailable(
                "the audit log is unavailable; nothing was changed", error="audit_unavailable"
            ) from exc
        return
    _down_until = 0.0


async def ensure_retention(days: int) -> None:
    """The TTL index that ends entries `days` after they were written (deploy step; idempotent,
    and a changed retention updates the index in place)."""
    from .mongo import database

    collection = database()[COLLECTION]
    seconds = days * 24 * 3600
    indexes = await collection.index_information()
    current = indexes.get("at_ttl")
    if current is None:
        await collection.create_index("at", name="at_ttl", expireAfterSeconds=seconds)
    elif current.get("expireAfterSeconds") != seconds:
        await database().command({"collMod": COLLECTION, "index": {"name": "at_ttl", "expireAfterSeconds": seconds}})
