"""docker-compose on compose.yaml with images built on this machine (`make compose-local`).

    python -m infra.local.compose --profile app up -d       any docker-compose arguments
    python -m infra.local.compose --profile app down -v

No registry but Debian's mirror and PyPI is reachable here, so it runs
`docker-compose -f compose.yaml -f compose.local.yaml …` (Debian's docker-compose 1.29, installed
with apt-get when missing) on the engine `make docker` runs, after readying what the builds of
compose.local.yaml start from:

- the bases: `multidb-local/debian:bookworm` (the debootstrap root infra/local/base_images.py
  caches, imported as it is) and its `python:3.12-slim` look-alike;
- a wheelhouse: every wheel the app images and the stand-ins install, made on the host with
  `pip wheel` (cached under LOCAL_DOCKER_DIR by the hash of what it holds), served over HTTP on
  the Docker bridge's host address while docker-compose runs. Build containers reach the host
  there but not the internet (infra/local/engine.py), and the Dockerfiles stay as they are for
  Docker Hub and PyPI: only build arguments (PIP_NO_INDEX, PIP_FIND_LINKS) point pip at it.

The wheelhouse's port is fixed (WHEELHOUSE_PORT, 3141): a build argument's value is part of
the layer cache's key, so a port of the day would rebuild every pip layer.
"""

import contextlib
import functools
import hashlib
import http.server
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from .base_images import DEBIAN_IMAGE, LABEL, SLIM_IMAGE, BuildError, build, built_recipe, debian_root, run
from .engine import STATE, running_host

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
FILES = (HERE / "compose.yaml", HERE / "compose.local.yaml")
REQUIREMENTS = (
    ROOT / "shared/requirements.txt",
    ROOT / "infra/services/requirements.txt",
    ROOT / "infra/services/worker-requirements.txt",
)
# The stand-ins, at the versions the tests run (pyproject.toml's dev group).
STANDINS = {"secantusdb": "SECANTUSDB_VERSION", "moto": "MOTO_VERSION"}
APP_UID = 10001  # the app images' user (infra/services/Dockerfile)
WHEELHOUSE_PORT = int(os.environ.get("WHEELHOUSE_PORT", "3141"))


def pinned(name: str) -> str:
    """The version pyproject.toml pins a development dependency at."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    for requirement in project["dependency-groups"]["dev"]:
        head, _, version = requirement.partition("==")
        if head.split("[")[0].strip().lower() == name:
            return str(version).strip()
    raise BuildError(f"pyproject.toml pins no {name}")


def installed() -> None:
    """Debian's docker-compose (1.29: it knows --profile) when missing (root only)."""
    if shutil.which("docker-compose"):
        return
    if os.geteuid() != 0:
        raise BuildError("docker-compose is missing and only root can install it: sudo apt-get install docker-compose")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "docker-compose"], check=True, env=env)


def debian_image(host: str) -> str:
    """The cached debootstrap root as an image, unless that root is imported already."""
    with tempfile.TemporaryDirectory(prefix="multidb-images-", dir=STATE) as scratch:
        tarball = debian_root(Path(scratch))  # the cached one, or debootstrap's in scratch
        key = tarball.stem
        if built_recipe(DEBIAN_IMAGE, host) == key:
            return "cached"
        changes = ["ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", 'CMD ["bash"]']
        changes.append(f"LABEL {LABEL}={key}")
        with tarball.open("rb") as data:
            run(
                ["docker", "-H", host, "import", *(a for c in changes for a in ("--change", c)), "-", DEBIAN_IMAGE],
                stdin=data,
                capture_output=True,
                check=True,
            )
    return "built"


def wheelhouse() -> Path:
    """Every wheel the images install, for this machine's CPython 3.12 (made once per content)."""
    standins = [f"{'moto[server]' if name == 'moto' else name}=={pinned(name)}" for name in STANDINS]
    digest = hashlib.sha256("\0".join(standins).encode())
    for path in REQUIREMENTS:
        digest.update(path.read_bytes())
    folder = STATE / "cache" / f"wheels-{digest.hexdigest()[:12]}"
    if folder.exists():
        return folder
    partial = folder.with_suffix(".partial")
    shutil.rmtree(partial, ignore_errors=True)
    requirements = [arg for path in REQUIREMENTS for arg in ("-r", str(path))]
    run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check", "-w", partial, *requirements],
        check=True,
    )
    run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check", "-w", partial, *standins],
        check=True,
    )
    partial.rename(folder)
    return folder


