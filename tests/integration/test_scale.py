"""Every list request costs its page, not the data stored: at about ten times the base data
set in PostgreSQL (10,000 users, 1,000 roles, 1,000 schedules of one user; 1,000 audit
entries and 600 files in MongoDB), seeded in bulk, each page is counted, never timed — the
SQL statements it sends and the rows they return, the Redis commands, the MongoDB documents returned — and must be its
page plus a constant; PostgreSQL's plan of each page (EXPLAIN) reads its table through the
index of its order; and every query the requests here send to MongoDB has its filter and
sort served by an index the documents declare (the test MongoDB server is a stand-in, so
the proof is the query shapes against the declared indexes, not its timings or plans).

What is proven here and what is not yet: docs/benchmarks.md, "Cost as the data grows".
(GET /tasks/runs, in Redis, is counted the same way by test_run_pages.py at 20,000 runs.)"""

import json
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import monitoring
from sqlalchemy import event, insert, text
from sqlmodel.ext.asyncio.session import AsyncSession

from multidb import audit, runtime
from multidb.db import get_engine
from multidb.models import PeriodicTask, Role, User, UserRole
from multidb.mongo import close, init_documents
from multidb.mongo import database as documents
from multidb.paging import TOTAL_BOUND
from tests.conftest import ADMIN_PASSWORD, USE_POSTGRES
from tests.helpers import Api, create_user, reset_state
from tests.tasks.test_run_pages import counted

pytestmark = [
    pytest.mark.first_pass_only("counts and plans of the real PostgreSQL; MongoDB is the same server in both passes"),
    pytest.mark.skipif(not USE_POSTGRES, reason="EXPLAIN and the counted rows are PostgreSQL's"),
]

# The test MongoDB server is a stand-in written in Python, slow to fill and to scan: the
# documents are fewer (the bounded total is shown on the users), and what proves their pages
# is the index each query has (the last test), not their number.
USERS, ROLES, SCHEDULES, AUDIT, FILES = 10_000, 1_000, 1_000, 1_000, 600
PAGE = 10
START = datetime(2026, 1, 1, tzinfo=UTC)
CODES = (
    "GET:/api/v1/users",
    "GET:/api/v1/roles",
    "GET:/api/v1/tasks/schedules",
    "GET:/api/v1/files",
    "POST:/api/v1/files/uploads",
)


@dataclass
class Sent:
    """What one request sent to the datastores."""

    sql: list[str] = field(default_factory=list)
    statements: list[tuple[str, Any]] = field(default_factory=list)  # as sent, with their parameters
    rows: int = 0  # rows the SQL statements returned
    mongo: list[dict[str, Any]] = field(default_factory=list)  # the commands, as sent
    documents: int = 0  # documents MongoDB returned (every batch)
    redis: Counter[str] = field(default_factory=Counter)


class MongoCommands(monitoring.CommandListener):
    """A PyMongo command listener: every command this process sends to MongoDB, and those of
    one request (`sending`)."""

    def __init__(self) -> None:
        self.sent: Sent | None = None
        self.shapes: list[dict[str, Any]] = []  # every command sent since the module's seed

    def started(self, event: Any) -> None:
        command = dict(event.command)
        self.shapes.append(command)
        if self.sent is not None:
            self.sent.mongo.append(command)

    def succeeded(self, event: Any) -> None:
        if self.sent is not None:
            cursor = event.reply.get("cursor") or {}
            self.sent.documents += len(cursor.get("firstBatch", cursor.get("nextBatch", [])))

    def failed(self, event: Any) -> None:
        pass


LISTENER = MongoCommands()


@pytest.fixture(scope="module")
def _clean_state() -> None:
    """The data is seeded once for the module (overrides the per-test reset)."""


