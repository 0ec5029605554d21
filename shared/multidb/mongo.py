"""MongoDB through PyMongo's async API (Motor's successor) and Beanie 2, connected on first use."""

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from .settings import get_settings

if TYPE_CHECKING:
    from pymongo import AsyncMongoClient

_beanie_ready: set[str] = set()


@lru_cache
def get_mongo() -> "AsyncMongoClient[dict[str, Any]]":
    from pymongo import AsyncMongoClient

    # tz_aware: times come back in UTC with their offset, as the SQL ones do.
    return AsyncMongoClient(
        get_settings().mongo_url, serverSelectionTimeoutMS=3000, connectTimeoutMS=3000, tz_aware=True
    )


async def init_documents(*models: type[Any], build_indexes: bool = False) -> None:
    """Bind Beanie document models to the database, once per container and client.

    Index builds are a deploy step (`python -m infra.initdb --mongo-indexes`), not a cold
    start's work; `build_indexes=True` is for that step, `make dev` and tests.
    """
    client = get_mongo()
    key = f"{id(client)}:{','.join(sorted(m.__name__ for m in models))}:{build_indexes}"
    if key in _beanie_ready:
        return
    from beanie import init_beanie

    await init_beanie(
        database=client[get_settings().mongo_database], document_models=list(models), skip_indexes=not build_indexes
    )
    _beanie_ready.add(key)
