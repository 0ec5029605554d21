"""What the users tests share beyond tests/conftest.py."""

import pytest


@pytest.fixture(autouse=True)
def _clean_state(clean_state: None) -> None:
    """Every users test starts with an empty Redis and only the admin user in the database."""
