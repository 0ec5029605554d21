"""One `make dev` stack for the whole e2e run (starting one takes a minute or more).

Files run in name order: test_first_hour.py drives it before test_local_stack.py, whose
Ctrl-C test stops it and restarts it on the same state.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_local_stack import Stack, start, stop
from tests.processes import free_port


@pytest.fixture(autouse=True)
def _clean_state(clean_state: None) -> None:
    """The test database and Redis as the integration tests find them (a test may use both)."""


@pytest.fixture(scope="session")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("dev-state")


@pytest.fixture(scope="session")
def ports() -> dict[str, int]:
    names = ("redis", "mongo", "s3", "realtime")
    return {"gateway": free_port(3000), **{name: free_port() for name in names}}


@pytest.fixture(scope="session")
def stack(state: Path, ports: dict[str, int]) -> Iterator[Stack]:
    running = start(state, ports, state / "dev.log")
    yield running
    if running.process.poll() is None:
        stop(running)
