"""Data access for SQLModel tables: the generic base and one repository per table.

They all live here, in the layer, because every table is shared (the functions, beat, the
authorizer and initdb read the same rows). Repositories flush and never commit: the unit
of work that opened the session owns the transaction (`multidb.db.session_scope`).
"""

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, literal_column, or_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload, selectinload
from sqlmodel import SQLModel, col, delete, func, select, update
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from .clock import utcnow
from .errors import Conflict, NotFound
from .models import InterfaceRoute, PeriodicTask, Role, ScheduleChange, User, UserRole
from .paging import MAX_PAGE_SIZE, TOTAL_BOUND


class RoleNotFound(NotFound, error="role_not_found", message="role not found"):
    """No such role (or one of a bulk delete is missing)."""


class RoleCodeTaken(Conflict, error="role_code_taken", message="a role with this code already exists"):
    """A role with this code exists."""


class UserNotFound(NotFound, error="user_not_found", message="user not found"):
    """No such user (or one of a bulk delete is missing)."""


class UsernameTaken(Conflict, error="username_taken", message="a user with this username already exists"):
    """A user with this username exists."""


class ScheduleNotFound(NotFound, error="schedule_not_found", message="schedule not found"):
    """No such schedule, or another user's."""


class ScheduleNameTaken(Conflict, error="schedule_name_taken", message="a schedule with this name already exists"):
    """The caller already owns a schedule with this name."""


def like_pattern(keyword: str) -> str:
    """A `LIKE … ESCAPE '\\'` pattern that matches the keyword literally anywhere."""
    escaped = keyword.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def keyword_filter(keyword: str | None, *columns: Any) -> ColumnElement[bool] | None:
    if not keyword:
        return None
    pattern = like_pattern(keyword)
    return or_(*(col(column).ilike(pattern, escape="\\") for column in columns))


