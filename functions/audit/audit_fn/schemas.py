"""Audit bodies: AuditPublic."""

from datetime import datetime
from typing import Any

from pydantic import Field

from multidb.api.responses import CamelModel


class AuditPublic(CamelModel):
    seq: int = Field(description="Consecutive numbers: a gap means an entry is missing")
    at: datetime = Field(description="When it happened (a tally: its first event)")
    last_at: datetime | None = Field(default=None, description="A tally's last event")
    events: int = Field(default=1, description="How many times it happened (a tally of refused logins: the count)")
    action: str = Field(description="e.g. auth.login, role.update, file.upload, task.run")
    outcome: str = Field(description="success or failure")
    user_id: str | None = Field(description="Who did it (null: not known, e.g. a login for an unknown name)")
    target_type: str | None
    target_id: str | None
    ip: str | None
    user_agent: str | None
    request_id: str | None
    details: dict[str, Any] = Field(description="What changed (before/after), or why it failed; never a secret")
