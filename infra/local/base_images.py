"""Build look-alikes of the base images SAM and infra/services/Dockerfile pull (`make images-local`).

    python -m infra.local.base_images            # both, each skipped when built from the same recipe
    python -m infra.local.base_images --force    # rebuild

No registry but Debian's mirror and PyPI is reachable from our machines, so neither
`public.ecr.aws/lambda/python:3.12-x86_64` nor `python:3.12-slim` can be pulled. Both are built
here, on the engine `make docker` runs, from three sources only:

- a Debian bookworm root made by `debootstrap --variant=minbase` from the machine's own mirror,
  with the shared libraries CPython loads (OpenSSL 3, SQLite, libffi, …) and ca-certificates;
- the machine's CPython 3.12 build (pyenv's, or PY312), copied without its test suite and Tk;
- wheels from PyPI, installed on the host into the image's folder (`pip --target`): the
  containers need no internet (infra/local/engine.py gives them none).

`public.ecr.aws/lambda/python:3.12-x86_64` gets CPython as /var/lang, awslambdaric and boto3 in
/var/runtime, a /var/runtime/bootstrap that runs `python -m awslambdaric <handler>` and AWS's
variables (LAMBDA_TASK_ROOT, LD_LIBRARY_PATH, …): `sam local … --skip-pull-image` builds its
invoke image on it (adding the runtime interface emulator and the layer) as on AWS's. x86_64
only: these machines cannot run arm64 code (no QEMU), so `make build ARCH=x86_64` is the
artifact `sam local` runs. `python:3.12-slim` gets CPython under /usr/local, with pip. What
differs from AWS's and Docker's images is listed in docs/local.md.

The debootstrap root is cached as a tarball beside the engine's data (LOCAL_DOCKER_DIR), and
each image carries the hash of its recipe as a label: a second run builds nothing.
"""

import argparse
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Any

from .engine import STATE, running_host

ARCH = "x86_64"
LAMBDA_IMAGE = f"public.ecr.aws/lambda/python:3.12-{ARCH}"
SLIM_IMAGE = "python:3.12-slim"
DEBIAN_IMAGE = "multidb-local/debian:bookworm"
LABEL = "multidb.local.recipe"
SUITE = "bookworm"
# What CPython's own modules link to (ldd of lib-dynload), besides libc; Tk left out.
LIBRARIES = (
    "ca-certificates",
    "netbase",
    "tzdata",
    "libssl3",
    "libsqlite3-0",
    "libffi8",
    "libbz2-1.0",
    "liblzma5",
    "zlib1g",
    "libncursesw6",
    "libreadline8",
    "libuuid1",
    "libexpat1",
    "libnsl2",
    "libtirpc3",
    "libcrypt1",
    "libgdbm6",
)
# The AWS SDK the Lambda runtime provides (the functions do not ship it: shared/requirements.txt).
RUNTIME_PACKAGES = ("awslambdaric==3.1.1", "boto3==1.44.5")
# Left out of the copied CPython: its test suite, Tk, and what only this machine's setup adds.
SKIPPED = ("lib/python3.12/test", "lib/python3.12/idlelib", "lib/python3.12/tkinter", "lib/python3.12/turtledemo")
SKIPPED_SITE = ("_sandboxing_egress_ca.pth",)

LAMBDA_ENV = {
    "LANG": "en_US.UTF-8",
    "TZ": ":/etc/localtime",
    "PATH": "/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin",
    "LD_LIBRARY_PATH": "/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib",
    "LAMBDA_TASK_ROOT": "/var/task",
    "LAMBDA_RUNTIME_DIR": "/var/runtime",
}
# Lambda's sys.path: the function, the layer, then the runtime (AWS's Lambda docs, packaging layers).
BOOTSTRAP = """#!/bin/sh
# What AWS's python3.12 image runs: the runtime interface client, with the handler the emulator passes.
export AWS_EXECUTION_ENV=AWS_Lambda_python3.12
LAYER=/opt/python/lib/python3.12/site-packages:/opt/python
export PYTHONPATH="/var/task:$LAYER:/var/runtime${PYTHONPATH:+:$PYTHONPATH}"
cd "${LAMBDA_TASK_ROOT:-/var/task}"
exec /var/lang/bin/python3.12 -m awslambdaric "${_HANDLER:-$1}"
"""
ENTRYPOINT = """#!/bin/sh
# The image's own entry point, as AWS's: under the emulator when it is there (sam local adds it).
if [ -z "$AWS_LAMBDA_RUNTIME_API" ] && [ -x /var/rapid/aws-lambda-rie ]; then
    exec /var/rapid/aws-lambda-rie /var/runtime/bootstrap "$@"
fi
exec /var/runtime/bootstrap "$@"
"""
SLIM_ENV = {
    "PATH": "/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "PYTHON_VERSION": "",  # filled with the copied CPython's version
}


def run(argv: Sequence[str | Path], **options: Any) -> "subprocess.CompletedProcess[Any]":
    """A command of ours (fixed programs, arguments from this module)."""
    return subprocess.run(argv, **options)  # noqa: S603


