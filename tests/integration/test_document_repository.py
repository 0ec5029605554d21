"""The document repository against a MongoDB wire-protocol server over TCP: every operation
the files and audit functions use, filters that match literally, and a counter that stays
consecutive under concurrent callers."""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Annotated

import pytest
from beanie import Document, Indexed

from multidb import runtime
from multidb.document_repository import (
    DocumentRepository,
    between,
    contains,
    equals,
    next_value,
    one_of,
    where,
)
from multidb.mongo import database, init_documents
from multidb.repository import MAX_PAGE_SIZE

pytestmark = pytest.mark.first_pass_only("MongoDB is the same server in both passes")


class Note(Document):
    owner: Annotated[str, Indexed()]
    text: str
    at: datetime

    class Settings:
        name = "test_notes"


START = datetime(2026, 11, 28, 12, tzinfo=UTC)


@pytest.fixture
def notes(files_backends: None) -> DocumentRepository[Note]:
    async def fresh() -> None:
        await init_documents(Note, build_indexes=True)
        await Note.find_all().delete()
        # this test's sequences only: the audit log's keeps numbering the entries it holds
        await database()["counters"].delete_many({"_id": {"$regex": "^test:"}})

    runtime.run(fresh())
    return DocumentRepository(Note)


def run[T](coro: "asyncio.Future[T] | object") -> T:
    return runtime.run(coro)  # type: ignore[arg-type]


def make(owner: str, text: str, minutes: int = 0) -> Note:
    return Note(owner=owner, text=text, at=START + timedelta(minutes=minutes))


def create(notes: DocumentRepository[Note], documents: list[Note]) -> list[Note]:
    async def each() -> list[Note]:
        return [await notes.create(document) for document in documents]

    return run(each())


def test_create_get_count_update_delete(notes: DocumentRepository[Note]) -> None:
    first = run(notes.create(make("ann", "first")))
    his = create(notes, [make("ann", f"n{i}", i) for i in range(1, 4)] + [make("bob", "his", 9)])[-1]
    assert run(notes.get(first.id)).text == "first"
    assert run(notes.count(equals("owner", "ann"))) == 4
    assert run(notes.count(where(equals("owner", "ann"), one_of("text", ["n1", "n3", "none"])))) == 2
    assert [n.text for n in run(notes.get_all(equals("owner", "ann"), sort=("-at",)))] == ["n3", "n2", "n1", "first"]

    run(notes.update(first, {"text": "changed"}))
    assert run(notes.get(first.id)).text == "changed"
    assert run(notes.get(his.id)).text == "his"  # only the one document changed

    run(notes.delete(first))
    assert run(notes.get(first.id)) is None
    assert run(notes.count()) == 4


def test_pages_are_bounded_ordered_and_never_overlap(notes: DocumentRepository[Note]) -> None:
    create(notes, [make("ann", f"n{i:03}", i % 5) for i in range(250)])  # many share a time
    seen: list[str] = []
    for number in (1, 2, 3):
        page, total = run(notes.paginate(number, 1000, equals("owner", "ann"), sort=("-at",)))
        assert total == 250
        assert len(page) <= MAX_PAGE_SIZE
        seen += [str(n.id) for n in page]
    assert len(seen) == len(set(seen)) == 250  # the id breaks ties between equal times
    window, _ = run(
        notes.paginate(1, 10, where(equals("owner", "ann"), between("at", START, START + timedelta(minutes=2))))
    )
    assert {n.at for n in window} <= {START, START + timedelta(minutes=1)}


@pytest.mark.parametrize("keyword", [".*", '{"$ne": null}', "a|b", "(", "^first$", "\\d+"])
def test_a_keyword_matches_only_itself(notes: DocumentRepository[Note], keyword: str) -> None:
    create(notes, [make("ann", "plain text"), make("ann", f"says {keyword} here"), make("ann", "a"), make("ann", "7")])
    found = run(notes.get_all(contains("text", keyword)))
    assert [n.text for n in found] == [f"says {keyword} here"]


@pytest.mark.parametrize("value", [{"$ne": None}, {"$gt": ""}, ["a", "b"], {"$where": "1"}])
def test_a_filter_value_cannot_be_an_operator(notes: DocumentRepository[Note], value: object) -> None:
    with pytest.raises(TypeError):
        equals("owner", value)
    with pytest.raises(TypeError):
        one_of("owner", [value])
    with pytest.raises(ValueError, match="field"):
        equals("$where", "x")


def test_fifty_concurrent_callers_get_fifty_consecutive_values(notes: DocumentRepository[Note]) -> None:
    async def burst() -> list[int]:
        return list(await asyncio.gather(*(next_value("test", "scope") for _ in range(50))))

    values = run(burst())
    assert sorted(values) == list(range(1, 51))
    assert run(next_value("test", "other scope")) == 1  # scopes count apart
    assert run(next_value("test", "scope")) == 51
