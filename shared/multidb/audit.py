"""The audit log: who did what, when, from where, and how it ended — an append-only MongoDB
collection (`audit`), each entry numbered from a counter so that a missing one shows.

    await audit.record("role.update", target=("role", role_id), details=audit.changes(before, after))

The request's client IP, User-Agent and request id come from the request context. Details
never hold a password, a hash, a token, a key or a secret (such fields are dropped). Every
string stored (details, their keys, the User-Agent) loses its control characters (CR, LF,
NUL, bidi overrides, lone surrogates …) and is cut to `MAX_TEXT` characters, so a caller
cannot forge a line or a look-alike entry, nor make an entry unwritable.

What anyone may cause without limit (a refused login) is tallied, not appended: one entry
per subject (the username), client address and window, with a count (`tally`, `events`).

Writing an entry never fails the request it records — a MongoDB outage logs an error and
the request goes on — except where an entry is `required`: changes to roles and users (who
may do what) are audited or refused (503, nothing changed). Entries live
AUDIT_RETENTION_DAYS (365) days: a TTL index the deploy step builds.
"""

import hashlib
import re
import secrets
import time
import unicodedata
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from . import logs
from .errors import ServiceUnavailable

log = logs.get_logger("audit")


class AuditUnavailable(
    ServiceUnavailable, error="audit_unavailable", message="the audit log is unavailable; nothing was changed"
):
    """A change to users or roles could not be written to the audit log; nothing was changed."""


COLLECTION = "audit"
TIMEOUT = 1.0  # seconds an audit write may take, server selection included
PAUSE_AFTER_FAILURE = 30.0  # best-effort entries are not even tried this long after a failure
_SENSITIVE = re.compile(r"password|hash|token|secret|key", re.IGNORECASE)
MAX_TEXT = 256  # characters of any string an entry keeps
MAX_NAME = 64  # characters of a detail's name, a subject, an address or a request id
_UNSAFE = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})  # controls, formats (bidi), surrogates, separators
# Tallies one address may open per action and window (distinct usernames); past that its
# events share one entry whose subject is OTHERS. All addresses together open at most
# TALLIES_PER_WINDOW; past that every new one counts in one entry whose subject and
# address are OTHERS.
TALLIES_PER_ADDRESS = 20
TALLIES_PER_WINDOW = 10_000
OTHERS = "*"
_down_until = 0.0
_full_windows: set[tuple[str, datetime]] = set()  # (action, window) seen full: not counted again


def text(value: str, limit: int = MAX_TEXT) -> str:
    """`value` without control, format or separator characters, cut to `limit` characters."""
    head = value[: limit * 4]  # the work is bounded too, whatever was sent
    return "".join(c for c in head if unicodedata.category(c) not in _UNSAFE)[:limit]


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


def created(after: dict[str, Any]) -> dict[str, Any]:
    """A creation in the same shape: every field set, {field: {"from": None, "to": value}}."""
    return changes({}, after)


def deleted(before: dict[str, Any]) -> dict[str, Any]:
    """A deletion in the same shape: every field it had, {field: {"from": value, "to": None}}."""
    return {k: {"from": v, "to": None} for k, v in before.items() if v is not None}


def camel(values: dict[str, Any]) -> dict[str, Any]:
    """Field names as the API names them (`interval_seconds` → `intervalSeconds`)."""
    return {re.sub(r"_([a-z0-9])", lambda m: m.group(1).upper(), k): v for k, v in values.items()}


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {text(str(k), MAX_NAME): _clean(v) for k, v in value.items() if not _SENSITIVE.search(str(k))}
    if isinstance(value, list | tuple | set):
        return [_clean(v) for v in value]
    if isinstance(value, str):
        return text(value)
    if isinstance(value, int | float | bool | datetime) or value is None:
        return value
    return text(str(value))


def _optional(value: str | None, limit: int) -> str | None:
    return None if value is None else text(value, limit)


def _context() -> dict[str, str | None]:
    """Where the request came from, as an entry keeps it."""
    return {
        "ip": _optional(logs.client_ip.get(), MAX_NAME),
        "user_agent": _optional(logs.user_agent.get(), MAX_TEXT),
        "request_id": _optional(logs.request_id.get(), MAX_NAME),
    }


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
        **_context(),
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
            raise AuditUnavailable() from exc
        return
    _down_until = 0.0


