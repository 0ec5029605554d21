"""The TypeScript client kit: its generated types match the API, it type-checks strictly, its unit tests pass."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.typescript_kit import KIT, npm

pytestmark = pytest.mark.process


def test_the_committed_types_are_generated_from_the_current_merged_openapi(tmp_path: Path) -> None:
    npm("--version")  # installs the locked packages when they are missing
    out = tmp_path / "api.ts"
    done = subprocess.run(
        ["node", "scripts/generate.mjs", "--out", str(out)],
        cwd=KIT,
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    committed = (KIT / "src" / "generated" / "api.ts").read_text()
    assert out.read_text() == committed, (
        "clients/typescript/src/generated/api.ts is stale: run `npm run generate` in clients/typescript"
    )


def test_the_kit_type_checks_strictly_and_its_unit_tests_pass() -> None:
    typecheck = npm("run", "typecheck")
    assert typecheck.returncode == 0, typecheck.stdout + typecheck.stderr
    vitest = npm("test")
    assert vitest.returncode == 0, vitest.stdout[-6000:] + vitest.stderr[-3000:]
    assert " passed" in vitest.stdout
    assert " failed" not in vitest.stdout