def bridge_address(host: str) -> str:
    """The host's address on the default bridge: the network's gateway, else its interface's.

    An engine that found docker0 already there leaves the gateway out of the network's IPAM
    settings; the interface has it all the same.
    """
    template = '{{(index .IPAM.Config 0).Gateway}} {{index .Options "com.docker.network.bridge.name"}}'
    out = run(
        ["docker", "-H", host, "network", "inspect", "bridge", "--format", template],
        capture_output=True,
        text=True,
        check=True,
    )
    gateway, _, interface = str(out.stdout).strip().rpartition(" ")
    if gateway.strip():
        return gateway.strip()
    shown = run(["ip", "-4", "-o", "addr", "show", interface or "docker0"], capture_output=True, text=True, check=True)
    for line in str(shown.stdout).splitlines():  # "3: docker0    inet 172.17.0.1/16 brd … scope global docker0"
        words = line.split()
        if "inet" in words:
            return words[words.index("inet") + 1].split("/")[0]
    raise BuildError(f"the Docker bridge {interface} has no IPv4 address")


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def serving(folder: Path, address: str, port: int = WHEELHOUSE_PORT) -> Iterator[str]:
    """The folder over HTTP on address:port (its listing is the page pip's --find-links reads)."""
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer((address, port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{address}:{port}/"
    finally:
        server.shutdown()
        server.server_close()


def environment(host: str, address: str, url: str) -> dict[str, str]:
    """What compose.local.yaml interpolates, on top of this process's environment."""
    versions = {variable: pinned(name) for name, variable in STANDINS.items()}
    return {**os.environ, "DOCKER_HOST": host, "WHEELHOUSE_URL": url, "WHEELHOUSE_HOST": address, **versions}


def prepare(host: str) -> Path:
    """The bases and the wheelhouse the builds of compose.local.yaml need (each step timed)."""
    installed()
    started = time.monotonic()
    done = debian_image(host)
    print(f"{DEBIAN_IMAGE}: {done} in {time.monotonic() - started:.1f} s", file=sys.stderr)
    started = time.monotonic()
    done = build(SLIM_IMAGE, host, force=False)
    print(f"{SLIM_IMAGE}: {done} in {time.monotonic() - started:.1f} s", file=sys.stderr)
    started = time.monotonic()
    wheels = wheelhouse()
    print(f"wheelhouse {wheels.name}: {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)
    return wheels


def without_name(folder: Path) -> tuple[Path, str]:
    """compose.yaml without its top-level `name`, which docker-compose 1.29 refuses; and the name."""
    import yaml

    content = yaml.safe_load(FILES[0].read_text())
    name = str(content.pop("name"))
    copy = folder / "compose.yaml"
    copy.write_text(yaml.safe_dump(content, sort_keys=False))
    return copy, name


def compose(args: Sequence[str], host: str, wheels: Path, **options: Any) -> "subprocess.CompletedProcess[Any]":
    """docker-compose with both files and the arguments, the wheelhouse served meanwhile.

    docker-compose 1.29 reads relative paths from --project-directory (compose.yaml's folder),
    and takes the project's name from COMPOSE_PROJECT_NAME (compose.yaml's `name`) unless -p.
    """
    address = bridge_address(host)
    with tempfile.TemporaryDirectory(prefix="multidb-compose-") as scratch, serving(wheels, address) as url:
        first, name = without_name(Path(scratch))
        env = {"COMPOSE_PROJECT_NAME": name, **environment(host, address, url)}
        files = [first, FILES[1]]
        argv = ["docker-compose", "--project-directory", str(HERE), *(a for f in files for a in ("-f", str(f))), *args]
        return run(argv, env=env, **options)


def keys_problem(environ: dict[str, str]) -> str | None:
    """Why the app containers could not read the keys they mount at /keys, if they could not."""
    folder = HERE / environ.get("LOCAL_KEYS_DIR", "../../.local/keys")  # compose.yaml's default
    key = folder.resolve() / "jwt-signing.pem"
    if not key.exists():
        return f"no keys in {key.parent}: make dev writes them when it first signs a token, or set LOCAL_KEYS_DIR"
    status = key.stat()
    if status.st_uid != APP_UID and not status.st_mode & 0o004:
        return f"the containers' user (uid {APP_UID}) cannot read {key}: sudo chown -R {APP_UID} {key.parent}"
    return None


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    host = running_host()
    if host is None:
        print("no Docker engine answers: run make docker first", file=sys.stderr)
        return 1
    try:
        wheels = prepare(host)
    except (BuildError, subprocess.CalledProcessError) as exc:
        print(exc, file=sys.stderr)
        return 1
    problem = keys_problem(dict(os.environ)) if "up" in args else None
    if problem is not None:  # the datastores run all the same; the realtime server verifies no token
        print(f"warning: {problem}", file=sys.stderr)
    return compose(args, host, wheels).returncode


if __name__ == "__main__":
    sys.exit(main())
