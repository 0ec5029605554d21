"""What several integration tests share beyond tests/conftest.py: one `make build` per CPU and
session, started in the background at collection."""

import fcntl
import os
import shutil
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

# The `make build`s this session's tests use, started in the background as soon as the tests
# are collected (each takes a minute, mostly waiting on pip and the disk): by the time a test
# needs one, it is done. Keyed by CPU. Under pytest-xdist the workers share the run's folder
# (TEST_RUN_DIR, made by the controller): the first to start a build makes it, under a file
# lock, and the others wait for it and use it.
_builds: dict[str, "Future[Path]"] = {}
_folders: list[str] = []


def _build(folder: Path, architecture: str) -> Path:
    from tests.benchmarks.build import sam_build

    target = folder / f"build-{architecture}"
    with (folder / f"build-{architecture}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = folder / f"build-{architecture}.done"
        if not done.exists():
            shutil.rmtree(target, ignore_errors=True)  # what a failed try left
            sam_build(target, architecture)
            done.touch()
    return target


def _start(architecture: str) -> None:
    shared = os.environ.get("TEST_RUN_DIR")
    folder = shared or tempfile.mkdtemp(prefix=f"multidb-build-{architecture}-")
    if not shared:
        _folders.append(folder)
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"make-build-{architecture}")
    _builds[architecture] = pool.submit(_build, Path(folder), architecture)
    pool.shutdown(wait=False)


@pytest.hookimpl(trylast=True)  # what -m, -k and --deselect left
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    from tests.benchmarks.build import is_build, machine_architecture

    if config.option.collectonly:
        return

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


@pytest.fixture(autouse=True)
def _clean_state(clean_state: None) -> None:
    """Every integration test starts with an empty Redis and only the admin user in the database."""


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
