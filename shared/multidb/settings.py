"""One settings object for every function, read from the environment on first use.

A frozen msgspec `Struct`: converting the environment's strings into it, bounds checked,
takes microseconds and imports no Pydantic, which the authorizer otherwise never loads.
Build one with `parse` (types and bounds checked, then the production rules), never with
`Settings(...)`, which converts and bounds nothing.
"""

import os
import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated

import msgspec
from msgspec import Meta

from .config_cache import expiring

DEFAULT_ADMIN_PASSWORD = "123456"


class Environment(StrEnum):
    LOCAL = "LOCAL"
    TESTING = "TESTING"
    PRODUCTION = "PRODUCTION"


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    app_env: Environment = Environment.LOCAL
    service_name: Annotated[str, Meta(description="multidb-<stage> when deployed: logs and metrics")] = "multidb"
    log_level: str = "INFO"

    database_url: str = "sqlite+aiosqlite:///.local/multidb.sqlite3"
    database_echo: bool = False
    database_connect_timeout: Annotated[
        float, Meta(gt=0, le=60, description="Seconds one PostgreSQL connection attempt may take (one retry follows)")
    ] = 5.0
    database_pool_size: Annotated[
        int, Meta(ge=0, le=64, description="PostgreSQL connections a process keeps; 0 = none held idle")
    ] = 2
    redis_url: str = "memory://"
    # Each asyncio Redis client's pool: bounded (a caller waits up to the timeout for a free
    # connection), and connections idle that long are closed by the processes that run for long.
    redis_max_connections: Annotated[int, Meta(ge=1, le=1000, description="Connections per Redis pool")] = 20
    redis_pool_timeout: Annotated[
        float, Meta(gt=0, le=60, description="Seconds to wait for a free pooled Redis connection")
    ] = 2.0
    redis_idle_timeout: Annotated[
        float, Meta(gt=0, le=3600, description="Seconds an idle pooled Redis connection is kept (long-running servers)")
    ] = 60.0
    mongo_url: str = "mongodb://127.0.0.1:27017"
    mongo_database: str = "multidb"

    # Files: objects in S3 (or MinIO / any S3-compatible server at s3_endpoint_url),
    # moved by the client through presigned URLs; their metadata in MongoDB.
    s3_endpoint_url: Annotated[str | None, Meta(description="MinIO or another S3-compatible server; unset = AWS")] = (
        None
    )
    s3_region: Annotated[str | None, Meta(description="Region of the bucket; unset = AWS_REGION")] = None
    files_bucket: str = "multidb-files"
    files_max_bytes: Annotated[int, Meta(ge=1, description="Largest file accepted (multipart; S3: 5 TiB)")] = (
        5 * 1024**4
    )
    files_max_single_bytes: Annotated[
        int, Meta(ge=1, description="Largest file uploaded in one PUT (S3: 5 GiB); larger ones need parts")
    ] = 5 * 1024**3
    files_url_ttl: Annotated[int, Meta(ge=60, le=7 * 24 * 3600, description="Seconds a presigned URL is valid")] = 900
    files_max_pending: Annotated[int, Meta(ge=1, description="Uploads one user may have pending at once")] = 20
    files_quota_bytes: Annotated[int, Meta(ge=1, description="Bytes one user may store (pending + ready)")] = 1024**3
    files_pending_max_age: Annotated[
        int, Meta(ge=60, description="Seconds after which the sweep removes an upload never completed")
    ] = 24 * 3600
    files_sweep_interval: Annotated[
        float, Meta(gt=0, le=24 * 3600, description="Seconds between sweeps of stale uploads")
    ] = 600.0
    files_multipart_abort_days: Annotated[
        int, Meta(ge=1, description="Days after which the bucket aborts a multipart upload never completed")
    ] = 1
    audit_retention_days: Annotated[int, Meta(ge=1, description="Days an audit entry is kept (a TTL index)")] = 365

    # Keys: PEM text in the environment, or names of AWS secrets, or (LOCAL/TESTING only)
    # generated once into keys_dir so a restart keeps sessions valid.
    keys_dir: str = ".local/keys"
    jwt_private_key: str | None = None
    jwt_key_id: str | None = None
    jwt_public_keys: Annotated[str | None, Meta(description="JSON list of {kid, pem}")] = None
    login_private_key: str | None = None
    keys_secret_id: Annotated[str | None, Meta(description="Secrets Manager id of the JWT signing key")] = None
    login_key_secret_id: Annotated[str | None, Meta(description="Secrets Manager id of the login key")] = None
    connections_secret_id: Annotated[
        str | None,
        Meta(description="Secrets Manager id of a JSON object with database_url, redis_url, mongo_url, broker_url"),
    ] = None
    public_keys_parameter: Annotated[str | None, Meta(description="SSM parameter of public keys")] = None

    jwt_issuer: str = "multidb"
    jwt_audience: str = "multidb-api"
    access_token_ttl: Annotated[int, Meta(ge=60, le=3600)] = 900
    refresh_token_ttl: Annotated[int, Meta(ge=300)] = 7 * 24 * 3600
    jwt_leeway: Annotated[int, Meta(ge=0, le=60)] = 10

    password_hash_rounds: Annotated[int, Meta(ge=4, le=16)] = 12
    # Login limits (see the security docs): failures per username from clients it has not
    # seen before, per known device, and per client IP, each in a window of this length.
    login_max_failures: Annotated[int, Meta(ge=1)] = 5
    login_failure_window: Annotated[int, Meta(ge=1)] = 900
    login_max_failures_per_ip: Annotated[int, Meta(ge=1)] = 50
    login_device_ttl: Annotated[int, Meta(ge=3600, description="Seconds a device token is valid")] = 30 * 24 * 3600

    # Only behind API Gateway may a function take the authorizer's context as proof;
    # everywhere else it verifies the bearer token itself.
    trust_gateway_authorizer: bool = False

    admin_password: str | None = None

    # Celery and Socket.IO: the broker, the result backend and the Socket.IO fan-out
    # channel live on this Redis (REDIS_URL when unset).
    broker_url: str | None = None
    task_result_ttl: Annotated[int, Meta(ge=60, description="Seconds task results and owners are kept")] = 24 * 3600
    beat_refresh_interval: Annotated[
        float, Meta(gt=0, le=3600, description="Seconds between schedule reloads in beat")
    ] = 60.0
    beat_full_reload_interval: Annotated[
        float,
        Meta(
            gt=0,
            le=86400,
            description="Seconds after which beat's next reload reads every schedule, whether or not the change "
            "marker moved",
        ),
    ] = 300.0
    beat_lock_ttl: Annotated[
        float,
        Meta(
            gt=0, le=3600, description="Seconds the beat lock outlives its last renewal: a standby takes over after it"
        ),
    ] = 15.0
    # Per-user limits on what the tasks API lets a caller put on the queue.
    task_runs_per_minute: Annotated[int, Meta(ge=1, description="Runs one user may start per minute")] = 30
    task_runs_queued: Annotated[int, Meta(ge=1, description="Runs of one user queued or running at once")] = 20
    schedules_per_user: Annotated[int, Meta(ge=0, description="Schedules one user may own")] = 20
    schedule_min_interval: Annotated[int, Meta(ge=1, description="Shortest interval of a schedule, seconds")] = 60
    realtime_cors_origins: Annotated[str, Meta(description="Comma-separated origins")] = "http://localhost:5173"
    realtime_sweep_interval: Annotated[
        float, Meta(gt=0, le=3600, description="Seconds between checks that end expired or revoked Socket.IO sessions")
    ] = 30.0
    # Socket.IO client events: a bucket per connection (in the server) and one per user (in Redis).
    realtime_events_per_second: Annotated[
        float, Meta(gt=0, description="Client events one connection may send per second, sustained")
    ] = 5.0
    realtime_events_burst: Annotated[int, Meta(ge=1, description="Client events one connection may send at once")] = 20
    realtime_events_hard_limit: Annotated[
        int, Meta(ge=1, description="Refused events a connection may run up (net of the refill) before it is closed")
    ] = 50
    realtime_user_events_per_second: Annotated[
        float, Meta(gt=0, description="Client events one user may send per second on all their connections")
    ] = 10.0
    realtime_user_events_burst: Annotated[
        int, Meta(ge=1, description="Client events one user may send at once on all their connections")
    ] = 40

    @property
    def is_production(self) -> bool:
        return self.app_env == Environment.PRODUCTION  # a plain "PRODUCTION" too: fail closed

    @property
    def message_broker_url(self) -> str:
        return self.broker_url or self.redis_url

    @property
    def may_generate_keys(self) -> bool:
        return not self.is_production

    def __post_init__(self) -> None:
        """Production fails closed: no in-memory stores, no generated keys, TLS everywhere."""
        if not self.is_production:
            return
        problems = []
        if self.redis_url.startswith("memory://"):
            problems.append("REDIS_URL must name a real Redis server")
        if self.broker_url and self.broker_url.startswith("memory://"):
            problems.append("BROKER_URL must name a real Redis server")
        if self.database_url.startswith("sqlite"):
            problems.append("DATABASE_URL must name a real database server")
        if not (self.jwt_private_key or self.keys_secret_id or self.jwt_public_keys or self.public_keys_parameter):
            problems.append("signing keys must come from the environment or AWS, never generated")
        if self.admin_password == DEFAULT_ADMIN_PASSWORD:
            problems.append("the default admin password is refused in production")
        problems += _plain_text_urls(self)
        if problems:
            raise ValueError("; ".join(problems))


