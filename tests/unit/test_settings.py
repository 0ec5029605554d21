"""Settings fail closed in production."""

from pathlib import Path

import pytest

from multidb.settings import DEFAULT_ADMIN_PASSWORD, Environment, InvalidSettings, Settings, from_environment, parse

PRODUCTION_OK = {
    "app_env": "PRODUCTION",
    "database_url": "postgresql+asyncpg://app@proxy.internal/app?ssl=verify-full",
    "redis_url": "rediss://:token@cache.internal:6379/0",
    "broker_url": None,  # the same Redis
    "mongo_url": "mongodb://app:pw@docs.cluster-x.us-east-1.docdb.amazonaws.com:27017/?tls=true&retryWrites=false",
    "keys_secret_id": "arn:aws:secretsmanager:us-east-1:123456789012:secret:keys-AbCdEf",
}


def test_a_complete_production_configuration_is_accepted() -> None:
    assert parse(PRODUCTION_OK).is_production


@pytest.mark.parametrize(
    ("override", "reason"),
    [
        ({"redis_url": "memory://"}, "REDIS_URL"),
        ({"database_url": "sqlite+aiosqlite:///x.db"}, "DATABASE_URL"),
        ({"keys_secret_id": None}, "never generated"),
        ({"admin_password": DEFAULT_ADMIN_PASSWORD}, "default admin password"),
        ({"redis_url": "redis://cache.internal:6379/0"}, "REDIS_URL must use TLS"),
        ({"broker_url": "redis://queue.internal:6379/0"}, "BROKER_URL must use TLS"),
        ({"redis_url": "rediss://cache.internal:6379/0?ssl_cert_reqs=none"}, "verify the server's certificate"),
        ({"database_url": "postgresql+asyncpg://app@proxy.internal/app"}, "ssl=verify-full"),
        ({"database_url": "postgresql+asyncpg://app@proxy.internal/app?ssl=require"}, "ssl=verify-full"),
        ({"mongo_url": "mongodb://docs.internal:27017"}, "MONGO_URL must use TLS"),
        ({"mongo_url": "mongodb://d.internal/?tls=true&tlsAllowInvalidCertificates=true"}, "verify the server"),
    ],
)
def test_production_refuses_unsafe_defaults(override: dict[str, object], reason: str) -> None:
    with pytest.raises(InvalidSettings, match=reason):
        parse({**PRODUCTION_OK, **override})


def test_production_may_not_generate_keys(tmp_path: object) -> None:
    assert not parse(PRODUCTION_OK).may_generate_keys
    assert parse({"app_env": "LOCAL"}).may_generate_keys


def test_atlas_and_documentdb_urls_with_tls_are_accepted() -> None:
    for mongo in ("mongodb+srv://app:pw@cluster0.abcde.mongodb.net/?retryWrites=true", PRODUCTION_OK["mongo_url"]):
        assert parse({**PRODUCTION_OK, "mongo_url": mongo}).is_production


def test_documentdb_gets_the_shipped_rds_ca_bundle_and_nothing_else_does() -> None:
    from multidb.mongo import tls_options

    docdb = tls_options(str(PRODUCTION_OK["mongo_url"]))
    assert docdb["tlsCAFile"].endswith("multidb/certs/rds-global-bundle.pem")
    assert tls_options("mongodb+srv://app:pw@cluster0.abcde.mongodb.net/") == {}  # public CAs
    assert tls_options("mongodb://h.docdb.amazonaws.com:27017/?tls=true&tlsCAFile=/etc/my.pem") == {}
    assert tls_options("mongodb://127.0.0.1:27017") == {}


def test_celery_verifies_a_rediss_brokers_certificate(monkeypatch: pytest.MonkeyPatch) -> None:
    """Celery refuses a rediss:// URL without ssl_cert_reqs at start; ours always verifies."""
    import ssl

    from multidb.queue.app import _config
    from multidb.settings import get_settings

    monkeypatch.setenv("BROKER_URL", "rediss://:token@queue.internal:6379/0")
    get_settings.cache_clear()
    try:
        config = _config()
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    assert config["broker_use_ssl"] == {"ssl_cert_reqs": ssl.CERT_REQUIRED}
    assert config["redis_backend_use_ssl"] == {"ssl_cert_reqs": ssl.CERT_REQUIRED}


@pytest.mark.parametrize(
    ("values", "refused"),
    [
        ({"ACCESS_TOKEN_TTL": "30"}, "access_token_ttl"),  # below its bound
        ({"files_url_ttl": "9999999"}, "files_url_ttl"),  # above its bound
        ({"BEAT_LOCK_TTL": "inf"}, "beat_lock_ttl"),  # a standby would never take over
        ({"DATABASE_ECHO": "maybe"}, "database_echo"),
        ({"PASSWORD_HASH_ROUNDS": "twelve"}, "password_hash_rounds"),
    ],
)
def test_the_environments_strings_are_converted_and_bounded(values: dict[str, str], refused: str) -> None:
    with pytest.raises(InvalidSettings, match=refused):
        parse(values)


def test_strings_from_the_environment_become_typed_settings() -> None:
    settings = parse({"DATABASE_ECHO": "true", "ACCESS_TOKEN_TTL": "600", "BEAT_LOCK_TTL": "7.5", "APP_ENV": "TESTING"})
    assert (settings.database_echo, settings.access_token_ttl, settings.beat_lock_ttl) == (True, 600, 7.5)
    assert settings.app_env is Environment.TESTING


def test_a_refused_value_is_never_in_the_message() -> None:
    """The log names the setting and the rule: a URL with a password put in the wrong variable stays out."""
    secret = "postgresql://app:s3cret-pw@db.internal/app"
    for name in ("APP_ENV", "ACCESS_TOKEN_TTL", "DATABASE_ECHO", "FILES_URL_TTL"):
        with pytest.raises(InvalidSettings) as refused:
            parse({name: secret})
        assert "s3cret" not in str(refused.value)
        assert name.lower() in str(refused.value)


def test_a_settings_object_built_directly_with_a_plain_string_still_counts_as_production() -> None:
    with pytest.raises(ValueError, match="REDIS_URL"):
        Settings(app_env="PRODUCTION", redis_url="memory://")  # type: ignore[arg-type]


def test_an_unreadable_env_file_is_invalid_settings_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / ".env").write_bytes(b"LOG_LEVEL=\xff\xfe\n")
    with pytest.raises(InvalidSettings, match="cannot be read"):
        from_environment((str(tmp_path / ".env"),))
