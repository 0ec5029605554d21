"""`.env` files for runs on a developer's machine: `.env`, then `.env.<app_env>`, the
environment winning over both; none of them inside Lambda."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from multidb.settings import get_settings


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("APP_ENV", "LOCAL")
    for name in ("REDIS_URL", "LOG_LEVEL", "FILES_BUCKET", "AWS_LAMBDA_FUNCTION_NAME"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    (tmp_path / ".env").write_text("REDIS_URL=redis://from-dotenv:6379/0\nLOG_LEVEL=DEBUG\nFILES_BUCKET=shared\n")
    (tmp_path / ".env.local").write_text("LOG_LEVEL=WARNING\n")
    (tmp_path / ".env.testing").write_text("FILES_BUCKET=for-tests\n")
    yield tmp_path
    get_settings.cache_clear()


def test_env_then_env_of_the_app_env_then_the_environment(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = get_settings()
    assert (settings.redis_url, settings.log_level, settings.files_bucket) == (
        "redis://from-dotenv:6379/0",
        "WARNING",  # .env.local over .env
        "shared",  # .env.testing is another environment's
    )
    monkeypatch.setenv("LOG_LEVEL", "ERROR")
    get_settings.cache_clear()
    assert get_settings().log_level == "ERROR"  # the environment over both files


def test_never_inside_lambda(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "multidb-dev-auth")
    get_settings.cache_clear()
    assert get_settings().redis_url == "memory://"
