"""What infra/services/Dockerfile says each image is, read the way Docker reads it: its stages,
each target's files (COPY), requirement files (COPY to /tmp/requirements, then pip), ENV
and CMD. The container tests build the images from this without Docker; the stack tests
compare the task definitions with it."""

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "infra" / "services" / "Dockerfile"
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


def instructions(target: str) -> list[str]:
    """A target's instructions with those of the stages it builds on (FROM <stage>), in order."""
    chain = []
    stage: str | None = target
    while stage is not None:
        lines = stages()[stage]
        chain.insert(0, lines)
        parent = lines[0].split()[1]
        stage = parent if parent in stages() else None
    return [line for lines in chain for line in lines]


def copies(target: str) -> list[tuple[str, str]]:
    """(source, destination) of every COPY that builds the target."""
    return [(line.split()[1], line.split()[2]) for line in instructions(target) if line.startswith("COPY ")]


def requirement_files(target: str) -> list[Path]:
    """The requirement files pip installs into the target (copied to /tmp/requirements/)."""
    return [ROOT / source for source, destination in copies(target) if destination.startswith("/tmp/requirements/")]


def environment(target: str) -> dict[str, str]:
    """The ENV the target's processes start with."""
    found: dict[str, str] = {}
    for line in instructions(target):
        if line.startswith("ENV "):
            found.update(pair.split("=", 1) for pair in line.removeprefix("ENV ").split())
    return found


def user(target: str) -> str:
    [*_, last] = [line.split()[1] for line in instructions(target) if line.startswith("USER ")]
    return last


def command(target: str) -> list[str]:
    (line,) = [line for line in stages()[target] if line.startswith("CMD ")]
    argv: list[str] = json.loads(line.removeprefix("CMD "))
    return argv