class BuildError(Exception):
    """An image cannot be built here; the message says why."""


def python_home() -> Path:
    """The machine's CPython 3.12 installation (PY312's, else pyenv's newest 3.12)."""
    pyenv = sorted(str(path) for path in Path.home().glob(".pyenv/versions/3.12*/bin/python3.12"))
    for candidate in [os.environ.get("PY312", ""), *reversed(pyenv)]:
        if candidate and Path(candidate).exists():
            home = Path(candidate).resolve().parents[1]
            if (home / "lib" / "libpython3.12.so.1.0").exists():
                return home
    raise BuildError("no CPython 3.12 shared build found (pyenv's, or PY312=/path/to/bin/python3.12)")


def python_version(home: Path) -> str:
    out = run(
        [home / "bin" / "python3.12", "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return str(out.stdout).strip()


def mirror() -> str:
    """The machine's Debian mirror, from its apt sources."""
    for source in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        if not source.is_file():
            continue
        for line in source.read_text().splitlines():
            words = line.split()
            if line.startswith("URIs:") and len(words) > 1 and "security" not in words[1]:
                return words[1]
            if words[:1] == ["deb"] and "security" not in line:
                return next(word for word in words[1:] if "://" in word)
    return "http://deb.debian.org/debian"


def recipe(*parts: str | bytes) -> str:
    digest = hashlib.sha256(Path(__file__).read_bytes())
    for part in parts:
        digest.update(part if isinstance(part, bytes) else part.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def docker(*args: str, stdin: bytes | None = None, host: str) -> str:
    out = run(
        ["docker", "-H", host, *args],
        input=stdin,
        capture_output=True,
        check=False,
        env={**os.environ, "DOCKER_BUILDKIT": "0"},
    )
    if out.returncode != 0:
        raise BuildError(f"docker {' '.join(args[:2])} failed: {out.stderr.decode(errors='replace').strip()}")
    return bytes(out.stdout).decode().strip()


def built_recipe(image: str, host: str) -> str | None:
    out = run(
        ["docker", "-H", host, "image", "inspect", "--format", f'{{{{index .Config.Labels "{LABEL}"}}}}', image],
        capture_output=True,
        text=True,
        check=False,
    )
    return str(out.stdout).strip() if out.returncode == 0 else None


def debian_root(work: Path) -> Path:
    """The cached debootstrap tarball (made on first use: about a minute and a half)."""
    packages = hashlib.sha256(",".join([SUITE, *LIBRARIES]).encode()).hexdigest()[:12]
    tarball = STATE / "cache" / f"{SUITE}-minbase-{packages}.tar"
    if tarball.exists():
        return tarball
    if shutil.which("debootstrap") is None:
        run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "debootstrap"], check=True)
    root = work / "debian"
    try:
        run(
            ["debootstrap", "--variant=minbase", f"--include={','.join(LIBRARIES)}", SUITE, str(root), mirror()],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    finally:
        unmount_under(root)  # debootstrap mounts /proc and /sys in the root, and leaves them when it fails
    shutil.rmtree(root / "var/cache/apt/archives", ignore_errors=True)
    (root / "var/cache/apt/archives/partial").mkdir(parents=True)
    for lists in (root / "var/lib/apt/lists").glob("*_Packages"):
        lists.unlink()
    tarball.parent.mkdir(parents=True, exist_ok=True)
    partial = tarball.with_suffix(".partial")
    run(["tar", "--numeric-owner", "-C", str(root), "-cf", str(partial), "."], check=True)
    partial.rename(tarball)
    shutil.rmtree(root)
    return tarball


def unmount_under(root: Path) -> None:
    """Unmount whatever is mounted under root, deepest first (before anything deletes it)."""
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for point in sorted((m for m in mounts if m.startswith(f"{root}/")), key=len, reverse=True):
        run(["umount", "--lazy", point], check=False)


class Root:
    """The image's files: the Debian root's tarball with more appended, each path once (docker
    import refuses a path twice, a folder included)."""

    def __init__(self, archive: tarfile.TarFile) -> None:
        self.archive = archive
        self.seen = {self.key(name) for name in archive.getnames()}

    @staticmethod
    def key(name: str) -> str:
        return name.removeprefix("./").strip("/")

    def add(self, info: tarfile.TarInfo, data: IO[bytes] | None = None) -> None:
        info.name = self.key(info.name)
        if info.name in self.seen:
            if info.isdir():
                return
            raise BuildError(f"{info.name} is in the Debian root already")
        self.seen.add(info.name)
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        self.archive.addfile(info, data)

    def tree(self, source: Path, target: str, skip: Iterable[str] = ()) -> None:
        """A file, or a folder with its files, under target, leaving out the relative paths in skip."""
        skipped = tuple(skip)
        paths = [source] if source.is_file() else [source, *sorted(source.rglob("*"))]
        for path in paths:
            relative = path.relative_to(source).as_posix() if path != source else ""
            if any(relative == s or relative.startswith(s + "/") for s in skipped) or path.name in SKIPPED_SITE:
                continue
            info = self.archive.gettarinfo(str(path), arcname=f"{target}/{relative}" if relative else target)
            if info.isreg():
                with path.open("rb") as data:
                    self.add(info, data)
            else:
                self.add(info)

    def file(self, path: str, text: str, mode: int = 0o755) -> None:
        data = text.encode()
        info = tarfile.TarInfo(path)
        info.size, info.mode = len(data), mode
        self.add(info, io.BytesIO(data))

    def link(self, path: str, target: str) -> None:
        info = tarfile.TarInfo(path)
        info.type, info.linkname = tarfile.SYMTYPE, target
        self.add(info)

    def folder(self, path: str) -> None:
        info = tarfile.TarInfo(path)
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        self.add(info)


def pip_target(work: Path, packages: Iterable[str], name: str) -> Path:
    """Wheels for x86_64 CPython 3.12 from PyPI, installed on the host into a folder."""
    target = work / name
    run(
        [
            *(sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-compile"),
            *("--only-binary=:all:", "--platform", "manylinux2014_x86_64", "--python-version", "3.12"),
            *("--implementation", "cp", "--target", str(target), *packages),
        ],
        check=True,
    )
    return target


def python_layer(root: Root, home: Path, prefix: str) -> None:
    """The machine's CPython under prefix, with pip, and its scripts pointing at prefix."""
    root.tree(home / "lib", f"{prefix}/lib", SKIPPED)
    root.tree(home / "include", f"{prefix}/include")
    root.folder(f"{prefix}/bin")
    root.tree(home / "bin" / "python3.12", f"{prefix}/bin/python3.12")
    for name in ("python3", "python"):
        root.link(f"{prefix}/bin/{name}", "python3.12")
    for name in ("pip", "pip3", "pip3.12"):  # pyenv's scripts name pyenv's interpreter
        root.file(f"{prefix}/bin/{name}", f'#!/bin/sh\nexec /{prefix}/bin/python3.12 -m pip "$@"\n')


def build(image: str, host: str, force: bool) -> str:
    """Build one image unless its recipe is built; return what was done."""
    home = python_home()
    version = python_version(home)
    env = dict(LAMBDA_ENV) if image == LAMBDA_IMAGE else {**SLIM_ENV, "PYTHON_VERSION": version}
    key = recipe(image, version, *RUNTIME_PACKAGES, *LIBRARIES, json.dumps(env))
    if not force and built_recipe(image, host) == key:
        return "cached"
    with tempfile.TemporaryDirectory(prefix="multidb-images-", dir=STATE) as scratch:
        work = Path(scratch)
        base = debian_root(work)
        combined = work / "image.tar"
        shutil.copyfile(base, combined)
        with tarfile.open(combined, "a") as archive:
            root = Root(archive)
            if image == LAMBDA_IMAGE:
                root.folder("var/lang")
                python_layer(root, home, "var/lang")
                root.file("var/lang/lib/python3.12/site-packages/lambda-runtime.pth", "/var/runtime\n", 0o644)
                root.tree(pip_target(work, RUNTIME_PACKAGES, "runtime"), "var/runtime")
                root.file("var/runtime/bootstrap", BOOTSTRAP)
                root.file("lambda-entrypoint.sh", ENTRYPOINT)
                root.file("etc/ld.so.conf.d/var-lang.conf", "/var/lang/lib\n", 0o644)
                root.folder("var/task")
                root.folder("opt")
                changes = ["WORKDIR /var/task", 'ENTRYPOINT ["/lambda-entrypoint.sh"]']
            else:
                python_layer(root, home, "usr/local")
                changes = ['CMD ["python3"]']
        changes += [f"ENV {name}={value}" for name, value in env.items()]
        with combined.open("rb") as data:
            imported = run(
                ["docker", "-H", host, "import", *(arg for c in changes for arg in ("--change", c)), "-", image],
                stdin=data,
                capture_output=True,
                check=False,
            )
        if imported.returncode != 0:
            raise BuildError(f"docker import {image} failed: {imported.stderr.decode(errors='replace').strip()}")
    # ldconfig: the copied libpython's folder joins the loader's cache (its RUNPATH names the
    # host's folder); the label marks the recipe built.
    dockerfile = f"FROM {image}\nRUN /sbin/ldconfig\nLABEL {LABEL}={key}\n"
    docker("build", "-q", "-t", image, "-", stdin=dockerfile.encode(), host=host)
    return "built"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--force", action="store_true", help="rebuild even when the recipe is built")
    parser.add_argument("images", nargs="*", default=[LAMBDA_IMAGE, SLIM_IMAGE])
    args = parser.parse_args(argv)
    host = running_host()
    if host is None:
        print("no Docker engine answers: run make docker first", file=sys.stderr)
        return 1
    try:
        for image in args.images:
            started = time.monotonic()
            done = build(image, host, args.force)
            print(f"{image}: {done} in {time.monotonic() - started:.1f} s", file=sys.stderr)
    except (BuildError, subprocess.CalledProcessError) as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
