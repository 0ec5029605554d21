"""Keyset cursors of the roles and schedules lists, on either database: following `nextCursor`
from the first page shows every row once, in the order page numbers show them, also where a
page ends inside a run of equal sort keys (roles created in the same microsecond, schedules
of the same name held by different owners); a cursor no page gave is a 422 in the envelope.
(The users' cursor: test_database.py; its cost at depth: test_scale.py.)"""

import base64
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert
from sqlmodel.ext.asyncio.session import AsyncSession

from multidb import runtime
from multidb.db import get_engine
from multidb.models import PeriodicTask, Role
from tests.helpers import Api, create_user

SCHEDULES = "/api/v1/tasks/schedules"
SAME_TIME = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


async def _insert(model: Any, rows: list[dict[str, Any]]) -> None:
    async with AsyncSession(get_engine()) as session:
        await session.exec(insert(model), params=rows)  # type: ignore[call-overload]
        await session.commit()


def _roles(count: int) -> None:
    """`count` roles created in the same microsecond: only their ids order them."""
    rows = [
        {
            "id": uuid.uuid4(),
            "name": f"tied {n}",
            "code": f"tied-{n:02d}",
            "created_at": SAME_TIME,
            "updated_at": SAME_TIME,
            "interface_permissions": [],
            "button_permissions": [],
            "router_permissions": [],
        }
        for n in range(count)
    ]
    runtime.run(_insert(Role, rows))


def _schedules(owners: list[str], names: list[str]) -> None:
    """Each owner holds a schedule of each name: a name repeats once per owner."""
    rows = [
        {
            "id": uuid.uuid4(),
            "owner_id": uuid.UUID(owner),
            "name": name,
            "task": "multidb.ping",
            "args": [],
            "kwargs": {},
            "interval_seconds": 3600,
            "created_at": SAME_TIME,
            "updated_at": SAME_TIME,
        }
        for owner in owners
        for name in names
    ]
    runtime.run(_insert(PeriodicTask, rows))


def _data(api: Api, token: str, path: str) -> dict[str, Any]:
    response = api.get(path, token=token)
    assert response.status_code == 200, response.body
    found: dict[str, Any] = response.json()["data"]
    return found


def _walk(api: Api, token: str, path: str) -> list[list[str]]:
    """The ids of each page, from the first page on by following `nextCursor`."""
    pages = [_data(api, token, path)]
    while pages[-1]["nextCursor"]:
        pages.append(_data(api, token, f"{path}&cursor={pages[-1]['nextCursor']}"))
        assert len(pages) < 50, "the cursor does not move on"
    return [[r["id"] for r in p["records"]] for p in pages if p["records"]]


def _numbered(api: Api, token: str, path: str, total: int, size: int) -> list[list[str]]:
    return [
        [r["id"] for r in _data(api, token, f"{path}&page={n}")["records"]] for n in range(1, -(-total // size) + 1)
    ]


def test_a_roles_cursor_walks_every_role_once_through_a_run_of_equal_creation_times(api: Api, admin: str) -> None:
    _roles(11)
    path = "/api/v1/roles?pageSize=3"
    total = _data(api, admin, path)["total"]
    assert total == 11
    walked = _walk(api, admin, path)
    ids = [i for p in walked for i in p]
    assert len(ids) == len(set(ids)) == total
    assert walked == _numbered(api, admin, path, total, 3)  # the same pages, the ties split alike


def test_a_roles_cursor_keeps_the_filters(api: Api, admin: str) -> None:
    _roles(7)
    path = "/api/v1/roles?pageSize=2&keyword=tied-0"
    walked = _walk(api, admin, path)
    assert sum(len(p) for p in walked) == 7
    assert all(len(p) == 2 for p in walked[:-1])


def test_a_schedules_cursor_walks_every_owners_schedules_once_where_names_repeat(api: Api, admin: str) -> None:
    owners = [create_user(f"owner-{n}") for n in range(3)]
    names = ["alpha", "beta gamma", "delta.epsilon:1", "zeta_é"]  # spaces, dots, colons, non-ASCII
    _schedules(owners, names)
    path = f"{SCHEDULES}?pageSize=5"
    walked = _walk(api, admin, path)
    ids = [i for p in walked for i in p]
    assert len(ids) == len(set(ids)) == 12
    assert walked == _numbered(api, admin, path, 12, 5)  # pages end inside a name's three rows
    records = [r for p in range(1, 4) for r in _data(api, admin, f"{path}&page={p}")["records"]]
    assert [r["name"] for r in records] == sorted(names * 3, key=lambda n: names.index(n))


def test_an_owners_schedules_cursor_shows_only_theirs(api: Api) -> None:
    owners = [create_user(f"owner-{n}", "owner-password", codes=("GET:/api/v1/tasks/schedules",)) for n in range(2)]
    _schedules(owners, [f"job-{n}" for n in range(5)])
    token = api.login("owner-0", "owner-password").access
    walked = _walk(api, token, f"{SCHEDULES}?pageSize=2")
    mine = {r["id"] for r in _data(api, token, f"{SCHEDULES}?pageSize=100")["records"]}
    assert [len(p) for p in walked] == [2, 2, 1]
    assert {i for p in walked for i in p} == mine


def _refused(api: Api, token: str, path: str) -> dict[str, Any]:
    response = api.get(path, token=token)
    assert response.status_code == 422, response.body
    body: dict[str, Any] = response.json()
    assert (body["code"], body["error"]) == (422, "invalid_input")
    assert [f["field"] for f in body["data"]] == ["query.cursor"]
    return body


def test_a_garbled_roles_or_schedules_cursor_is_a_422_naming_it(api: Api, admin: str) -> None:
    for garbled in ("x", "12-34", f"{'9' * 18}-{uuid.uuid4().hex}", f"1-{uuid.uuid4().hex}."):
        _refused(api, admin, f"/api/v1/roles?cursor={garbled}")
    for garbled in ("x", f"a%20b.{uuid.uuid4().hex}", f"YQ.{uuid.uuid4().hex[:31]}", f"{'A' * 684}.{uuid.uuid4().hex}"):
        _refused(api, admin, f"{SCHEDULES}?cursor={garbled}")


def test_a_forged_schedules_cursor_that_no_page_gave_is_a_422(api: Api, admin: str) -> None:
    """Of the right form, but not a name: base64 one character past a multiple of four, or
    bytes that are not UTF-8."""
    not_utf8 = base64.urlsafe_b64encode(b"\xff\xfe").decode().rstrip("=")
    for forged in ("A", "AAAAA", not_utf8):
        body = _refused(api, admin, f"{SCHEDULES}?cursor={forged}.{uuid.uuid4().hex}")
        assert body["data"][0]["message"] == "not a nextCursor of this list"


def test_a_forged_roles_cursor_shows_only_what_a_page_number_could(api: Api, admin: str) -> None:
    """A cursor is a position, not a permission: past every role, the page is empty."""
    _roles(3)
    far = _data(api, admin, f"/api/v1/roles?cursor={'9' * 17}-{uuid.uuid4().hex}")
    assert (far["records"], far["nextCursor"], far["total"]) == ([], None, 3)
