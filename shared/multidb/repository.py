"""Data access for the tables every function shares. Repositories never commit."""

import uuid

from sqlalchemy.orm import selectinload
from sqlmodel import func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from .models import User


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, user_id: uuid.UUID | str) -> User | None:
        try:
            key = user_id if isinstance(user_id, uuid.UUID) else uuid.UUID(user_id)
        except ValueError:
            return None
        query = select(User).where(User.id == key).options(selectinload(User.roles))  # type: ignore[arg-type]
        return (await self.session.exec(query)).first()

    async def get_by_username(self, username: str) -> User | None:
        query = select(User).where(User.username == username).options(selectinload(User.roles))  # type: ignore[arg-type]
        return (await self.session.exec(query)).first()

    async def count_admins(self) -> int:
        query = select(func.count()).select_from(User).where(User.is_admin, User.status)
        return int((await self.session.exec(query)).one())
