"""Build and push the worker, beat and Socket.IO images for a deployed stack (`make images`).

    python -m infra.deploy.images tag --platform linux/arm64
    python -m infra.deploy.images push --stack multidb-dev --region us-east-1 --platform linux/arm64

An image's tag is the hash of everything that goes into it: the platform it is built for,
the Dockerfile, the .dockerignore and every file its COPY lines take, followed by the CPU
(`3f0c9a…-arm64`). The same sources give the same tag, so a deploy that changed no container
file pushes nothing and rolls no service; a change to any of them, or another ARCH, is a new
tag, which the stack's ImageTag parameter turns into new task definitions. Tags are immutable
in the repositories, so a tag already there is never pushed again (an arm64 image is never
found under an x86_64 deploy's tag: its tasks would fail with "exec format error").

Needs Docker (with buildx, and QEMU emulation when the stack's CPU is not this machine's)
and the AWS CLI with credentials. The repositories are the stack's outputs.
"""

import argparse
import hashlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "infra" / "services" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
# Each Dockerfile target and the stack output naming its repository.
TARGETS = {"worker": "WorkerRepositoryUri", "beat": "BeatRepositoryUri", "realtime": "RealtimeRepositoryUri"}


def copied_sources(dockerfile: Path = DOCKERFILE) -> list[Path]:
    """Every file the Dockerfile's COPY instructions take from the build context."""
    text = re.sub(r"\\\n\s*", " ", dockerfile.read_text())
    sources = [line.split()[1] for line in text.splitlines() if line.strip().startswith("COPY ")]
    files: set[Path] = set()
    for source in sources:
        path = ROOT / source
        if path.is_dir():
            files |= {p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
        else:
            files.add(path)
    return sorted(files)


PLATFORMS = ("linux/arm64", "linux/amd64")


def tag(platform: str) -> str:
    """The hash of the images' inputs (the platform, Dockerfile, .dockerignore, files copied), then the CPU."""
    if platform not in PLATFORMS:
        raise ValueError(f"unknown platform {platform!r}: one of {', '.join(PLATFORMS)}")
    digest = hashlib.sha256(platform.encode() + b"\0")
    for path in [DOCKERFILE, DOCKERIGNORE, *copied_sources()]:
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return f"{digest.hexdigest()[:16]}-{platform.split('/')[1]}"


def _run(*argv: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, input=stdin, capture_output=True, text=True, cwd=ROOT, check=False)  # noqa: S603


def _fail(message: str) -> int:
    print(message, file=sys.stderr)
    return 1


def stack_outputs(stack: str, region: str) -> dict[str, str]:
    query = "Stacks[0].Outputs[].[OutputKey,OutputValue]"
    result = _run(
        "aws",
        "cloudformation",
        "describe-stacks",
        "--region",
        region,
        "--stack-name",
        stack,
        "--query",
        query,
        "--output",
        "text",
    )
    if result.returncode != 0:
        return {}
    return dict(line.split("\t", 1) for line in result.stdout.splitlines() if "\t" in line)


def push(stack: str, region: str, platform: str) -> int:
    if shutil.which("docker") is None or _run("docker", "info").returncode != 0:
        return _fail("make deploy needs Docker to build the worker, beat and Socket.IO images: install and start it.")
    outputs = stack_outputs(stack, region)
    missing = [output for output in TARGETS.values() if not outputs.get(output)]
    if missing:
        return _fail(f"{stack} has no image repositories yet ({', '.join(missing)}): deploy it once first.")
    image_tag = tag(platform)
    registry = outputs[TARGETS["worker"]].split("/", 1)[0]
    password = _run("aws", "ecr", "get-login-password", "--region", region)
    login = _run("docker", "login", "--username", "AWS", "--password-stdin", registry, stdin=password.stdout)
    if password.returncode != 0 or login.returncode != 0:
        return _fail(f"could not log in to {registry}: {password.stderr or login.stderr}")
    for target, output in TARGETS.items():
        repository = outputs[output]
        name = repository.split("/", 1)[1]
        known = _run(
            "aws",
            "ecr",
            "describe-images",
            "--region",
            region,
            "--repository-name",
            name,
            "--image-ids",
            f"imageTag={image_tag}",
        )
        if known.returncode == 0:
            print(f"{target}: {repository}:{image_tag} is there already")
            continue
        print(f"{target}: building and pushing {repository}:{image_tag} for {platform}", flush=True)
        # The build's own output goes to the terminal.
        command = ["docker", "buildx", "build", "--platform", platform, "--target", target, "--file", str(DOCKERFILE)]
        command += ["--tag", f"{repository}:{image_tag}", "--push", "."]
        build = subprocess.run(command, cwd=ROOT, check=False)  # noqa: S603
        if build.returncode != 0:
            return _fail(f"building the {target} image failed")
    print(image_tag)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    tagging = commands.add_parser("tag", help="print the images' tag for a platform (the hash of their inputs)")
    tagging.add_argument("--platform", required=True, choices=PLATFORMS)
    pushing = commands.add_parser("push", help="build and push the images the stack's repositories lack")
    pushing.add_argument("--stack", required=True)
    pushing.add_argument("--region", required=True)
    pushing.add_argument("--platform", required=True, choices=PLATFORMS)
    args = parser.parse_args(argv)
    if args.command == "tag":
        print(tag(args.platform))
        return 0
    return push(args.stack, args.region, args.platform)


if __name__ == "__main__":
    sys.exit(main())