class Repository[M: SQLModel]:
    """The seed's CRUD base for one table: get, list, count, paginate, create, update, delete."""

    model: type[M]
    missing: type[NotFound] = NotFound  # a row that does not exist (or that the caller may not see)
    taken: type[Conflict] = Conflict  # a unique key another row holds

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @property
    def _id(self) -> Any:
        return col(self.model.id)  # type: ignore[attr-defined]

    def _options(self) -> list[Any]:
        """Loader options every read of a list applies (a repository's related rows)."""
        return []

    def _query(self) -> SelectOfScalar[M]:
        return select(self.model).options(*self._options())

    async def get(self, id_: uuid.UUID) -> M | None:
        return (await self.session.exec(self._query().where(self._id == id_))).first()

    async def require(self, id_: uuid.UUID) -> M:
        """The row with this id, or NotFound (404) with the repository's message."""
        row = await self.get(id_)
        if row is None:
            raise self.missing()
        return row

    async def get_by_ids(self, ids: Iterable[uuid.UUID]) -> list[M]:
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return []
        return list((await self.session.exec(self._query().where(self._id.in_(wanted)))).all())

    async def lock(self, ids: Iterable[uuid.UUID], *, shared: bool = False) -> None:
        """Hold these rows until the transaction ends: FOR UPDATE, or FOR SHARE with `shared`
        (in id order, so two transactions locking overlapping sets cannot deadlock; SQLite,
        which has one writer at a time, ignores it)."""
        wanted = sorted(set(ids))
        if wanted:
            query = select(self._id).where(self._id.in_(wanted)).order_by(self._id).with_for_update(read=shared)
            await self.session.exec(query)

    async def get_all(self, *where: ColumnElement[bool] | None, order_by: Sequence[Any] = ()) -> list[M]:
        query = self._query().where(*(w for w in where if w is not None)).order_by(*order_by)
        return list((await self.session.exec(query)).all())

    async def count(self, *where: ColumnElement[bool] | None) -> int:
        query = select(func.count()).select_from(self.model).where(*(w for w in where if w is not None))
        return int((await self.session.exec(query)).one())

    def _bounded_count(self, conditions: Sequence[ColumnElement[bool]]) -> Any:
        """How many rows match, counted up to TOTAL_BOUND + 1 and no further (a scalar
        subquery): the rows counted stop at the bound, however many the table holds."""
        matching: Select[Any] = (
            select(literal_column("1")).select_from(self.model).where(*conditions).limit(TOTAL_BOUND + 1)
        )
        return select(func.count()).select_from(matching.subquery()).scalar_subquery()

    async def bounded_count(self, *where: ColumnElement[bool] | None) -> int:
        conditions = [w for w in where if w is not None]
        return int((await self.session.exec(select(self._bounded_count(conditions)))).one())

    def _page_options(self) -> list[Any]:
        """How a page loads related rows: as every other read does, unless a repository knows better."""
        return self._options()

    async def paginate(
        self,
        page: int,
        page_size: int,
        *where: ColumnElement[bool] | None,
        order_by: Sequence[Any] = (),
        after: ColumnElement[bool] | None = None,
    ) -> tuple[list[M], int]:
        """One page (1-based) and its total counted up to TOTAL_BOUND + 1 (`paging.reported`
        says how to show it); the page size is capped at MAX_PAGE_SIZE.

        One statement: the bounded total rides along each row (an uncorrelated scalar
        subquery, which PostgreSQL evaluates once); only a page past the end, which has no row
        to carry it, asks for the count apart. The rows read are the page's (through the
        index of its order), the offset's, and at most TOTAL_BOUND + 1 for the total.
        `after` is a keyset cursor's condition (the rows after the last one shown, in this
        order): it narrows the page and not the total, and replaces `page`'s offset.
        """
        size = max(1, min(page_size, MAX_PAGE_SIZE))
        conditions = [w for w in where if w is not None]
        query = (
            select(self.model, self._bounded_count(conditions).label("total"))
            .options(*self._page_options())
            .where(*conditions, *([] if after is None else [after]))
            .order_by(*order_by, self._id)  # the id makes the order total, so pages never overlap
            .offset(0 if after is not None else (max(page, 1) - 1) * size)
            .limit(size)
        )
        # unique(): a joined relation repeats its row (SQLModel's TupleResult stub lacks the method)
        rows = (await self.session.exec(query)).unique().all()  # type: ignore[attr-defined]
        if rows:
            return [row[0] for row in rows], int(rows[0][1])
        return [], 0 if page <= 1 and after is None else await self.bounded_count(*conditions)

    async def create(self, obj: M) -> M:
        self.session.add(obj)
        await self._written()
        return obj

    async def update(self, obj: M, values: dict[str, Any]) -> M:
        for name, value in values.items():
            setattr(obj, name, value)
        self.session.add(obj)
        await self._written()
        return obj

    async def delete(self, obj: M) -> None:
        await self.session.delete(obj)
        await self._written()

    async def delete_many(self, ids: Iterable[uuid.UUID]) -> int:
        wanted = list(ids)
        if not wanted:
            return 0
        result = await self.session.exec(delete(self.model).where(self._id.in_(wanted)))  # type: ignore[call-overload]
        await self._written()
        return int(result.rowcount)

    async def _written(self) -> None:
        """After every write: flush it (a conflict is a 409), then `_changed`."""
        await self._flush()
        await self._changed()

    async def _changed(self) -> None:
        """Called after every write, in its transaction (a repository may record that it wrote)."""

    async def _flush(self) -> None:
        try:
            await self.session.flush()
        except IntegrityError as exc:
            raise self.taken() from exc


class RoleRepository(Repository[Role]):
    model = Role
    missing = RoleNotFound
    taken = RoleCodeTaken

    async def user_ids_of(self, role_ids: Iterable[uuid.UUID]) -> list[str]:
        """Users holding any of these roles: their cached grants go stale when the roles change."""
        wanted = list(role_ids)
        if not wanted:
            return []
        query = select(UserRole.user_id).where(col(UserRole.role_id).in_(wanted)).distinct()
        return [str(user_id) for user_id in (await self.session.exec(query)).all()]


