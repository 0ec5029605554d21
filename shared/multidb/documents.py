"""MongoDB documents (Beanie 2 on PyMongo's async API): imported by the calls that use them,
never at cold start. `DocumentRepository` (document_repository.py) is how code reads and
writes them. A domain's documents live in its package (the files': files/documents.py);
`DOCUMENTS` names every one.

What the code asks of MongoDB, so that Amazon DocumentDB and Atlas both serve it: find with
equality, `$in`, ranges and case-insensitive regular expressions (always escaped literals);
count; sort, skip and limit; `find_one_and_update` with `$inc` and upsert (counters);
`insert_one`, `update_one` (with upsert), a document's save and delete; aggregation with
`$match` and `$group`/`$sum`; unique and TTL indexes. No transactions, no change streams, no
`$lookup`, no retryable writes (DocumentDB wants `retryWrites=false`).
"""

from datetime import datetime
from typing import Annotated, Any

from beanie import Document, Indexed
from pydantic import Field
from pymongo import ASCENDING, DESCENDING, IndexModel

from .files.documents import StoredFile


class Counter(Document):
    """A named sequence (`_id` is "<name>:<scope>"), advanced atomically by `next_value`."""

    id: str  # type: ignore[assignment]
    value: int = 0

    class Settings:
        name = "counters"


class AuditEntry(Document):
    """Who did what, when, from where: an append-only record (see multidb.audit). A tally
    (refused logins) is one entry per subject, address and window, counted in `events`."""

    seq: Annotated[int, Indexed(unique=True)]
    at: datetime  # a tally's first event
    last_at: datetime | None = None  # a tally's last event
    events: int = 1  # how many times it happened: more than one only in a tally
    window: datetime | None = None  # the start of a tally's window
    tally: str | None = None  # a tally's key: its action, window, address and subject
    action: str
    outcome: str
    user_id: str | None = None
    target_type: str | None = None
    target_id: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)

    class Settings:
        name = "audit"
        # The TTL index on `at` is built by the deploy step with AUDIT_RETENTION_DAYS. A page
        # is newest first (`seq` descending): each filter of GET /audit has an index that
        # finds its entries in that order, so a page reads its entries and no others
        # (tests/integration/test_scale.py checks every query against these).
        indexes = [
            IndexModel([("user_id", ASCENDING), ("seq", DESCENDING)], name="user_seq"),
            IndexModel([("action", ASCENDING), ("seq", DESCENDING)], name="action_seq"),
            IndexModel([("target_type", ASCENDING), ("target_id", ASCENDING), ("seq", DESCENDING)], name="target_seq"),
            IndexModel([("outcome", ASCENDING), ("seq", DESCENDING)], name="outcome_seq"),
            IndexModel([("tally", ASCENDING)], name="tally_unique", unique=True, sparse=True),
            IndexModel([("window", ASCENDING), ("action", ASCENDING), ("ip", ASCENDING)], name="tallies_by_address"),
        ]


DOCUMENTS: tuple[type[Document], ...] = (StoredFile, Counter, AuditEntry)
"""Every document model: `python -m infra.deploy.initdb --mongo-indexes` builds their indexes."""