async def _seed_sql(owner: uuid.UUID) -> None:
    now = START
    roles = [
        {
            "id": uuid.uuid4(),
            "name": f"role {n}",
            "code": f"scale-{n:05d}",
            "created_at": now + timedelta(seconds=n),
            "updated_at": now,
            "interface_permissions": [],
            "button_permissions": [],
            "router_permissions": [],
        }
        for n in range(ROLES)
    ]
    users = [
        {
            "id": uuid.uuid4(),
            "name": f"User {n}",
            "email": f"user{n}@example.com",
            "username": f"user{n:06d}",
            "password_hash": "x",
            "created_at": now + timedelta(seconds=n),
            "updated_at": now,
        }
        for n in range(USERS)
    ]
    links = [{"user_id": u["id"], "role_id": roles[n % ROLES]["id"]} for n, u in enumerate(users)]
    schedules = [
        {
            "id": uuid.uuid4(),
            "owner_id": owner,
            "name": f"every-{n:05d}",
            "task": "multidb.ping",
            "args": [],
            "kwargs": {},
            "interval_seconds": 3600,
            "created_at": now,
            "updated_at": now,
        }
        for n in range(SCHEDULES)
    ]
    async with AsyncSession(get_engine()) as session:
        for model, rows in ((Role, roles), (User, users), (UserRole, links), (PeriodicTask, schedules)):
            await session.exec(insert(model), params=rows)  # type: ignore[call-overload]
        await session.commit()
    # VACUUM as autovacuum would after a bulk load: it moves the new rows from the trigram
    # indexes' pending list (GIN's fastupdate) into the indexes, whose scan the planner
    # otherwise costs as reading the whole list; ANALYZE for the statistics.
    async with get_engine().connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text("VACUUM ANALYZE"))


async def _seed_documents(owner: str) -> None:
    from multidb.documents import DOCUMENTS

    await init_documents(*DOCUMENTS, build_indexes=True)
    await audit.ensure_retention(365)  # the TTL index on `at` the deploy step builds
    users = [str(uuid.uuid4()) for _ in range(100)]
    entries = [
        {
            "seq": n + 1,
            "at": START + timedelta(seconds=n),
            "events": 1,
            "action": ("user.update", "role.update")[n % 2],
            "outcome": ("success", "failure")[n % 5 == 0],
            "user_id": owner if n % 10 == 0 else users[n % 100],
            "target_type": "user",
            "target_id": users[(n * 7) % 100],
            "details": {},
        }
        for n in range(AUDIT)
    ]
    files = [
        {
            "owner_id": owner if n % 2 else users[n % 100],
            "name": f"file-{n}.txt",
            "content_type": "text/plain",
            "size": 10,
            "key": f"scale/{n}",
            "status": "ready",
            "created_at": START + timedelta(seconds=n),
            "updated_at": START,
        }
        for n in range(FILES)
    ]
    await documents()[audit.COLLECTION].insert_many(entries)
    await documents()["files"].insert_many(files)


@pytest.fixture(scope="module")
def seeded(gateway: Any, files_backends: None, database: None) -> Iterator[dict[str, str]]:
    """Ten times the base data set, and the tokens of the admin and of the owner of the
    schedules, files and a tenth of the audit entries."""
    from tests.conftest import _api

    reset_state()
    owner = create_user("owner", "owner-password", codes=CODES)
    runtime.run(close())  # the next client has the listener
    monitoring.register(LISTENER)
    runtime.run(documents()[audit.COLLECTION].drop())  # indexes too: the seed builds the declared ones
    runtime.run(documents()["files"].drop())
    runtime.run(_seed_sql(uuid.UUID(owner)))
    runtime.run(_seed_documents(owner))
    api = _api(gateway)
    tokens = {"admin": api.login("admin", ADMIN_PASSWORD).access, "owner": api.login("owner", "owner-password").access}
    yield tokens | {"owner_id": owner}
    runtime.run(documents()[audit.COLLECTION].drop())
    runtime.run(documents()["files"].drop())
    reset_state()


