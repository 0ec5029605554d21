"""Migrations, the initdb deploy step, and one pool reused across warm invocations."""

import asyncio
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from infra.deploy import initdb
from multidb import runtime
from multidb.db import get_engine
from multidb.models import InterfaceRoute, User
from multidb.rbac import catalogue, listed
from multidb.settings import get_settings
from tests.conftest import ADMIN_PASSWORD, USE_POSTGRES
from tests.helpers import Api, reset_clients


def alembic_config(url: str | None = None) -> Config:
    config = Config(str(initdb.ALEMBIC_INI))
    if url:
        config.attributes["database_url"] = url
    return config


def test_the_models_have_no_unmigrated_changes() -> None:
    command.check(alembic_config())  # raises if autogenerate would produce a migration


def test_migrations_go_down_and_up_on_a_fresh_database(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/fresh.sqlite3"
    command.upgrade(alembic_config(url), "head")
    command.downgrade(alembic_config(url), "base")
    command.upgrade(alembic_config(url), "head")


async def _counts() -> tuple[int, int]:
    async with AsyncSession(get_engine()) as session:
        admins = (await session.exec(select(func.count()).select_from(User).where(User.username == "admin"))).one()
        routes = (await session.exec(select(func.count()).select_from(InterfaceRoute))).one()
    return int(admins), int(routes)


def test_initdb_is_idempotent_and_the_sync_follows_the_catalogue() -> None:
    async def tamper() -> None:
        async with AsyncSession(get_engine()) as session:
            session.add(InterfaceRoute(code="GET:/gone", method="GET", path="/gone", name="", function="", access=""))
            route = (await session.exec(select(InterfaceRoute).where(InterfaceRoute.code == "GET:/api/v1/roles"))).one()
            route.name = "stale name"
            session.add(route)
            await session.commit()

    async def rows() -> dict[str, tuple[str, str, str]]:
        async with AsyncSession(get_engine()) as session:
            return {r.code: (r.method, r.path, r.name) for r in (await session.exec(select(InterfaceRoute))).all()}

    runtime.run(tamper())
    initdb.main()
    first = runtime.run(rows())
    initdb.main()
    assert runtime.run(rows()) == first
    assert set(first) == set(listed())  # routes, tasks, events, and the console's pages and buttons
    assert first["GET:/api/v1/roles"][2] == catalogue()["GET:/api/v1/roles"]["name"]
    assert runtime.run(_counts()) == (1, len(listed()))


def test_initdb_refuses_a_missing_admin_password_outside_local(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ADMIN_PASSWORD")
    reset_clients()
    try:
        with pytest.raises(SystemExit, match="ADMIN_PASSWORD"):
            initdb.admin_password()
        monkeypatch.setenv("APP_ENV", "LOCAL")
        reset_clients()
        assert initdb.admin_password() == "123456"  # the seed's default, LOCAL only, with a warning
    finally:
        monkeypatch.undo()
        reset_clients()
    assert get_settings().admin_password == ADMIN_PASSWORD


def test_warm_invocations_reuse_one_pool(api: Api) -> None:
    tokens = api.login("admin", ADMIN_PASSWORD)
    api.get("/api/v1/auth/user/info", token=tokens.access)  # warm
    connects: list[object] = []

    def count(*args: object) -> None:
        connects.append(args)

    event.listen(get_engine().sync_engine, "connect", count)
    try:
        for _ in range(20):
            assert api.get("/api/v1/auth/user/info", token=tokens.access).status_code == 200
    finally:
        event.remove(get_engine().sync_engine, "connect", count)
    assert connects == []


@pytest.mark.skipif(not USE_POSTGRES, reason="pg_stat_activity: PostgreSQL's list of connections")
def test_a_rotated_url_closes_the_old_pools_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    """A container that rotates its DATABASE_URL lets the old pool's idle connections go (they
    would hold a share of max_connections until the container ended)."""
    from sqlalchemy import text

    from multidb import db

    url = get_settings().database_url
    separator = "&" if "?" in url else "?"

    async def pids_of_two() -> list[int]:
        """Two connections of the current engine at once, back in its pool afterwards."""
        async with AsyncSession(get_engine()) as one, AsyncSession(get_engine()) as two:
            return [int((await s.exec(text("SELECT pg_backend_pid()"))).one()[0]) for s in (one, two)]  # type: ignore[call-overload]

    async def alive(pids: list[int]) -> int:
        async with AsyncSession(get_engine()) as session:
            query = text("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(:pids)")
            return int((await session.exec(query, params={"pids": pids})).one()[0])  # type: ignore[call-overload]

    monkeypatch.setenv("DATABASE_URL", f"{url}{separator}prepared_statement_cache_size=99")
    get_settings.cache_clear()
    old = runtime.run(pids_of_two())
    assert runtime.run(alive(old)) == 2  # pooled, idle, open
    monkeypatch.setenv("DATABASE_URL", f"{url}{separator}prepared_statement_cache_size=98")  # rotated
    get_settings.cache_clear()
    runtime.run(alive([]))  # the new engine's first use schedules the old one's closing on this loop

    async def closed() -> None:
        await asyncio.gather(*db._letting_go)

    runtime.run(closed())
    assert runtime.run(alive(old)) == 0
    monkeypatch.undo()
    reset_clients()


def test_a_page_and_its_total_are_one_statement_and_a_page_past_the_end_counts_apart(
    api: Api, statements: list[str]
) -> None:
    """`Repository.paginate` carries the total on each row (a count bounded by a LIMIT, in a
    scalar subquery)."""
    from multidb.db import session_scope
    from multidb.models import Role
    from multidb.repository import RoleRepository

    async def page(number: int, size: int) -> tuple[list[str], int]:
        async with session_scope() as session:
            rows, total = await RoleRepository(session).paginate(number, size, order_by=[Role.code])
            return [role.code for role in rows], total

    async def create() -> list[str]:
        async with session_scope() as session:
            for code in ("paged-a", "paged-b", "paged-c"):
                await RoleRepository(session).create(Role(name=code, code=code))
            return sorted(role.code for role in await RoleRepository(session).get_all())

    everything = runtime.run(create())
    assert len(everything) >= 3
    statements.clear()
    assert runtime.run(page(1, 1)) == (everything[:1], len(everything))
    assert runtime.run(page(2, 1)) == (everything[1:2], len(everything))
    assert [s for s in statements if s.startswith("SELECT")] == [s for s in statements if "(SELECT count(*)" in s]
    assert len([s for s in statements if s.startswith("SELECT")]) == 2
    statements.clear()
    assert runtime.run(page(len(everything) + 1, 1)) == ([], len(everything))  # past the end: counted apart
    assert len([s for s in statements if s.startswith("SELECT")]) == 2


def test_a_page_of_users_with_their_roles_is_one_statement_and_pages_users_not_rows(
    api: Api, statements: list[str]
) -> None:
    """Joined in, each user's roles repeat the user's row: the LIMIT must count users, and the
    total too."""
    from multidb.db import session_scope
    from multidb.models import Role
    from multidb.repository import UserRepository

    async def create() -> None:
        async with session_scope() as session:
            roles = [Role(name=code, code=code) for code in ("joined-a", "joined-b", "joined-c")]
            for n in range(3):
                name = f"joined-{n}"
                session.add(User(name=name, email=f"{name}@example.com", username=name, password_hash="x", roles=roles))

    async def page(number: int) -> tuple[list[tuple[str, list[str]]], int]:
        async with session_scope() as session:
            where = col(User.username).startswith("joined-")
            rows, total = await UserRepository(session).paginate(number, 2, where, order_by=[User.username])
            return [(user.username, sorted(role.code for role in user.roles)) for user in rows], total

    runtime.run(create())
    statements.clear()
    everyone = ["joined-a", "joined-b", "joined-c"]
    assert runtime.run(page(1)) == ([("joined-0", everyone), ("joined-1", everyone)], 3)
    assert runtime.run(page(2)) == ([("joined-2", everyone)], 3)
    assert len([s for s in statements if s.startswith("SELECT")]) == 2  # one a page


@pytest.mark.skipif(not USE_POSTGRES, reason="now() as the transaction's start is PostgreSQL's")
def test_a_read_session_runs_each_statement_alone_and_a_write_session_in_one_transaction() -> None:
    """`read_scope` sends no BEGIN or COMMIT (each statement its own transaction: now() moves
    between two of them); `session_scope` runs one transaction (now() stands still)."""
    from sqlalchemy import text

    from multidb.db import read_scope, session_scope

    async def two_nows(scope: Any) -> tuple[Any, Any]:
        async with scope() as session:
            first = (await session.exec(text("SELECT now()"))).scalar_one()  # type: ignore[call-overload]
            await session.exec(text("SELECT pg_sleep(0.02)"))  # type: ignore[call-overload]
            second = (await session.exec(text("SELECT now()"))).scalar_one()  # type: ignore[call-overload]
        return first, second

    first, second = runtime.run(two_nows(read_scope))
    assert second > first
    first, second = runtime.run(two_nows(session_scope))
    assert second == first


def test_a_read_session_refuses_to_write_and_stores_nothing() -> None:
    from multidb.db import read_scope

    async def write() -> None:
        async with read_scope() as session:
            session.add(InterfaceRoute(code="GET:/nope", method="GET", path="/nope", name="", function="", access=""))
            await session.flush()

    async def update_statement() -> None:  # a Core statement: no flush, still refused
        from sqlmodel import update

        async with read_scope() as session:
            await session.exec(update(InterfaceRoute).values(name="changed"))  # type: ignore[call-overload]

    with pytest.raises(RuntimeError, match="read-only"):
        runtime.run(write())
    with pytest.raises(RuntimeError, match="read-only"):
        runtime.run(update_statement())

    async def found() -> int:
        async with AsyncSession(get_engine()) as session:
            query = select(func.count()).select_from(InterfaceRoute).where(InterfaceRoute.code == "GET:/nope")
            changed = select(func.count()).select_from(InterfaceRoute).where(InterfaceRoute.name == "changed")
            return int((await session.exec(query)).one()) + int((await session.exec(changed)).one())

    assert runtime.run(found()) == 0


@pytest.mark.skipif(not USE_POSTGRES, reason="the idle check is set up for PostgreSQL's pool")
def test_a_pooled_connection_is_pinged_only_after_sitting_idle_and_replaced_if_the_server_closed_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    from multidb import db

    engine = get_engine()
    pings: list[int] = []
    ping = engine.sync_engine.dialect.do_ping
    monkeypatch.setattr(engine.sync_engine.dialect, "do_ping", lambda c: pings.append(1) or ping(c))

    async def backend_pid() -> int:
        async with db.read_scope() as session:
            return int((await session.exec(text("SELECT pg_backend_pid()"))).scalar_one())  # type: ignore[call-overload]

    first = runtime.run(backend_pid())
    assert runtime.run(backend_pid()) == first
    assert pings == []  # just used: no check
    monkeypatch.setattr(db, "PING_AFTER_IDLE", 0.0)  # now every pooled connection has sat "idle"
    assert runtime.run(backend_pid()) == first
    assert pings == [1]  # checked, alive, kept

    async def terminate(pid: int) -> None:  # the server (or RDS Proxy) closes the idle connection
        other = create_async_engine(get_settings().database_url, poolclass=NullPool)
        async with other.connect() as connection:
            await connection.execute(text(f"SELECT pg_terminate_backend({pid})"))
        await other.dispose()

    runtime.run(terminate(first))
    replaced = runtime.run(backend_pid())  # the request does not fail: the pool opens another
    assert replaced != first


def test_a_cursor_walks_the_users_as_page_numbers_do(api: Api, admin: str) -> None:
    """On either database: the row comparison (creation time, id) continues where a page ended."""
    from tests.helpers import create_user

    for n in range(4):
        create_user(f"walker-{n}")
    numbered = [api.get(f"/api/v1/users?pageSize=2&page={n}", token=admin).json()["data"] for n in (1, 2, 3)]
    walked, cursor = [numbered[0]], numbered[0]["nextCursor"]
    while cursor:
        walked.append(api.get(f"/api/v1/users?pageSize=2&cursor={cursor}", token=admin).json()["data"])
        cursor = walked[-1]["nextCursor"]
    assert [[u["id"] for u in p["records"]] for p in walked] == [[u["id"] for u in p["records"]] for p in numbered]
    assert [p["total"] for p in walked] == [5, 5, 5]  # the admin and the four
