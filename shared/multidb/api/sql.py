"""The request's database session, as a route dependency.

Apart from `deps.py` so that only the functions whose routes read SQL tables import SQLModel
and SQLAlchemy when their handler loads (files and audit reach SQL on a permission-cache
miss only, and import it then).
"""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends
from sqlmodel.ext.asyncio.session import AsyncSession

from ..db import DatabaseUnavailable, read_scope, session_scope
from .errors import ANSWERS


async def _session() -> AsyncIterator[AsyncSession]:
    """The request's unit of work: committed when the route returns, before the response is
    sent (so a failed commit is the request's error), rolled back if anything raises."""
    async with session_scope() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(_session, scope="function")]


async def _read_session() -> AsyncIterator[AsyncSession]:
    """A route that only reads: no transaction round trips (`db.read_scope`)."""
    async with read_scope() as session:
        yield session


ReadSessionDep = Annotated[AsyncSession, Depends(_read_session, scope="function")]

for _dependency in (_session, _read_session):
    setattr(_dependency, ANSWERS, (DatabaseUnavailable,))
