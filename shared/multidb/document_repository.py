"""Data access for MongoDB documents: the seed's Beanie CRUD base, typed by document class,
with bounded pages, filters that cannot carry operators, and an atomic counter.

    files = DocumentRepository(StoredFile)
    page, total = await files.paginate(1, 20, where(equals("owner_id", uid), contains("name", keyword)))

Filters are built from helpers, never from a client's dict: a value is a literal (a string,
number, boolean, time or id — a dict or list is refused), and a keyword is matched as the
characters it is, so `.*` or `{"$ne": null}` finds only documents holding exactly that text.
Only this module (and the document classes) talks to Beanie.
"""

import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .paging import MAX_PAGE_SIZE, TOTAL_BOUND

if TYPE_CHECKING:
    from beanie import Document

type Filter = dict[str, Any]
_LITERALS = (str, int, float, bool, datetime, type(None))


def _literal(value: Any) -> Any:
    from bson import ObjectId

    if isinstance(value, (*_LITERALS, ObjectId)):
        return value
    raise TypeError(f"a filter value must be a literal, not {type(value).__name__}")


def _field(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", name):
        raise ValueError(f"not a field name: {name!r}")
    return name


def equals(field: str, value: Any) -> Filter:
    return {_field(field): _literal(value)}


def one_of(field: str, values: Iterable[Any]) -> Filter:
    return {_field(field): {"$in": [_literal(v) for v in values]}}


def contains(field: str, keyword: str) -> Filter:
    """Case-insensitive, the keyword's characters as they are (no pattern, no operator)."""
    if not isinstance(keyword, str):
        raise TypeError("a keyword is a string")
    return {_field(field): {"$regex": re.escape(keyword), "$options": "i"}}


def between(field: str, start: datetime | None = None, end: datetime | None = None) -> Filter:
    bounds = {op: _literal(v) for op, v in (("$gte", start), ("$lt", end)) if v is not None}
    return {_field(field): bounds} if bounds else {}


def where(*conditions: Filter | None) -> Filter:
    """All of these conditions (None and empty ones are left out)."""
    parts = [c for c in conditions if c]
    return {"$and": parts} if len(parts) > 1 else (parts[0] if parts else {})


class DocumentRepository[D: "Document"]:
    """get, get all, count, paginate, create, update and delete for one document class: what
    the files and audit functions use. The class must be bound to the database first
    (`multidb.mongo.init_documents`)."""

    def __init__(self, model: type[D]) -> None:
        self.model = model

    async def get(self, id_: Any) -> D | None:
        return await self.model.get(id_)

    async def get_all(self, filter_: Filter | None = None, sort: Sequence[str] = ()) -> list[D]:
        return await self.model.find(filter_ or {}).sort(*sort).to_list()

    async def count(self, filter_: Filter | None = None) -> int:
        return int(await self.model.find(filter_ or {}).count())

    async def bounded_count(self, filter_: Filter | None = None) -> int:
        """How many documents match, counted up to TOTAL_BOUND + 1 and no further."""
        collection = self.model.get_pymongo_collection()
        return int(await collection.count_documents(filter_ or {}, limit=TOTAL_BOUND + 1))

    async def paginate(
        self,
        page: int,
        page_size: int,
        filter_: Filter | None = None,
        sort: Sequence[str] = ("-_id",),
        after: Filter | None = None,
        unique_order: bool = False,
    ) -> tuple[list[D], int]:
        """One page (1-based) and its total counted up to TOTAL_BOUND + 1 (`paging.reported`
        says how to show it); the size is capped at MAX_PAGE_SIZE, and the id breaks ties, so
        pages never overlap (`unique_order`: the sort's fields are unique already, and an id
        after them would keep an index of those fields from serving the sort). `after` is a
        keyset cursor's condition (the documents after the last one shown, in this order): it
        narrows the page and not the total, and the page then starts there instead of
        `page`'s offset."""
        size = max(1, min(page_size, MAX_PAGE_SIZE))
        tied = not unique_order and all(s.lstrip("+-") != "_id" for s in sort)
        order = [*sort, "-_id"] if tied else list(sort)
        total = await self.bounded_count(filter_)
        skip = 0 if after else (max(page, 1) - 1) * size
        query = self.model.find(where(filter_, after)).sort(*order).skip(skip).limit(size)
        return await query.to_list(), total

    async def create(self, document: D) -> D:
        await document.insert()
        return document

    async def update(self, document: D, values: dict[str, Any]) -> D:
        for name, value in values.items():
            setattr(document, name, value)
        await document.save()
        return document

    async def delete(self, document: D) -> None:
        await document.delete()


COUNTERS = "counters"  # the `Counter` documents' collection


async def next_value(name: str, scope: str = "global") -> int:
    """The next number of a named sequence: one atomic find_one_and_update (upsert, $inc), so
    concurrent callers each get their own, consecutive values. Plain PyMongo: a caller that
    only counts (the audit log's writers) loads no Beanie."""
    from pymongo import ReturnDocument

    from .mongo import database

    found = await database()[COUNTERS].find_one_and_update(
        {"_id": f"{name}:{scope}"}, {"$inc": {"value": 1}}, upsert=True, return_document=ReturnDocument.AFTER
    )
    assert found is not None  # upsert with ReturnDocument.AFTER always returns the document
    return int(found["value"])
