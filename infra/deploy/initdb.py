"""Deploy step: migrate the database, sync the route catalogue, create the admin user.

    python -m infra.deploy.initdb                  # PostgreSQL: migrations, catalogue, admin
    python -m infra.deploy.initdb --mongo-indexes  # MongoDB: build the documents' indexes

Idempotent: run it after every deploy. The admin password comes from ADMIN_PASSWORD; only
in LOCAL does it fall back to the seed's `admin` / `123456`, with a warning.
"""

import sys
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlmodel.ext.asyncio.session import AsyncSession

from multidb import runtime
from multidb.db import session_scope
from multidb.models import InterfaceRoute, User
from multidb.rbac import listed
from multidb.repository import RouteRepository, UserRepository
from multidb.security.passwords import hash_password
from multidb.settings import DEFAULT_ADMIN_PASSWORD, Environment, get_settings

ALEMBIC_INI = Path(__file__).with_name("alembic.ini")

ADMIN_USERNAME = "admin"


def migrate(database_url: str | None = None) -> None:
    config = Config(str(ALEMBIC_INI))
    if database_url:
        config.attributes["database_url"] = database_url
    command.upgrade(config, "head")


async def sync_catalogue(session: AsyncSession) -> tuple[int, int]:
    """Make the interface_routes table equal the generated catalogue (routes, tasks, events,
    the console's pages and buttons); returns (upserted, deleted)."""
    routes = RouteRepository(session)
    wanted = listed()
    existing = {route.code: route for route in await routes.get_all()}
    for code, entry in wanted.items():
        values = {name: entry[name] for name in ("method", "path", "name", "description", "function", "access")}
        if code in existing:
            await routes.update(existing[code], values)
        else:
            await routes.create(InterfaceRoute(code=code, **values))
    stale = set(existing) - set(wanted)
    await routes.delete_codes(stale)
    return len(wanted), len(stale)


def admin_password() -> str:
    settings = get_settings()
    if settings.admin_password:
        return settings.admin_password
    if settings.app_env is Environment.LOCAL:
        print(
            # The README names the password; a log that holds one teaches people to log them.
            "WARNING: admin created with the seed's default password (see the README); "
            "set ADMIN_PASSWORD for anything but local development.",
            file=sys.stderr,
        )
        return DEFAULT_ADMIN_PASSWORD
    raise SystemExit("ADMIN_PASSWORD must be set outside LOCAL")


async def ensure_admin(session: AsyncSession) -> bool:
    """Create the admin user unless it exists; returns whether it was created."""
    users = UserRepository(session)
    if await users.get_by_username(ADMIN_USERNAME) is not None:
        return False
    admin = User(
        name="Administrator",
        email="admin@example.com",
        username=ADMIN_USERNAME,
        password_hash=hash_password(admin_password()),
        is_admin=True,
    )
    await users.create(admin)
    return True


async def seed() -> None:
    async with session_scope() as session:
        upserted, deleted = await sync_catalogue(session)
        created = await ensure_admin(session)
    print(f"catalogue: {upserted} routes, {deleted} removed; admin {'created' if created else 'exists'}")


async def build_mongo_indexes() -> None:
    """Create the indexes every Beanie document declares (existing ones are left alone)."""
    from multidb.audit import ensure_retention
    from multidb.documents import DOCUMENTS
    from multidb.mongo import init_documents

    await init_documents(*DOCUMENTS, build_indexes=True)
    days = get_settings().audit_retention_days
    await ensure_retention(days)
    print(f"mongodb: indexes of {', '.join(model.__name__ for model in DOCUMENTS)} in place; audit kept {days} days")


def main(argv: list[str] | None = None) -> int:
    if "--mongo-indexes" in (sys.argv[1:] if argv is None else argv):
        runtime.run(build_mongo_indexes())
        return 0
    migrate()
    runtime.run(seed())
    return 0


if __name__ == "__main__":
    sys.exit(main())