class UserRepository(Repository[User]):
    model = User
    missing = UserNotFound
    taken = UsernameTaken

    def _options(self) -> list[Any]:
        """Users with their roles: a second statement for the roles of all of them."""
        return [selectinload(User.roles)]  # type: ignore[arg-type]

    def _page_options(self) -> list[Any]:
        """A page of users with their roles joined in: one statement (SQLAlchemy pages the
        users in a subquery, total included, and joins their roles to it)."""
        return [joinedload(User.roles)]  # type: ignore[arg-type]

    async def _one(self, where: ColumnElement[bool]) -> User | None:
        """One user with their roles joined in: one statement (every request of a signed-in user)."""
        query = select(User).options(joinedload(User.roles)).where(where)  # type: ignore[arg-type]
        return (await self.session.exec(query)).unique().first()

    async def get(self, id_: uuid.UUID | str) -> User | None:  # type: ignore[override]
        try:
            key = id_ if isinstance(id_, uuid.UUID) else uuid.UUID(id_)
        except ValueError:
            return None
        return await self._one(col(User.id) == key)

    async def get_by_username(self, username: str) -> User | None:
        return await self._one(col(User.username) == username)

    async def count_active_admins(self, excluding: Iterable[uuid.UUID] = ()) -> int:
        return await self.count(
            col(User.is_admin).is_(True), col(User.status).is_(True), col(User.id).not_in(list(excluding))
        )


class ScheduleRepository(Repository[PeriodicTask]):
    """Schedules; every write also bumps the change marker beat polls (`ScheduleChange`)."""

    model = PeriodicTask
    missing = ScheduleNotFound
    taken = ScheduleNameTaken

    async def _changed(self) -> None:
        await self.mark_changed()

    async def mark_changed(self) -> None:
        """Tell beat the schedules changed, in this transaction (also for what changes them
        indirectly: a user disabled, enabled or deleted)."""
        bump = update(ScheduleChange).where(col(ScheduleChange.id) == 1)
        values = {"version": col(ScheduleChange.version) + 1, "changed_at": utcnow()}
        result = await self.session.exec(bump.values(**values))  # type: ignore[call-overload]
        if result.rowcount == 0:  # a database the migration did not make (tests' create_all)
            self.session.add(ScheduleChange(version=1))
        await self.session.flush()

    async def lock_owner(self, owner_id: uuid.UUID) -> None:
        """Hold the owner's schedule lock until this transaction ends: what counts their
        schedules and then adds one runs alone, so a quota holds under concurrent requests.

        PostgreSQL: the owner's user row, locked `FOR NO KEY UPDATE` (other owners never
        wait, and the new rows' foreign-key checks are not blocked; a row lock, unlike an
        advisory lock, does not pin an RDS Proxy connection). SQLite lets one connection
        write at a time: writing first (the change marker) takes that lock now instead of
        at the insert, after the count."""
        connection = await self.session.connection()
        if connection.dialect.name == "sqlite":
            await self.mark_changed()
            return
        owner = select(User.id).where(col(User.id) == owner_id).with_for_update(key_share=True)
        await self.session.exec(owner)

    async def version(self) -> int:
        """The change marker as it stands (0 when nothing ever changed)."""
        found = (await self.session.exec(select(ScheduleChange.version).where(col(ScheduleChange.id) == 1))).first()
        return int(found or 0)


class RouteRepository(Repository[InterfaceRoute]):
    """The route catalogue as initdb syncs it (one row per method and path, and per task and event)."""

    model = InterfaceRoute

    async def delete_codes(self, codes: Iterable[str]) -> int:
        wanted = list(codes)
        if not wanted:
            return 0
        query = delete(InterfaceRoute).where(col(InterfaceRoute.code).in_(wanted))
        result = await self.session.exec(query)  # type: ignore[call-overload]
        await self._flush()
        return int(result.rowcount)
