"""The document repository against a MongoDB wire-protocol server over TCP: every operation,
filters that match literally, and a counter that stays consecutive under concurrent callers."""

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


def test_create_get_update_delete_one_and_many(notes: DocumentRepository[Note]) -> None:
    first = run(notes.create(make("ann", "first")))
    others = run(notes.create_all([make("ann", f"n{i}", i) for i in range(1, 4)] + [make("bob", "his", 9)]))
    assert run(notes.get(first.id)).text == "first"
    assert {n.text for n in run(notes.get_by_ids([others[0].id, others[1].id, others[0].id]))} == {"n1", "n2"}
    assert run(notes.count(equals("owner", "ann"))) == 4
    assert [n.text for n in run(notes.get_all(equals("owner", "ann"), sort=("-at",)))] == ["n3", "n2", "n1", "first"]

    run(notes.update(first, {"text": "changed"}))
    assert run(notes.get(first.id)).text == "changed"
    assert run(notes.update_by_id(others[0].id, {"text": "by id"})).text == "by id"
    assert run(notes.update_by_id(first.id.__class__(), {"text": "x"})) is None  # no such id
    assert run(notes.update_all(equals("owner", "bob"), {"text": "all of bob's"})) == 1
    assert run(notes.get(others[-1].id)).text == "all of bob's"

    run(notes.delete(first))
    assert run(notes.get(first.id)) is None
    assert run(notes.delete_all(equals("owner", "ann"))) == 3
    assert run(notes.count()) == 1


def test_pages_are_bounded_ordered_and_never_overlap(notes: DocumentRepository[Note]) -> None:
    run(notes.create_all([make("ann", f"n{i:03}", i % 5) for i in range(250)]))  # many share a time
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
    run(
        notes.create_all(
            [make("ann", "plain text"), make("ann", f"says {keyword} here"), make("ann", "a"), make("ann", "7")]
        )
    )
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
