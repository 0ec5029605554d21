"""The TypeScript client kit (clients/typescript) as the tests use it: npm ci when needed, then npm scripts."""

import os
import shutil
import subprocess
from pathlib import Path

from tests.helpers import ROOT

KIT = ROOT / "clients" / "typescript"


def npm(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run npm in the kit's folder, installing its locked packages first if they are missing or stale."""
    installed = KIT / "node_modules" / ".package-lock.json"
    lock = KIT / "package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=KIT, check=True, capture_output=True, timeout=600)
    env = {**os.environ, "CI": "1", "NO_COLOR": "1"}
    return subprocess.run(["npm", *args], cwd=KIT, env=env, capture_output=True, text=True, timeout=timeout)


def node_available() -> bool:
    return shutil.which("node") is not None and shutil.which("npm") is not None


def build() -> Path:
    """Compile the kit to dist/ (what a page imports)."""
    done = npm("run", "build")
    assert done.returncode == 0, done.stdout + done.stderr
    return KIT / "dist"