@contextmanager
def sending() -> Iterator[Sent]:
    """Count what the block sends to PostgreSQL, MongoDB and Redis."""
    sent = Sent()
    engine = get_engine().sync_engine

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        sent.sql.append(" ".join(statement.split()))
        sent.statements.append((statement, parameters))
        if cursor.description is not None:
            sent.rows += len(cursor._rows)  # the rows the adapted asyncpg cursor fetched

    event.listen(engine, "after_cursor_execute", record)
    LISTENER.sent = sent
    try:
        with counted() as redis:
            yield sent
        sent.redis = redis
    finally:
        LISTENER.sent = None
        event.remove(engine, "after_cursor_execute", record)


def page(api: Api, token: str, path: str) -> tuple[dict[str, Any], Sent]:
    api.get(path, token=token)  # warm: the caller's grants cached, as on any later request
    with sending() as sent:
        response = api.get(path, token=token)
    assert response.status_code == 200, response.body
    found: dict[str, Any] = response.json()["data"]
    return found, sent


SQL_PAGES = [
    ("admin", f"/api/v1/users?pageSize={PAGE}"),
    ("admin", f"/api/v1/users?pageSize={PAGE}&page=500"),
    ("admin", f"/api/v1/users?pageSize={PAGE}&status=true"),
    ("admin", f"/api/v1/roles?pageSize={PAGE}"),
    ("admin", f"/api/v1/roles?pageSize={PAGE}&page=90"),
    ("owner", f"/api/v1/tasks/schedules?pageSize={PAGE}"),
    ("owner", f"/api/v1/tasks/schedules?pageSize={PAGE}&enabled=true&page=50"),
    ("admin", f"/api/v1/tasks/schedules?pageSize={PAGE}"),
]


@pytest.mark.parametrize(("who", "path"), SQL_PAGES)
def test_a_sql_page_is_one_statement_returning_its_rows(api: Api, seeded: dict[str, str], who: str, path: str) -> None:
    found, sent = page(api, seeded[who], path)
    assert len(found["records"]) == PAGE
    assert len(sent.sql) == 1, sent.sql  # the page and its total, one statement (grants: cached)
    assert sent.rows <= PAGE, sent.rows  # a user's role joined in: one row each here
    assert sum(sent.redis.values()) <= 4, sent.redis  # the caller's cached grants (the authorizer's)