CONNECTION_FIELDS = ("database_url", "redis_url", "mongo_url", "broker_url")


def _plain_text_urls(settings: Settings) -> list[str]:
    """Production talks TLS to every datastore, certificates verified."""
    problems = []
    for name in ("redis_url", "broker_url"):
        url = getattr(settings, name)
        if url and not url.startswith("memory://") and not url.startswith("rediss://"):
            problems.append(f"{name.upper()} must use TLS (rediss://)")
        if url and "ssl_cert_reqs=none" in url.lower():
            problems.append(f"{name.upper()} must verify the server's certificate")
    database = settings.database_url
    if database.startswith("postgresql") and not re.search(r"[?&](ssl|sslmode)=verify-full(&|$)", database):
        problems.append("DATABASE_URL must use TLS with ?ssl=verify-full")
    mongo = settings.mongo_url
    if (
        mongo
        and not mongo.startswith("mongodb+srv://")
        and not re.search(r"[?&](tls|ssl)=true(&|$)", mongo, re.IGNORECASE)
    ):
        problems.append("MONGO_URL must use TLS (mongodb+srv:// or ?tls=true)")
    if re.search(r"[?&]tlsAllowInvalid(Certificates|Hostnames)=true", mongo, re.IGNORECASE):
        problems.append("MONGO_URL must verify the server's certificate")
    return problems


