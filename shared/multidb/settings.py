"""One settings object for every function, read from the environment on first use."""

import os
import re
from enum import StrEnum
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .config_cache import expiring

DEFAULT_ADMIN_PASSWORD = "123456"


class Environment(StrEnum):
    LOCAL = "LOCAL"
    TESTING = "TESTING"
    PRODUCTION = "PRODUCTION"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", frozen=True)

    app_env: Environment = Environment.LOCAL
    service_name: str = Field(default="multidb", description="multidb-<stage> when deployed: logs and metrics")
    log_level: str = "INFO"

    database_url: str = "sqlite+aiosqlite:///.local/multidb.sqlite3"
    database_echo: bool = False
    redis_url: str = "memory://"
    mongo_url: str = "mongodb://127.0.0.1:27017"
    mongo_database: str = "multidb"

    # Files: objects in S3 (or MinIO / any S3-compatible server at s3_endpoint_url),
    # moved by the client through presigned URLs; their metadata in MongoDB.
    s3_endpoint_url: str | None = Field(default=None, description="MinIO or another S3-compatible server; unset = AWS")
    s3_region: str | None = Field(default=None, description="Region of the bucket; unset = AWS_REGION")
    files_bucket: str = "multidb-files"
    files_max_bytes: int = Field(default=5 * 1024**4, ge=1, description="Largest file accepted (multipart; S3: 5 TiB)")
    files_max_single_bytes: int = Field(
        default=5 * 1024**3, ge=1, description="Largest file uploaded in one PUT (S3: 5 GiB); larger ones need parts"
    )
    files_url_ttl: int = Field(default=900, ge=60, le=7 * 24 * 3600, description="Seconds a presigned URL is valid")
    files_max_pending: int = Field(default=20, ge=1, description="Uploads one user may have pending at once")
    files_quota_bytes: int = Field(default=1024**3, ge=1, description="Bytes one user may store (pending + ready)")
    files_pending_max_age: int = Field(
        default=24 * 3600, ge=60, description="Seconds after which the sweep removes an upload never completed"
    )
    files_sweep_interval: float = Field(default=600, gt=0, description="Seconds between sweeps of stale uploads")
    files_multipart_abort_days: int = Field(
        default=1, ge=1, description="Days after which the bucket aborts a multipart upload never completed"
    )
    audit_retention_days: int = Field(default=365, ge=1, description="Days an audit entry is kept (a TTL index)")

    # Keys: PEM text in the environment, or names of AWS secrets, or (LOCAL/TESTING only)
    # generated once into keys_dir so a restart keeps sessions valid.
    keys_dir: Path = Path(".local/keys")
    jwt_private_key: str | None = None
    jwt_key_id: str | None = None
    jwt_public_keys: str | None = Field(default=None, description="JSON list of {kid, pem}")
    login_private_key: str | None = None
    keys_secret_id: str | None = Field(default=None, description="Secrets Manager id of the JWT signing key")
    login_key_secret_id: str | None = Field(default=None, description="Secrets Manager id of the login key")
    connections_secret_id: str | None = Field(
        default=None,
        description="Secrets Manager id of a JSON object with database_url, redis_url, mongo_url, broker_url",
    )
    public_keys_parameter: str | None = Field(default=None, description="SSM parameter of public keys")

    jwt_issuer: str = "multidb"
    jwt_audience: str = "multidb-api"
    access_token_ttl: int = Field(default=900, ge=60, le=3600)
    refresh_token_ttl: int = Field(default=7 * 24 * 3600, ge=300)
    jwt_leeway: int = Field(default=10, ge=0, le=60)

    password_hash_rounds: int = Field(default=12, ge=4, le=16)
    # Login limits (see the security docs): failures per username from clients it has not
    # seen before, per known device, and per client IP, each in a window of this length.
    login_max_failures: int = Field(default=5, ge=1)
    login_failure_window: int = Field(default=900, ge=1)
    login_max_failures_per_ip: int = Field(default=50, ge=1)
    login_device_ttl: int = Field(default=30 * 24 * 3600, ge=3600, description="Seconds a device token is valid")

    # Only behind API Gateway may a function take the authorizer's context as proof;
    # everywhere else it verifies the bearer token itself.
    trust_gateway_authorizer: bool = False

    admin_password: str | None = None

    # Celery and Socket.IO: the broker, the result backend and the Socket.IO fan-out
    # channel live on this Redis (REDIS_URL when unset).
    broker_url: str | None = None
    task_result_ttl: int = Field(default=24 * 3600, ge=60, description="Seconds task results and owners are kept")
    beat_refresh_interval: float = Field(default=60, gt=0, description="Seconds between schedule reloads in beat")
    beat_lock_ttl: float = Field(
        default=15, gt=0, description="Seconds the beat lock outlives its last renewal: a standby takes over after it"
    )
    # Per-user limits on what the tasks API lets a caller put on the queue.
    task_runs_per_minute: int = Field(default=30, ge=1, description="Runs one user may start per minute")
    task_runs_queued: int = Field(default=20, ge=1, description="Runs of one user queued or running at once")
    schedules_per_user: int = Field(default=20, ge=0, description="Schedules one user may own")
    schedule_min_interval: int = Field(default=60, ge=1, description="Shortest interval of a schedule, seconds")
    realtime_cors_origins: str = Field(default="http://localhost:5173", description="Comma-separated origins")
    realtime_handlers: str = Field(
        default="multidb.sockets.handlers",
        description="Comma-separated modules whose `events` registries the Socket.IO server serves",
    )
    realtime_sweep_interval: float = Field(
        default=30, gt=0, description="Seconds between checks that end expired or revoked Socket.IO sessions"
    )

    @property
    def is_production(self) -> bool:
        return self.app_env is Environment.PRODUCTION

    @property
    def message_broker_url(self) -> str:
        return self.broker_url or self.redis_url

    @property
    def may_generate_keys(self) -> bool:
        return not self.is_production

    @model_validator(mode="after")
    def _fail_closed_in_production(self) -> "Settings":
        if not self.is_production:
            return self
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
        return self


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
        settings = Settings(_env_file=dotenv_files())  # type: ignore[call-arg]
        if settings.connections_secret_id:
            stored = secret_json(settings.connections_secret_id)
            settings = Settings(**{name: stored[name] for name in CONNECTION_FIELDS if stored.get(name)})
        if settings.is_production and not (settings.database_url and settings.redis_url and settings.mongo_url):
            raise ValueError(
                "DATABASE_URL, REDIS_URL and MONGO_URL must be set (directly or in the connections secret)"
            )
    except ConfigurationUnavailable:
        raise
    except ValueError as exc:  # pydantic's ValidationError is one
        from .logs import get_logger

        get_logger("settings").error("invalid settings: %s", _summary(exc))
        raise ConfigurationUnavailable() from exc
    return settings


def dotenv_files() -> tuple[str, ...] | None:
    """`.env`, then `.env.<app_env>` (`.env.local`, `.env.testing`, …) in the working folder,
    as the original template reads them; variables set in the environment win over both.
    Never in Lambda, where the environment and the secrets rule."""
    if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        return None
    return (".env", f".env.{os.environ.get('APP_ENV', 'LOCAL').lower()}")


def _summary(exc: ValueError) -> str:
    """What is wrong, without the values (they may be URLs with passwords in them)."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        return "; ".join(f"{'.'.join(map(str, e.get('loc', ())))}: {e.get('msg', '')}" for e in errors())
    return str(exc)  # our own messages name variables, never their values
