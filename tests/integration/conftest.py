"""What several integration tests share beyond tests/conftest.py: one `sam build` per session."""

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`sam build` for this machine's CPU, once per session, so the artifacts can be imported
    and invoked here. TEST_SAM_BUILD_DIR names a build to reuse instead (one `make bench` or an
    earlier run made), when it holds one for this CPU."""
    from tests.benchmarks.build import check_build, is_build, sam_build

    given = os.environ.get("TEST_SAM_BUILD_DIR")
    if given and is_build(Path(given)):
        check_build(Path(given))
        return Path(given)
    return sam_build(tmp_path_factory.mktemp("sam-build-x86_64"))