def test_a_page_of_a_roles_users_is_found_by_the_role(api: Api, seeded: dict[str, str]) -> None:
    roles, _ = page(api, seeded["admin"], "/api/v1/roles?pageSize=1&page=2")
    found, sent = page(api, seeded["admin"], f"/api/v1/users?pageSize={PAGE}&roleId={roles['records'][0]['id']}")
    assert (found["total"], found["totalExact"]) == (USERS // ROLES, True)
    assert len(sent.sql) == 1
    assert sent.rows == PAGE


def test_a_total_past_the_bound_is_marked_and_one_within_it_is_exact(api: Api, seeded: dict[str, str]) -> None:
    users, _ = page(api, seeded["admin"], "/api/v1/users?pageSize=1")
    assert (users["total"], users["totalExact"]) == (TOTAL_BOUND, False)  # 10,001 users: more than the bound
    roles, _ = page(api, seeded["admin"], "/api/v1/roles?pageSize=1")
    assert (roles["total"], roles["totalExact"]) == (ROLES + 1, True)  # the owner's role too
    mine, _ = page(api, seeded["owner"], "/api/v1/files?pageSize=1")
    assert (mine["total"], mine["totalExact"]) == (FILES // 2, True)


DEEP = [
    ("/api/v1/users", 899, "ix_users_created_at_id", "created_at"),
    ("/api/v1/roles", 90, "ix_roles_created_at_id", "created_at"),
    ("/api/v1/tasks/schedules", 90, "ix_periodic_tasks_name", "name"),
]


@pytest.mark.parametrize(("path", "depth", "index", "key"), DEEP)
def test_a_deep_page_by_cursor_is_one_statement_through_the_index(
    api: Api, seeded: dict[str, str], path: str, depth: int, index: str, key: str
) -> None:
    """Page 900 of users by number skips 8,990 of them; the page after page 899 by its cursor
    reads its ten from the index (a row comparison on the order's key and the id), whatever
    the depth. The same for roles (creation time) and everyone's schedules (name)."""
    numbered, _ = page(api, seeded["admin"], f"{path}?pageSize={PAGE}&page={depth}")
    following, sent = page(api, seeded["admin"], f"{path}?pageSize={PAGE}&cursor={numbered['nextCursor']}")
    by_number, _ = page(api, seeded["admin"], f"{path}?pageSize={PAGE}&page={depth + 1}")
    assert [u["id"] for u in following["records"]] == [u["id"] for u in by_number["records"]]
    assert len(sent.sql) == 1
    assert sent.rows == PAGE
    nodes = list(_nodes(_plan(*sent.statements[0])))
    (scan,) = [n for n in nodes if n.get("Index Name") == index]
    assert key in scan.get("Index Cond", ""), scan  # starts at the cursor, skips nothing


def _plan(statement: str, parameters: Any, *, seq_scan: bool = True) -> dict[str, Any]:
    """The plan PostgreSQL makes for a statement; without `seq_scan`, the plan it makes when a
    table's scan costs the most (SET LOCAL: for this transaction, which rolls back)."""

    async def explain() -> Any:
        async with get_engine().connect() as connection:
            if not seq_scan:
                await connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
            raw = await connection.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {statement}", parameters)
            return raw.scalar_one()

    found = runtime.run(explain())
    plan: dict[str, Any] = (json.loads(found) if isinstance(found, str) else found)[0]["Plan"]
    return plan


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


PLANS = [
    ("admin", f"/api/v1/users?pageSize={PAGE}&page=3", "users", "ix_users_created_at_id"),
    ("admin", f"/api/v1/roles?pageSize={PAGE}&page=3", "roles", "ix_roles_created_at_id"),
    ("admin", f"/api/v1/users?pageSize={PAGE}&roleId=", "user_roles", "ix_user_roles_role_id"),
    # One owner holds every schedule here: by its name or by owner and name, both in order.
    ("owner", f"/api/v1/tasks/schedules?pageSize={PAGE}&page=3", "periodic_tasks", "ix_periodic_tasks_name"),
    # A keyword of three characters or more: its trigrams find the rows (a BitmapOr of each
    # column's GIN index), never a walk of the table in page order.
    ("admin", f"/api/v1/users?pageSize={PAGE}&keyword=User%204242", "users", "ix_users_name_trgm"),
    ("admin", f"/api/v1/users?pageSize={PAGE}&keyword=user4242%40", "users", "ix_users_email_trgm"),
    # Fewer than three characters have no trigram: the page is read in its order and filtered.
    ("admin", f"/api/v1/users?pageSize={PAGE}&keyword=42", "users", "ix_users_created_at_id"),
]


@pytest.mark.parametrize(("who", "path", "table", "index"), PLANS)
def test_a_sql_page_reads_its_table_through_the_index_of_its_order(
    api: Api, seeded: dict[str, str], who: str, path: str, table: str, index: str
) -> None:
    """EXPLAIN of the statement the route sent: the page's rows come from the index (the
    bounded count may scan up to the bound; it is the only other reader of the table)."""
    if path.endswith("roleId="):
        roles, _ = page(api, seeded["admin"], "/api/v1/roles?pageSize=1&page=2")
        path += roles["records"][0]["id"]
    nodes = list(_nodes(_plan(*_captured(api, seeded[who], path))))
    _assert_through(nodes, table, index)


KEYWORDS = [
    ("admin", f"/api/v1/roles?pageSize={PAGE}&keyword=scale-00424", "roles", "ix_roles_code_trgm"),
    ("admin", f"/api/v1/roles?pageSize={PAGE}&keyword=role%20424", "roles", "ix_roles_name_trgm"),
    (
        "admin",
        f"/api/v1/tasks/schedules?pageSize={PAGE}&keyword=every-00424",
        "periodic_tasks",
        "ix_periodic_tasks_name_trgm",
    ),
    ("admin", f"/api/v1/tasks/schedules?pageSize={PAGE}&keyword=ping", "periodic_tasks", "ix_periodic_tasks_task_trgm"),
]


@pytest.mark.parametrize(("who", "path", "table", "index"), KEYWORDS)
def test_a_keyword_over_roles_or_schedules_has_a_trigram_index_to_read(
    api: Api, seeded: dict[str, str], who: str, path: str, table: str, index: str
) -> None:
    """1,000 roles or schedules fill a few pages: PostgreSQL rightly reads them all rather
    than a GIN index (the users' 10,000 rows above take the index). Costing the table's scan
    out shows the index serves the statement as sent (its operator class, its casts), as it
    will when the table is large enough for the planner to prefer it. (An owner's keyword
    reads their own schedules, at most their quota, by the owner's index: the admin's
    search of everyone's is the one the trigram indexes serve.)"""
    nodes = list(_nodes(_plan(*_captured(api, seeded[who], path), seq_scan=False)))
    _assert_through(nodes, table, index)


def _captured(api: Api, token: str, path: str) -> tuple[str, Any]:
    """The one statement a (warm) request sends."""
    captured: list[tuple[str, Any]] = []
    engine = get_engine().sync_engine

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        captured.append((statement, parameters))

    api.get(path, token=token)
    event.listen(engine, "before_cursor_execute", record)
    try:
        assert api.get(path, token=token).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", record)
    ((statement, parameters),) = captured
    return statement, parameters


def _assert_through(nodes: list[dict[str, Any]], table: str, index: str) -> None:
    through_index = [n for n in nodes if n.get("Index Name") == index]
    assert through_index, json.dumps(nodes, indent=1)
    # No node sorts the whole table: every Sort in the plan sorts a page's rows at most.
    assert all(n.get("Plan Rows", 0) <= TOTAL_BOUND for n in nodes if n["Node Type"] == "Sort"), nodes
    assert not [n for n in nodes if n["Node Type"] == "Seq Scan" and n.get("Relation Name") == table
                and n.get("Parent Relationship") != "InitPlan" and not _under_count(nodes, n)], nodes  # fmt: skip


def _under_count(nodes: list[dict[str, Any]], node: dict[str, Any]) -> bool:
    """Whether `node` belongs to the bounded count (an InitPlan or SubPlan: its scan stops at
    the bound's LIMIT)."""
    for parent in nodes:
        if parent.get("Parent Relationship") in ("InitPlan", "SubPlan") and any(n is node for n in _nodes(parent)):
            return True
    return False


DOCUMENT_PAGES = [
    ("admin", f"/api/v1/audit?pageSize={PAGE}"),
    ("admin", f"/api/v1/audit?pageSize={PAGE}&page=20"),
    ("admin", f"/api/v1/audit?pageSize={PAGE}&userId={{owner_id}}"),
    ("admin", f"/api/v1/audit?pageSize={PAGE}&action=role.update"),
    ("admin", f"/api/v1/audit?pageSize={PAGE}&targetType=user&targetId=x"),
    ("admin", f"/api/v1/audit?pageSize={PAGE}&outcome=failure"),
    ("admin", f"/api/v1/audit?pageSize={PAGE}&since=2026-01-01T01:00:00Z&until=2026-01-01T02:00:00Z"),
    ("admin", f"/api/v1/audit?pageSize={PAGE}&cursor=800"),
    ("owner", f"/api/v1/files?pageSize={PAGE}"),
    ("owner", f"/api/v1/files?pageSize={PAGE}&page=30"),
    ("owner", f"/api/v1/files?pageSize={PAGE}&status=ready&keyword=file-9"),
    ("admin", f"/api/v1/files?pageSize={PAGE}"),
]


@pytest.mark.parametrize(("who", "path"), DOCUMENT_PAGES)
def test_a_document_page_returns_its_documents_and_a_count(
    api: Api, seeded: dict[str, str], who: str, path: str
) -> None:
    found, sent = page(api, seeded[who], path.format(owner_id=seeded["owner_id"]))
    assert len(found["records"]) <= PAGE
    assert sent.documents <= PAGE + 1, sent.mongo  # the page, and the count's one result
    assert len(sent.mongo) == 2, sent.mongo  # the bounded count and the page
    assert sent.sql == []
    assert sum(sent.redis.values()) <= 4, sent.redis


def test_an_uploads_quota_check_reads_the_owners_total_not_their_files(api: Api, seeded: dict[str, str]) -> None:
    """The owner holds 300 files: admitting an upload reads their running total by its id
    (and counts their pending uploads, at most FILES_MAX_PENDING), never sums their sizes.
    The first upload counts them once: the seed wrote documents and no total."""
    body = {"name": "quota.txt", "size": 3}
    assert api.post("/api/v1/files/uploads", token=seeded["owner"], json_body=body).status_code == 201
    with sending() as sent:
        response = api.post("/api/v1/files/uploads", token=seeded["owner"], json_body=body)
    assert response.status_code == 201, response.body
    sums = [c for c in sent.mongo if "aggregate" in c and "$size" in json.dumps(c.get("pipeline"), default=str)]
    assert sums == []
    assert sent.documents <= 3, sent.mongo  # the total, the pending count's one result


def test_cursor_pages_follow_each_other_as_numbered_pages_do(api: Api, seeded: dict[str, str]) -> None:
    lists = ("audit", "files", "users", "roles", "tasks/schedules")
    for path in (f"/api/v1/{name}?pageSize=7" for name in lists):
        token = seeded["admin"]
        numbered = [api.get(f"{path}&page={n}", token=token).json()["data"] for n in (1, 2, 3)]
        cursor = numbered[0]["nextCursor"]
        followed = []
        for _ in range(2):
            following = api.get(f"{path}&cursor={cursor}", token=token).json()["data"]
            followed.append(following)
            cursor = following["nextCursor"]
        ids = [[r.get("seq", r.get("id")) for r in p["records"]] for p in numbered[1:]]
        assert ids == [[r.get("seq", r.get("id")) for r in p["records"]] for p in followed]


@pytest.mark.parametrize("cursor", ["0", "-1", "abc", "1" * 19, "123-nothex", "9" * 15 + "-" + "f" * 24])
def test_a_malformed_cursor_is_422(api: Api, seeded: dict[str, str], cursor: str) -> None:
    for path in ("/api/v1/audit", "/api/v1/files", "/api/v1/users"):
        assert api.get(f"{path}?cursor={cursor}", token=seeded["admin"]).status_code == 422


@pytest.mark.parametrize(
    ("path", "cursor"),
    [
        ("/api/v1/audit", "9" * 18),
        ("/api/v1/files", "9" * 14 + "-" + "f" * 24),
        ("/api/v1/users", "9" * 17 + "-" + "f" * 32),
    ],
)
def test_the_furthest_cursor_a_pattern_admits_answers_a_page(
    api: Api, seeded: dict[str, str], path: str, cursor: str
) -> None:
    """The largest time or number a cursor's pattern lets through is still a time or number the
    stores hold (no overflow, no 500): a page answers, from the newest (audit and files, newest
    first) or empty (users, oldest first)."""
    answer = api.get(f"{path}?cursor={cursor}", token=seeded["admin"])
    assert answer.status_code == 200, answer.body
    assert bool(answer.json()["data"]["records"]) == (path != "/api/v1/users")


# ---------------------------------------------------------------- MongoDB's indexes


def _conjunctions(filter_: dict[str, Any]) -> list[dict[str, Any]]:
    """The filter as alternatives, each a conjunction of field conditions (a `$or` is one
    alternative per branch, as MongoDB plans it)."""
    alternatives: list[dict[str, Any]] = [{}]
    for key, value in filter_.items():
        if key == "$and":
            for part in value:
                alternatives = [{**a, **b} for a in alternatives for b in _conjunctions(part)]
        elif key == "$or":
            alternatives = [{**a, **b} for a in alternatives for part in value for b in _conjunctions(part)]
        else:
            alternatives = [{**a, key: value} for a in alternatives]
    return alternatives


def _equality(condition: Any) -> bool:
    return not isinstance(condition, dict) or set(condition) <= {"$eq", "$in"}


def _served(conjunction: dict[str, Any], sort: list[tuple[str, int]], keys: list[tuple[str, int]]) -> bool:
    """Whether an index of `keys` serves the query: its leading keys are fields the filter
    fixes (equality or `$in`), and then either the sort's keys in order (all directions the
    same or all reversed), or, with no sort, a field the filter ranges over. Other conditions
    (a keyword) are checked on the documents the index finds."""
    fixed = {f for f, c in conjunction.items() if _equality(c)}
    position = 0
    while position < len(keys) and keys[position][0] in fixed:
        position += 1
    rest = keys[position:]
    wanted = [(f, d) for f, d in sort if f not in fixed]
    if wanted:
        head = rest[: len(wanted)]
        return head == wanted or head == [(f, -d) for f, d in wanted]
    return position > 0 or bool(rest and rest[0][0] in conjunction)


def _query(command: dict[str, Any]) -> tuple[str, dict[str, Any], list[tuple[str, int]]] | None:
    """A query's collection, filter and sort (a find, an aggregation's `$match` (a count),
    an update, a delete, a find-and-modify)."""
    verb = next(iter(command))
    collection = command[verb]
    if verb == "find":
        return collection, command.get("filter") or {}, [(f, int(d)) for f, d in (command.get("sort") or {}).items()]
    if verb == "aggregate" and command["pipeline"] and "$match" in command["pipeline"][0]:
        return collection, command["pipeline"][0]["$match"], []
    if verb in ("update", "delete"):
        return collection, command[f"{verb}s"][0]["q"], []
    if verb == "findAndModify":
        return collection, command.get("query") or {}, []
    return None


def test_every_query_sent_here_is_served_by_a_declared_index(api: Api, seeded: dict[str, str]) -> None:
    """Every MongoDB query the requests of this module send (each list filter, cursor pages,
    an upload's quota check, the sweep), against the indexes the documents declare (what
    `initdb --mongo-indexes` builds)."""
    from multidb.files import lifecycle

    for who, path in DOCUMENT_PAGES:
        assert api.get(path.format(owner_id=seeded["owner_id"]), token=seeded[who]).status_code == 200
    files = api.get("/api/v1/files?pageSize=2", token=seeded["owner"]).json()["data"]
    assert api.get(f"/api/v1/files?cursor={files['nextCursor']}", token=seeded["owner"]).status_code == 200
    token = seeded["owner"]
    upload = api.post("/api/v1/files/uploads", token=token, json_body={"name": "a.txt", "size": 3})
    assert upload.status_code == 201, upload.body
    LISTENER.sent = Sent()
    try:
        runtime.run(lifecycle.sweep())
    finally:
        LISTENER.sent = None

    async def declared() -> dict[str, list[list[tuple[str, int]]]]:
        found: dict[str, list[list[tuple[str, int]]]] = {}
        for name in (audit.COLLECTION, "files", "counters"):
            indexes = await (await documents()[name].list_indexes()).to_list()
            found[name] = [[(f, int(d)) for f, d in index["key"].items()] for index in indexes] + [[("_id", 1)]]
        return found

    indexes = runtime.run(declared())
    queries = [q for q in map(_query, LISTENER.shapes) if q is not None]
    assert {collection for collection, _, _ in queries} >= {audit.COLLECTION, "files"}
    unserved = []
    for collection, filter_, sort in queries:
        for conjunction in _conjunctions(filter_):
            if (conjunction or sort) and not any(_served(conjunction, sort, keys) for keys in indexes[collection]):
                unserved.append((collection, conjunction, sort))
    assert unserved == [], unserved
