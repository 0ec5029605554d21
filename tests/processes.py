"""The worker, beat and the Socket.IO server as the real separate processes they are."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from infra.local.dev import listening

ROOT = Path(__file__).resolve().parents[1]
STARTED: "list[Process]" = []  # every process the tests started, for the logs of a failed test


def wait_for(condition: Callable[[], object], timeout: float = 20, what: str = "the condition") -> object:
    """Poll until `condition()` is truthy and return it; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def free_port(preferred: int | None = None) -> int:
    """A port nothing listens on now: `preferred` when it is free, any other otherwise."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", preferred or 0))
        except OSError:
            probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def tcp_sockets(pid: int | str = "self") -> list[list[str]]:
    """The rows of /proc/net/tcp and tcp6 (split into fields) for the process's open sockets."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    rows = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                rows.append(fields)
    return rows


class Process:
    """A child process with its output in a file, stopped with SIGTERM like a container."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str] | None = None, cwd: Path = ROOT) -> None:
        self.name = name
        self.started = time.time()
        self.output = Path(tempfile.mkstemp(prefix=f"multidb-{name}-", suffix=".log")[1])
        environment = {
            **os.environ,
            # First, when the run records AWS calls: its sitecustomize hook (tests/aws_calls.py)
            "PYTHONPATH": os.pathsep.join(
                [*filter(None, [os.environ.get("MULTIDB_AWS_CALLS_SITE")]), str(ROOT), str(ROOT / "shared")]
            ),
            "PYTHONFAULTHANDLER": "1",  # SIGABRT prints every thread's stack: see stop()
        }
        environment.update(env or {})
        with self.output.open("wb") as sink:
            self.popen = subprocess.Popen(
                argv, cwd=cwd, env=environment, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
            )
        STARTED.append(self)

    def log(self) -> str:
        return self.output.read_text(errors="replace")

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def alive(self) -> bool:
        return self.popen.poll() is None

    def wait_listening(self, port: int, what: str, timeout: float = 20) -> None:
        """Wait until something listens on the port, failing at once (with the log) if this exits first."""
        wait_for(lambda: listening(port) or not self.alive(), timeout=timeout, what=what)
        assert self.alive(), self.log()

    def stop(self) -> int:
        if self.alive():
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                # Hung: have it print where (into its log) before it goes.
                os.kill(self.popen.pid, signal.SIGABRT)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.popen.wait(timeout=5)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()
        return self.popen.returncode


@contextlib.contextmanager
def serving(process: Process, port: int, what: str, timeout: float = 20) -> Iterator[Process]:
    """The process once it listens on the port; stopped on leaving, whatever happened."""
    try:
        process.wait_listening(port, what, timeout)
        yield process
    finally:
        process.stop()


def celery(*args: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "multidb.queue.app", *args]


def start_worker() -> Process:
    return Process(
        "worker",
        celery("worker", "-P", "solo", "-l", "INFO", "-n", "tests@%h", "--without-gossip", "--without-mingle"),
    )


def start_beat(schedule_dir: Path) -> Process:
    return Process(
        "beat",
        celery(
            "beat",
            "-S",
            "multidb.queue.scheduler:DatabaseScheduler",
            "-l",
            "INFO",
            "--pidfile",
            str(schedule_dir / "beat.pid"),
        ),
    )


def start_realtime(port: int, origins: str) -> Process:
    command = [sys.executable, "-m", "infra.services.realtime", "--port", str(port)]
    return Process("realtime", command, {"REALTIME_CORS_ORIGINS": origins, "LOG_LEVEL": "INFO"})
