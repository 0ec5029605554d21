"""Reading the audit log through the document repository (entries are written by
`multidb.audit` wherever something happens)."""

from datetime import datetime

from multidb import logs
from multidb.api.responses import Page, view
from multidb.clock import as_utc
from multidb.document_repository import DocumentRepository, between, equals, where
from multidb.errors import DocumentStoreUnavailable
from multidb.mongo import init_documents

from .schemas import AuditPublic

log = logs.get_logger("audit")


async def page(
    number: int,
    size: int,
    user_id: str | None,
    action: str | None,
    target_type: str | None,
    target_id: str | None,
    outcome: str | None,
    since: datetime | None,
    until: datetime | None,
    cursor: str | None = None,
) -> Page[AuditPublic]:
    """A page of entries, newest first: by page number, or after `cursor` (the `nextCursor`
    of the page before: the entry number to continue below), which costs the same however
    deep it reaches."""
    from pymongo.errors import ConnectionFailure

    from multidb.documents import AuditEntry

    condition = where(
        equals("user_id", user_id) if user_id else None,
        equals("action", action) if action else None,
        equals("target_type", target_type) if target_type else None,
        equals("target_id", target_id) if target_id else None,
        equals("outcome", outcome) if outcome else None,
        between("at", as_utc(since), as_utc(until)),
    )
    try:
        await init_documents(AuditEntry)
        after = {"seq": {"$lt": int(cursor)}} if cursor else None
        repository = DocumentRepository(AuditEntry)
        entries, total = await repository.paginate(
            number, size, condition, sort=("-seq",), after=after, unique_order=True
        )
    except ConnectionFailure as exc:
        log.error("MongoDB unavailable: %s", type(exc).__name__)
        raise DocumentStoreUnavailable() from exc
    following = str(entries[-1].seq) if len(entries) == size else None
    return Page[AuditPublic].counted([view(AuditPublic, e) for e in entries], total, number, size, following)
