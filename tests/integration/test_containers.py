"""The worker, beat and Socket.IO images, without Docker: their files laid out as the
Dockerfile copies them, their CMDs run as written, against the test datastores."""

import json
import os
import re
import shlex
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.conftest import SPARE_URL
from tests.processes import Process, free_port, listening, wait_for

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "infra" / "docker" / "Dockerfile"
TARGETS = ("worker", "beat", "realtime")


def stages() -> dict[str, list[str]]:
    """Each stage's instructions, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    found: dict[str, list[str]] = {}
    current: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if match := re.match(r"FROM \S+ AS (\w+)$", line):
            current = found.setdefault(match.group(1), [])
        current.append(line)
    return found


def copies() -> list[tuple[str, str]]:
    return [tuple(line.split()[1:3]) for line in stages()["base"] if line.startswith("COPY ")]  # type: ignore[misc]


def command(target: str) -> list[str]:
    (line,) = [line for line in stages()[target] if line.startswith("CMD ")]
    argv: list[str] = json.loads(line.removeprefix("CMD "))
    return argv


def test_every_target_exists_and_runs_as_a_non_root_user() -> None:
    found = stages()
    assert set(TARGETS) <= set(found)
    assert "USER app" in found["base"]
    assert "python:3.12-slim" in found["base"][0]


def test_everything_copied_exists_and_passes_the_dockerignore() -> None:
    allowed = [
        line.lstrip("!").rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    ]
    for source, _ in copies():
        assert (ROOT / source).exists(), source
        assert any(source == rule or source.startswith(f"{rule}/") for rule in allowed), source


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """/app as the Dockerfile fills it."""
    app = tmp_path_factory.mktemp("image") / "app"
    for source, target in copies():
        if target.startswith("/tmp/"):
            continue
        destination = app / target.removeprefix("/app/")
        destination.parent.mkdir(parents=True, exist_ok=True)
        if (ROOT / source).is_dir():
            shutil.copytree(ROOT / source, destination, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(ROOT / source, destination)
    return app


def run_in_image(image: Path, name: str, argv: list[str], env: dict[str, str]) -> Process:
    """Start a CMD with only the image's folders importable (and the venv's packages)."""
    argv = [sys.executable, "-m", "celery", *argv[1:]] if argv[0] == "celery" else argv
    if argv[:2] == ["sh", "-c"]:
        argv = [sys.executable, "-m", *shlex.split(os.path.expandvars(argv[2].removeprefix("exec ")))]
    argv = [sys.executable if part == "python" else part for part in argv]
    return Process(name, argv, {"PYTHONPATH": f"{image}:{image / 'shared'}", **env}, cwd=image)  # WORKDIR /app


@pytest.fixture
def own_broker() -> Iterator[str]:
    """A broker database of its own, so only the container's worker can answer."""
    url = SPARE_URL
    with redis.Redis.from_url(url) as client:
        client.flushdb()
    yield url
    with redis.Redis.from_url(url) as client:
        client.flushdb()


def test_the_worker_image_runs_tasks(image: Path, own_broker: str) -> None:
    from celery import Celery

    os.environ["WORKER_CONCURRENCY"] = "1"
    worker = run_in_image(image, "image-worker", command("worker"), {"BROKER_URL": own_broker})
    try:
        client = Celery(broker=own_broker, backend=own_broker)
        assert client.send_task("multidb.add", (20, 22)).get(timeout=60) == 42, worker.log()
    finally:
        os.environ.pop("WORKER_CONCURRENCY")
        assert worker.stop() == 0, worker.log()


def test_the_beat_image_starts_with_the_database_scheduler(image: Path, own_broker: str) -> None:
    beat = run_in_image(image, "image-beat", command("beat"), {"BROKER_URL": own_broker})
    try:
        wait_for(lambda: "schedules from the database: none" in beat.log() or not beat.alive(), what="beat")
        assert "multidb.queue.scheduler.DatabaseScheduler" in beat.log()
    finally:
        assert beat.stop() == 0, beat.log()


def test_the_realtime_image_listens(image: Path) -> None:
    port = free_port()
    argv = [str(port) if part == "3001" else part for part in command("realtime")]
    assert "0.0.0.0" in argv  # reachable from outside the container
    argv = [part if part != "0.0.0.0" else "127.0.0.1" for part in argv]
    server = run_in_image(image, "image-realtime", argv, {})
    try:
        wait_for(lambda: listening(port) or not server.alive(), what="the Socket.IO server")
        assert server.alive(), server.log()
    finally:
        server.stop()