FIELDS = frozenset(Settings.__struct_fields__)


class InvalidSettings(ValueError):
    """Values the settings refuse; the message names fields and rules, never the values."""


def parse(values: Mapping[str, object]) -> Settings:
    """Settings from names (any case) to values: the environment's strings, or typed values.
    Names that are no setting are ignored. Raises `InvalidSettings` for the first problem."""
    known = {name.lower(): value for name, value in values.items() if name.lower() in FIELDS}
    try:
        return msgspec.convert(known, Settings, strict=False)
    except msgspec.ValidationError as exc:  # a __post_init__ ValueError arrives as one too
        raise InvalidSettings(_without_values(str(exc))) from None


def _without_values(message: str) -> str:
    """msgspec repeats the value of a refused enum ("Invalid enum value 'x' - at `$.app_env`");
    a misplaced URL with a password in it must not reach the log."""
    if message.startswith("Invalid enum value"):
        _, _, where = message.rpartition(" - at `")
        return f"Expected one of {', '.join(Environment)} - at `{where}"
    return message


def from_environment(env_files: tuple[str, ...] | None = None, **overrides: object) -> Settings:
    """The settings in the environment, over those in `env_files` (later files win), under
    `overrides`."""
    values: dict[str, object] = {}
    for path in env_files or ():
        if os.path.isfile(path):
            from dotenv import dotenv_values  # a developer's machine only

            try:
                found = dotenv_values(path)
            except (OSError, ValueError) as exc:  # unreadable, or not UTF-8
                raise InvalidSettings(f"{path} cannot be read ({type(exc).__name__})") from None
            values.update({k.lower(): v for k, v in found.items() if v is not None})
    values.update({k.lower(): v for k, v in os.environ.items()})
    return parse(values | overrides)


@expiring
def get_settings() -> Settings:
    """The settings, with connection URLs from Secrets Manager when deployed (kept for
    CONFIG_MAX_AGE: a rotated connections secret counts without a cold start, and the clients
    built from it follow, being keyed by their URL).

    Anything wrong with them (invalid, refused in production, a secret unreadable) raises
    `ConfigurationUnavailable`: functions answer 503, the authorizer denies, and the next
    call tries again (a failure is not cached).
    """
    from .secrets import ConfigurationUnavailable, secret_json

    try:
        settings = from_environment(dotenv_files())
        if settings.connections_secret_id:
            stored = secret_json(settings.connections_secret_id)
            connections = {name: stored[name] for name in CONNECTION_FIELDS if stored.get(name)}
            settings = from_environment(None, **connections)
        if settings.is_production and not (settings.database_url and settings.redis_url and settings.mongo_url):
            raise InvalidSettings(
                "DATABASE_URL, REDIS_URL and MONGO_URL must be set (directly or in the connections secret)"
            )
    except ConfigurationUnavailable:
        raise
    except InvalidSettings as exc:
        from .logs import get_logger

        get_logger("settings").error("invalid settings: %s", exc)
        raise ConfigurationUnavailable() from exc
    return settings


def dotenv_files() -> tuple[str, ...] | None:
    """`.env`, then `.env.<app_env>` (`.env.local`, `.env.testing`, …) in the working folder,
    as the original template reads them; variables set in the environment win over both.
    Never in Lambda, where the environment and the secrets rule."""
    if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        return None
    return (".env", f".env.{os.environ.get('APP_ENV', 'LOCAL').lower()}")
