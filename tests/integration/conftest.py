"""What several integration tests share beyond tests/conftest.py: one `make build` per CPU and
session, started in the background at collection, and the SQL statements a test sends."""

import os
import shutil
import tempfile
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

# The `make build`s this session's tests use, started in the background as soon as the tests
# are collected (each takes a minute, mostly waiting on pip and the disk): by the time a test
# needs one, it is done. Keyed by CPU.
_builds: dict[str, "Future[Path]"] = {}
_folders: list[str] = []


def _start(architecture: str) -> None:
    from tests.benchmarks.build import sam_build

    folder = tempfile.mkdtemp(prefix=f"multidb-build-{architecture}-")
    _folders.append(folder)
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"make-build-{architecture}")
    _builds[architecture] = pool.submit(sam_build, Path(folder) / "build", architecture)
    pool.shutdown(wait=False)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    from tests.benchmarks.build import is_build, machine_architecture

    files = {item.path.name for item in items}
    given = os.environ.get("TEST_SAM_BUILD_DIR")
    uses_native = any("built" in getattr(item, "fixturenames", ()) for item in items) or "test_sam_build.py" in files
    if uses_native and not (given and is_build(Path(given))):
        _start(machine_architecture())
    if "test_sam_build.py" in files:
        _start("arm64")


def pytest_sessionfinish() -> None:
    for build in _builds.values():
        build.cancel() or build.exception()  # wait for a build still running before its folder goes
    for folder in _folders:
        shutil.rmtree(folder, ignore_errors=True)


def build_for(architecture: str) -> Path:
    """The session's `make build` for one CPU (started at collection; built now if it was not)."""
    if architecture not in _builds:
        _start(architecture)
    return _builds[architecture].result()


@pytest.fixture(scope="session")
def built() -> Path:
    """`make build` for this machine's CPU, once per session, so the artifacts can be imported
    and invoked here. TEST_SAM_BUILD_DIR names a build to reuse instead (one `make bench` or an
    earlier run made), when it holds one for this CPU."""
    from tests.benchmarks.build import check_build, is_build, machine_architecture

    given = os.environ.get("TEST_SAM_BUILD_DIR")
    if given and is_build(Path(given)):
        check_build(Path(given))
        return Path(given)
    return build_for(machine_architecture())


@pytest.fixture
def statements() -> Iterator[list[str]]:
    """Every SQL statement sent to the database while the test runs (this process's engine)."""
    from sqlalchemy import event

    from multidb.db import get_engine

    sent: list[str] = []
    engine = get_engine().sync_engine

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        sent.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", record)
    yield sent
    event.remove(engine, "before_cursor_execute", record)
