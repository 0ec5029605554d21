"""A private Docker engine for this machine (`make docker`, `make docker-stop`).

    python -m infra.local.engine start     # prints the DOCKER_HOST to use
    python -m infra.local.engine stop
    python -m infra.local.engine host      # the DOCKER_HOST of the engine that runs, if one does

An engine that already answers (DOCKER_HOST, or the system's /var/run/docker.sock) is used as
it is and never started, stopped or reconfigured here. Otherwise Debian's `docker.io` (dockerd
20.10, containerd, runc) is installed with apt-get when missing and a dockerd of our own runs as
root with its own socket, data root, exec root and pid file, all under LOCAL_DOCKER_DIR
(/var/tmp/multidb-docker by default: one per machine, so its images, the built base images
included, outlive a clone and a run).

Its storage driver is overlay2 where the kernel mounts an overlay on the data root's disk,
vfs otherwise (which copies every layer whole: much slower and bigger, but runs anywhere).
It never touches the host's firewall: `--iptables=false --ip-forward=false` (the defaults
would set the FORWARD policy to DROP and turn IP forwarding on for the whole machine).
Containers sit on the default bridge (docker0, 172.17.0.1 on the host side) and a published
port is served by Docker's userland proxy on 127.0.0.1, which is how `sam local` reaches its
Lambda containers (with `--bridge=none` only host networking exists, and SAM, which connects
to the port it published, times out). Without forwarding, containers reach the host
(172.17.0.1: the datastores) but not the internet, which nothing here needs: every image is
built from files prepared on the host (infra/local/base_images.py).
"""

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

STATE = Path(os.environ.get("LOCAL_DOCKER_DIR", "/var/tmp/multidb-docker"))  # noqa: S108  (root's, mode 0700)
SOCKET = STATE / "docker.sock"
PIDFILE = STATE / "dockerd.pid"
LOG = STATE / "dockerd.log"
SYSTEM_SOCKET = Path("/var/run/docker.sock")
PACKAGES = ("docker.io",)


def run(argv: Sequence[str | Path], **options: Any) -> "subprocess.CompletedProcess[Any]":
    """A command of ours (fixed programs, arguments from this module)."""
    return subprocess.run(argv, **options)  # noqa: S603


def popen(argv: Sequence[str | Path], **options: Any) -> "subprocess.Popen[bytes]":
    return subprocess.Popen(argv, **options)  # noqa: S603


class EngineError(Exception):
    """The engine cannot be started here; the message says why and what to do."""


def answers(host: str, timeout: float = 2.0) -> bool:
    """Whether a Docker engine answers `GET /_ping` on a unix:// DOCKER_HOST."""
    if not host.startswith("unix://"):
        return run(["docker", "-H", host, "version"], capture_output=True, timeout=30).returncode == 0
    try:
        with socket.socket(socket.AF_UNIX) as client:
            client.settimeout(timeout)
            client.connect(host.removeprefix("unix://"))
            client.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            status_line = client.recv(256).split(b"\r\n", 1)[0]
            return status_line.startswith(b"HTTP/1.") and b" 200 " in status_line
    except OSError:
        return False


def running_host() -> str | None:
    """The DOCKER_HOST of an engine that answers: the caller's, ours, then the system's."""
    candidates = [os.environ.get("DOCKER_HOST", ""), f"unix://{SOCKET}", f"unix://{SYSTEM_SOCKET}"]
    return next((host for host in candidates if host and answers(host)), None)


def install() -> None:
    """apt-get install Debian's docker.io when dockerd is missing (root only)."""
    if shutil.which("dockerd"):
        return
    if os.geteuid() != 0:
        raise EngineError("dockerd is missing and only root can install it: sudo apt-get install docker.io")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run(["apt-get", "update", "-qq"], check=True, env=env)
    run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *PACKAGES], check=True, env=env)


def storage_driver() -> str:
    """overlay2 where this kernel mounts an overlay on the data root's disk, else vfs.

    vfs copies every layer whole: a container of a 450 MB image takes about a minute to
    create on a busy 2-core machine, where overlay2 takes a second.
    """
    if "overlay" not in Path("/proc/filesystems").read_text():
        return "vfs"
    probe = Path(tempfile.mkdtemp(prefix="overlay-probe-", dir=STATE))
    try:
        for name in ("lower", "upper", "work", "merged"):
            (probe / name).mkdir()
        options = f"lowerdir={probe / 'lower'},upperdir={probe / 'upper'},workdir={probe / 'work'}"
        mounted = run(["mount", "-t", "overlay", "overlay", "-o", options, str(probe / "merged")], capture_output=True)
        if mounted.returncode != 0:
            return "vfs"
        run(["umount", str(probe / "merged")], check=True)
        return "overlay2"
    finally:
        shutil.rmtree(probe, ignore_errors=True)


def dockerd_argv(driver: str) -> list[str]:
    return [
        "dockerd",
        f"--host=unix://{SOCKET}",
        f"--data-root={STATE / 'data'}",
        f"--exec-root={STATE / 'exec'}",
        f"--pidfile={PIDFILE}",
        f"--storage-driver={driver}",
        "--iptables=false",
        "--ip-forward=false",
        "--ip-masq=false",
        "--userland-proxy=true",
    ]


def start(timeout: float = 60) -> str:
    """Start our dockerd unless an engine answers; return the DOCKER_HOST to use."""
    host = running_host()
    if host is not None:
        return host
    if os.geteuid() != 0:
        raise EngineError("no Docker engine runs and a private one needs root (rootless Docker is not covered)")
    install()
    STATE.mkdir(parents=True, exist_ok=True)
    STATE.chmod(0o700)
    SOCKET.unlink(missing_ok=True)  # a stale socket from a killed engine
    driver = storage_driver()
    with LOG.open("ab") as log:
        process = popen(dockerd_argv(driver), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise EngineError(f"dockerd stopped at start (exit {process.returncode}): see {LOG}")
        if answers(f"unix://{SOCKET}"):
            return f"unix://{SOCKET}"
        time.sleep(0.2)
    raise EngineError(f"dockerd did not answer within {timeout:.0f} s: see {LOG}")


def stop(timeout: float = 30) -> bool:
    """Stop our dockerd (never another engine); whether one was running."""
    try:
        pid = int(PIDFILE.read_text())
    except (FileNotFoundError, ValueError):
        return False
    try:
        os.kill(pid, signal.SIGTERM)  # dockerd stops its containers and its containerd
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    raise EngineError(f"dockerd (pid {pid}) did not stop within {timeout:.0f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("start", "stop", "host"))
    args = parser.parse_args(argv)
    try:
        if args.command == "start":
            started = time.monotonic()
            ours = running_host() is None
            host = start()
            what = f"started in {time.monotonic() - started:.1f} s" if ours else "already running"
            print(f"Docker engine {what}: export DOCKER_HOST={host}", file=sys.stderr)
            print(host)
        elif args.command == "stop":
            print("stopped" if stop() else f"no engine of ours runs ({PIDFILE})", file=sys.stderr)
        else:
            found = running_host()
            if found is None:
                print("no Docker engine answers: make docker starts one", file=sys.stderr)
                return 1
            print(found)
    except EngineError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
