"""Settings fail closed in production."""

import pytest
from pydantic import ValidationError

from multidb.settings import DEFAULT_ADMIN_PASSWORD, Settings

PRODUCTION_OK = {
    "app_env": "PRODUCTION",
    "database_url": "postgresql+asyncpg://app@db.internal/app",
    "redis_url": "redis://cache.internal:6379/0",
    "keys_secret_id": "arn:aws:secretsmanager:us-east-1:123456789012:secret:keys",
}


def test_a_complete_production_configuration_is_accepted() -> None:
    assert Settings(**PRODUCTION_OK).is_production


@pytest.mark.parametrize(
    ("override", "reason"),
    [
        ({"redis_url": "memory://"}, "REDIS_URL"),
        ({"database_url": "sqlite+aiosqlite:///x.db"}, "DATABASE_URL"),
        ({"keys_secret_id": None}, "never generated"),
        ({"admin_password": DEFAULT_ADMIN_PASSWORD}, "default admin password"),
    ],
)
def test_production_refuses_unsafe_defaults(override: dict[str, object], reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        Settings(**{**PRODUCTION_OK, **override})


def test_production_may_not_generate_keys(tmp_path: object) -> None:
    assert not Settings(**PRODUCTION_OK).may_generate_keys
    assert Settings(app_env="LOCAL").may_generate_keys
