"""Reading the audit log through the document repository (entries are written by
`multidb.audit` wherever something happens)."""

from datetime import datetime

from multidb import logs
from multidb.api.responses import view
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
) -> tuple[list[AuditPublic], int]:
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
        entries, total = await DocumentRepository(AuditEntry).paginate(number, size, condition, sort=("-seq",))
    except ConnectionFailure as exc:
        log.error("MongoDB unavailable: %s", type(exc).__name__)
        raise DocumentStoreUnavailable() from exc
    return [view(AuditPublic, entry) for entry in entries], total