async def record_created(kind: str, user_id: str, target_id: object, view: dict[str, Any], required: bool) -> None:
    """The `<kind>.create` entry of a new `kind` (role, user, schedule) and every field it has."""
    target = (kind, str(target_id))
    await record(f"{kind}.create", user_id=user_id, target=target, details=created(view), required=required)


async def tally(
    action: str,
    *,
    subject: str,
    reason: str,
    window: int,
    outcome: Outcome = Outcome.FAILURE,
    user_id: str | None = None,
    target: tuple[str, str | None] | None = None,
) -> None:
    """Count one more `action` of `subject` (a username) from the request's address in the
    entry of the current `window` (seconds, aligned to the clock): the first opens it, the
    others add to its count (`events`), its count per `reason` (`details.reasons`) and `last_at`.

    An entry is numbered when it is opened, so the log keeps no gap; it holds its first
    request's User-Agent and request id. Like `record`, a failure is logged, never raised.
    """
    global _down_until
    if time.monotonic() < _down_until:
        log.error("audit tally skipped (the log was unreachable moments ago): %s", action)
        return
    now = datetime.now(UTC)
    opened = datetime.fromtimestamp(now.timestamp() // window * window, UTC)
    where = _context()
    reason = re.sub(r"[^a-z0-9_]", "_", reason.lower())[:MAX_NAME]
    count = {"$inc": {"events": 1, f"details.reasons.{reason}": 1}, "$set": {"last_at": now}}
    try:
        import pymongo

        from .mongo import database

        collection = database()[COLLECTION]
        with pymongo.timeout(TIMEOUT):
            subject = text(subject, MAX_NAME)
            counted = await collection.update_one({"tally": _tally_key(action, opened, where["ip"], subject)}, count)
            if not counted.matched_count:  # the first of its window: open its entry
                crowded = await _crowded(collection, action, opened, where["ip"])
                if crowded:
                    subject = OTHERS
                if crowded == "window":
                    where = {**where, "ip": OTHERS}
                first = {
                    "seq": -1 - secrets.randbits(62),  # unique until it is numbered, right after
                    "at": now,
                    "window": opened,
                    "action": action,
                    "outcome": outcome.value,
                    "user_id": None if subject == OTHERS else user_id,
                    "target_type": target[0] if target else None,
                    "target_id": None if subject == OTHERS or not target else target[1],
                    **where,
                    "details.username": subject,
                }
                await _open(collection, _tally_key(action, opened, where["ip"], subject), count, first)
    except Exception as exc:
        _down_until = time.monotonic() + PAUSE_AFTER_FAILURE
        log.error("audit tally not written: %s (%s)", action, type(exc).__name__)
        return
    _down_until = 0.0


def _tally_key(action: str, opened: datetime, ip: str | None, subject: str) -> str:
    return hashlib.sha256(f"{action}\n{opened.isoformat()}\n{ip}\n{subject}".encode()).hexdigest()


async def _crowded(collection: Any, action: str, opened: datetime, ip: str | None) -> str | None:
    """Whether this address ("address") or every address together ("window") opened all the
    tallies it may in this window."""
    every = {"window": opened, "action": action}
    if (action, opened) in _full_windows:
        return "window"
    if await collection.count_documents(every, limit=TALLIES_PER_WINDOW) >= TALLIES_PER_WINDOW:
        if len(_full_windows) > 100:
            _full_windows.clear()  # old windows; a full one is found again by one count
        _full_windows.add((action, opened))
        return "window"
    mine = {**every, "ip": ip}
    if await collection.count_documents(mine, limit=TALLIES_PER_ADDRESS) >= TALLIES_PER_ADDRESS:
        return "address"
    return None


async def _open(collection: Any, key: str, count: dict[str, Any], first: dict[str, Any]) -> None:
    """Count in the tally `key`, opening it (and numbering it) if no one did yet."""
    from pymongo.errors import DuplicateKeyError

    from .document_repository import next_value

    change = {**count, "$setOnInsert": first}
    try:
        result = await collection.update_one({"tally": key}, change, upsert=True)
    except DuplicateKeyError:  # another request opened it between our two reads: count there
        result = await collection.update_one({"tally": key}, change, upsert=True)
    if result.upserted_id is not None:
        await collection.update_one({"_id": result.upserted_id}, {"$set": {"seq": await next_value(COLLECTION)}})


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
