"""MongoDB through PyMongo's async API (Motor's successor) and Beanie 2, connected on first use."""

import os
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from .settings import get_settings

if TYPE_CHECKING:
    from pymongo import AsyncMongoClient
    from pymongo.asynchronous.database import AsyncDatabase

_beanie_ready: set[str] = set()


RDS_CA_BUNDLE = "certs/rds-global-bundle.pem"  # AWS's global bundle of RDS/DocumentDB root CAs


def tls_options(url: str) -> dict[str, Any]:
    """Amazon DocumentDB's certificates chain to the RDS roots, which no system trust store
    holds: a TLS URL for a DocumentDB host without a CA file of its own gets the bundle
    this package ships. Atlas and others use public CAs and get nothing added."""
    from urllib.parse import parse_qs, urlsplit

    parts = urlsplit(url)
    query = {k.lower(): v[-1].lower() for k, v in parse_qs(parts.query).items()}
    hosts = [h.rsplit("@", 1)[-1].split(":")[0] for h in parts.netloc.split(",")]
    tls = query.get("tls", query.get("ssl")) == "true"
    documentdb = any(h.endswith(".docdb.amazonaws.com") or ".docdb-elastic." in h for h in hosts)
    if tls and documentdb and "tlscafile" not in query:
        return {"tlsCAFile": os.path.join(os.path.dirname(__file__), RDS_CA_BUNDLE)}
    return {}


def get_mongo() -> "AsyncMongoClient[dict[str, Any]]":
    """The client of the current MONGO_URL (a rotated one gets its own on first use)."""
    return _mongo(get_settings().mongo_url)


_made: "list[AsyncMongoClient[dict[str, Any]]]" = []  # what `close` closes


@lru_cache(maxsize=1)
def _mongo(url: str) -> "AsyncMongoClient[dict[str, Any]]":
    from pymongo import AsyncMongoClient

    # tz_aware: times come back in UTC with their offset, as the SQL ones do.
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        url, serverSelectionTimeoutMS=3000, connectTimeoutMS=3000, tz_aware=True, **tls_options(url)
    )
    _made.append(client)
    return client


async def close() -> None:
    """Close the client and forget it, and Beanie's binding to it; the next `get_mongo()`
    makes a new one (SnapStart: no socket may be in the snapshot)."""
    _mongo.cache_clear()
    _beanie_ready.clear()
    while _made:
        await _made.pop().close()


def database() -> "AsyncDatabase[dict[str, Any]]":
    """The application's database (MONGO_DATABASE) on the shared client."""
    return get_mongo()[get_settings().mongo_database]


async def init_documents(*models: type[Any], build_indexes: bool = False) -> None:
    """Bind Beanie document models to the database, once per container and client.

    Index builds are a deploy step (`python -m infra.deploy.initdb --mongo-indexes`), not a cold
    start's work; `build_indexes=True` is for that step, `make dev` and tests.
    """
    client = get_mongo()
    key = f"{id(client)}:{','.join(sorted(m.__name__ for m in models))}:{build_indexes}"
    if key in _beanie_ready:
        return
    from beanie import init_beanie

    await init_beanie(database=database(), document_models=list(models), skip_indexes=not build_indexes)
    _beanie_ready.add(key)
