"""What the files tests share beyond tests/conftest.py."""

import pytest


@pytest.fixture(autouse=True)
def _clean_state(request: pytest.FixtureRequest) -> None:
    """Every files test starts with an empty Redis and only the admin user in the database; a
    unit test (test_urls.py) touches no datastore and asks for none."""
    if request.node.get_closest_marker("unit") is None:
        request.getfixturevalue("clean_state")
