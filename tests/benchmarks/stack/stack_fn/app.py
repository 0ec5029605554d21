"""The stack's page (`decision.py` is the stack's authorizer decision): the work of a warm
roles page done with FastAPI, SQLModel on asyncpg and redis-py alone, none of our code. One
Redis `MGET` of four keys (what the caller check reads), one `SELECT` of a page of roles with
their total, rows validated into a camelCase page model. The roles page's warm figure against
this one is what our design adds: the RBAC check, the envelope, the session rules, the error
handling.
"""

import os
import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import FastAPI, Query
from mangum import Mangum
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel
from redis.asyncio import Redis
from sqlalchemy import JSON, Column, func
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession


class Role(SQLModel, table=True):
    __tablename__ = "roles"

    id: uuid.UUID = Field(primary_key=True)
    name: str
    description: str
    code: str
    status: bool
    interface_permissions: list[str] = Field(sa_column=Column(JSON))
    button_permissions: list[str] = Field(sa_column=Column(JSON))
    router_permissions: list[str] = Field(sa_column=Column(JSON))
    created_at: datetime
    updated_at: datetime


class Camel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, from_attributes=True)


class RoleOut(Camel):
    id: uuid.UUID
    name: str
    description: str
    code: str
    status: bool
    interface_permissions: list[str]
    button_permissions: list[str]
    router_permissions: list[str]
    created_at: datetime
    updated_at: datetime


class PageOut(Camel):
    page: int
    page_size: int
    total: int
    records: list[RoleOut]


# Autocommit, as the functions' read-only routes: the SELECT is the one round trip (no BEGIN, no ROLLBACK).
engine = create_async_engine(os.environ["DATABASE_URL"], pool_size=1, isolation_level="AUTOCOMMIT")
redis = Redis.from_url(os.environ["REDIS_URL"], decode_responses=True)
app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)


@app.get("/page")
async def page(
    page: Annotated[int, Query(ge=1)] = 1, page_size: Annotated[int, Query(alias="pageSize", ge=1, le=100)] = 10
) -> PageOut:
    await redis.mget("stack:a", "stack:b", "stack:c", "stack:d")
    query: Any = (
        select(Role, func.count().over())
        .order_by(col(Role.created_at), col(Role.id))
        .offset((page - 1) * page_size)
        .limit(page_size)
    )
    async with AsyncSession(engine) as session:
        rows = (await session.exec(query)).all()
    records = [RoleOut.model_validate(row[0], by_alias=False, by_name=True) for row in rows]
    return PageOut(page=page, page_size=page_size, total=rows[0][1] if rows else 0, records=records)


handler = Mangum(app, lifespan="off")
