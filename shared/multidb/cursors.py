"""Keyset cursors of the SQL lists: where the page after this one starts, as an opaque string.

A cursor names a page's last row by its sort key and id; the page after it is the rows whose
(key, id) comes after, one row comparison that the index of the list's order reads from at
any depth (a page number skips the rows before it instead). A cursor carries no authority:
the request's own filters still apply, so a forged one shows only what a page number could.

Two orders: creation time, then id (users, roles), and name, then id (schedules). The
patterns (`paging`) check a cursor's form at the route; a name that does not decode is a
422 here.
"""

import base64
import binascii
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, tuple_
from sqlmodel import col

from .clock import as_utc
from .errors import InvalidInput

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def by_creation(row: Any) -> str:
    """The cursor after `row` in creation order: its creation time (microseconds) and id."""
    return f"{(as_utc(row.created_at) - EPOCH) // timedelta(microseconds=1)}-{row.id.hex}"


def after_creation(model: Any, cursor: str) -> ColumnElement[bool]:
    """The rows after the cursor's in creation order (creation time, then id)."""
    stamp, row_id = cursor.split("-")
    at = EPOCH + timedelta(microseconds=int(stamp))
    return tuple_(col(model.created_at), col(model.id)) > (at, uuid.UUID(row_id))


def by_name(row: Any) -> str:
    """The cursor after `row` in name order: its name (base64url, unpadded) and id."""
    name = base64.urlsafe_b64encode(row.name.encode()).decode().rstrip("=")
    return f"{name}.{row.id.hex}"


def after_name(model: Any, cursor: str) -> ColumnElement[bool]:
    """The rows after the cursor's in name order (name, then id: names repeat across owners)."""
    encoded, row_id = cursor.split(".")
    try:
        name = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        # The right form, but no page gave it: the same 422 as a cursor of the wrong form
        raise InvalidInput("malformed cursor", fields={"query.cursor": "not a nextCursor of this list"}) from exc
    return tuple_(col(model.name), col(model.id)) > (name, uuid.UUID(row_id))
