"""The TypeScript client kit (clients/typescript) and the console built on it (console/) as the tests
use them: npm ci when needed, then npm scripts."""

import contextlib
import fcntl
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tests.helpers import ROOT

KIT = ROOT / "clients" / "typescript"
CONSOLE = ROOT / "console"


@contextlib.contextmanager
def exclusive() -> Iterator[None]:
    """One test process at a time (pytest-xdist runs several) installs or builds the kit."""
    with (Path(tempfile.gettempdir()) / "multidb-typescript-kit.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def npm(*args: str, timeout: float = 300, alone: bool = False, folder: Path = KIT) -> subprocess.CompletedProcess[str]:
    """Run npm in the kit's folder (or `folder`), installing its locked packages first if they are
    missing or stale; `alone`: no other test process installs or builds meanwhile (a command that writes)."""
    installed = folder / "node_modules" / ".package-lock.json"
    lock = folder / "package-lock.json"
    env = {**os.environ, "CI": "1", "NO_COLOR": "1"}
    with exclusive():
        if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
            command = ["npm", "ci", "--no-audit", "--no-fund"]
            subprocess.run(command, cwd=folder, check=True, capture_output=True, timeout=600)
        if alone:
            return subprocess.run(["npm", *args], cwd=folder, env=env, capture_output=True, text=True, timeout=timeout)
    return subprocess.run(["npm", *args], cwd=folder, env=env, capture_output=True, text=True, timeout=timeout)


def node_available() -> bool:
    return shutil.which("node") is not None and shutil.which("npm") is not None


def build() -> Path:
    """Compile the kit to dist/ (what a page imports)."""
    done = npm("run", "build", alone=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return KIT / "dist"


def build_console() -> Path:
    """Build the console to console/dist (what `make console` builds and `make deploy` uploads)."""
    done = npm("run", "build", alone=True, folder=CONSOLE)
    assert done.returncode == 0, done.stdout + done.stderr
    return CONSOLE / "dist"
