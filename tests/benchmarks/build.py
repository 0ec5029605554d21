"""The artifacts the bench measures: `make build` output for this machine's CPU, copied as shipped.

`sam build` writes no bytecode (aws-lambda-builders unpacks wheels without compiling them)
and Lambda's /var/task and /opt are read-only, so `make build` compiles every module once
(unchecked-hash .pyc files) and the containers read them. The bench copies the artifacts
with that bytecode and runs them with `-B`, so nothing a measured import writes is reused.
"""

import json
import os
import platform
import shutil
import subprocess
import sys
import textwrap
import time
from importlib.util import find_spec
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SAM = ROOT / ".venv-sam" / "bin" / "sam"
FLOOR_SOURCE = Path(__file__).resolve().parent / "floor"
STACK_PAGE_SOURCE = Path(__file__).resolve().parent / "stack"
ELF_MACHINES = {0x3E: "x86_64", 0xB7: "arm64"}
# What the Lambda Python runtime provides beside the standard library (boto3 and its
# dependencies): the functions' artifacts leave them out, so the bench supplies this venv's.
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six", "urllib3")


def machine_architecture() -> str:
    return {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}[platform.machine().lower()]


def sam_build(build_dir: Path, architecture: str | None = None, source: Path = ROOT) -> Path:
    """`make build ARCH=…` of the checkout at `source` for one CPU (this machine's by default):
    `sam build`, then the bytecode."""
    architecture = architecture or machine_architecture()
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",  # a real python3.12 first
        "SAM_CLI_TELEMETRY": "0",
    }
    env.pop("MAKEFLAGS", None)  # not the options of a make that runs the tests
    command = ["make", "--no-print-directory", "build", f"ARCH={architecture}", f"BUILD_DIR={build_dir}"]
    started = time.monotonic()
    result = subprocess.run(command, cwd=source, env=env, capture_output=True, text=True, timeout=900)
    if result.returncode != 0 or "Build Succeeded" not in result.stdout + result.stderr:
        raise RuntimeError(f"make build failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    print(f"make build ({architecture}) into {build_dir}: {time.monotonic() - started:.0f} s", file=sys.stderr)
    return build_dir


def is_build(folder: Path) -> bool:
    return (folder / "template.yaml").is_file() and (folder / "SharedLayer" / "python").is_dir()


def native_libraries(folder: Path) -> dict[str, str]:
    """Every ELF shared object under the folder, with the CPU its header names (e_machine)."""
    found = {}
    for path in sorted(folder.rglob("*.so*")):
        with path.open("rb") as handle:
            header = handle.read(20)
        if header[:4] != b"\x7fELF":
            continue
        machine = int.from_bytes(header[18:20], "little" if header[5] == 1 else "big")
        found[str(path.relative_to(folder))] = ELF_MACHINES.get(machine, hex(machine))
    return found


def architecture_of(folder: Path) -> str:
    """The CPU the native libraries under `folder` were built for (the first one's header)."""
    for machine in native_libraries(folder).values():
        return machine
    raise ValueError(f"no native library under {folder}")


class NotABuild(ValueError):
    """A folder without `sam build` output for this machine's CPU."""


def check_build(build: Path) -> None:
    if not is_build(build):
        raise NotABuild(f"{build} holds no sam build output (template.yaml and SharedLayer/python)")
    built_for, here = architecture_of(build / "SharedLayer"), machine_architecture()
    if built_for != here:
        raise NotABuild(f"{build} was built for {built_for}; this machine runs {here}: give a build for its CPU")


def copy_as_shipped(source: Path, destination: Path) -> Path:
    shutil.copytree(source, destination, symlinks=True)
    return destination


def compile_all(folder: Path) -> None:
    """What `make build` does to its output: every module's bytecode, unchecked-hash."""
    import compileall

    compileall.compile_dir(
        str(folder), quiet=2, invalidation_mode=compileall.py_compile.PycInvalidationMode.UNCHECKED_HASH
    )


def has_bytecode(folder: Path) -> bool:
    return any(folder.rglob("*.pyc"))


def runtime_folder(destination: Path) -> Path:
    """A folder holding the Lambda runtime's extras (boto3 …), linked from this venv."""
    destination.mkdir(parents=True, exist_ok=True)
    for name in RUNTIME_PACKAGES:
        spec = find_spec(name)
        if spec is None or spec.origin is None:
            raise SystemExit(f"{name} is not installed in {sys.prefix}: the bench stands in for Lambda's with it")
        origin = Path(spec.origin)
        source = origin.parent if origin.name == "__init__.py" else origin
        (destination / source.name).symlink_to(source)
    return destination


def size(folder: Path) -> int:
    """Bytes of every file under `folder`, as unzipped in the container."""
    return sum(path.lstat().st_size for path in folder.rglob("*") if path.is_file() and not path.is_symlink())


def top_level_entries(folder: Path, module_files: list[str]) -> set[str]:
    """The entries of `folder` (packages, modules, extension files) these module files live in."""
    entries = set()
    for name in module_files:
        path = Path(name)
        if path.is_relative_to(folder):
            entries.add(path.relative_to(folder).parts[0])
    return entries


def package_floor(layer: Path, destination: Path, event: dict[str, object]) -> tuple[Path, Path]:
    """The floor's function folder and layer: its code, and the part of the built layer its
    hello app loads (FastAPI, Starlette, Pydantic, Mangum and what they import), so it runs
    the same versions and wheels as the functions."""
    function = copy_as_shipped(FLOOR_SOURCE, destination / "FloorFunction")
    listing = textwrap.dedent(
        f"""
        import json, sys
        sys.path[:] = [p for p in sys.path if "site-packages" not in p]
        sys.path[:0] = {[str(function), str(layer)]!r}
        import floor_fn.app
        assert floor_fn.app.handler(json.loads(sys.stdin.read()), None)["statusCode"] == 200
        print("\\n".join(getattr(module, "__file__", None) or "" for module in list(sys.modules.values())))
        """
    )
    output = subprocess.run(
        [sys.executable, "-I", "-S", "-B", "-c", listing],
        input=json.dumps(event),
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin"},
    ).stdout
    floor_layer = destination / "FloorLayer" / "python"
    floor_layer.mkdir(parents=True)
    entries = top_level_entries(layer, output.splitlines())
    # Their distributions' metadata too: Pydantic asks importlib.metadata for email-validator's version.
    entries |= {info.name for info in layer.glob("*.dist-info") if entries & distributed(info)}
    for entry in sorted(entries):
        source = layer / entry
        if source.is_dir():
            shutil.copytree(source, floor_layer / entry)
        else:
            shutil.copy2(source, floor_layer / entry)
    return function, floor_layer


def distributed(info: Path) -> set[str]:
    """The top-level entries a distribution installed (its RECORD's first path parts)."""
    record = info / "RECORD"
    lines = record.read_text().splitlines() if record.exists() else []
    return {line.split(",", 1)[0].split("/", 1)[0] for line in lines if line}
