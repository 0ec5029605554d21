"""Alembic environment: the database URL comes from the shared settings, never from alembic.ini."""

import asyncio
from typing import Any

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel

import multidb.models  # noqa: F401  (registers the tables)
from multidb.db import ensure_sqlite_folder, tls_arguments
from multidb.settings import get_settings

target_metadata = SQLModel.metadata


def _on(dialect: str) -> Any:
    """Compare only what the models create on this dialect: an index declared for one
    dialect alone (`Index.ddl_if`, the trigram indexes of PostgreSQL) is not missing on
    another (autogenerate does not read `ddl_if` itself)."""

    def include(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        only = getattr(obj, "_ddl_if", None)  # set by ddl_if(); SQLAlchemy has no public reader
        return only is None or only.dialect is None or only.dialect == dialect

    return include


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_object=_on(connection.dialect.name),
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_online() -> None:
    url = context.config.attributes.get("database_url") or get_settings().database_url
    ensure_sqlite_folder(url)
    url, tls = tls_arguments(url)
    engine = create_async_engine(url, poolclass=pool.NullPool, connect_args=tls)
    async with engine.connect() as connection:
        await connection.run_sync(_configure)
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=get_settings().database_url, target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_online())
