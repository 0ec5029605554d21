"""Presence, as a browser's socket.io-client sees it: exact after the server ends a socket
(logout, disabling) and for a socket held open for many sweeps.

The clients are the JavaScript socket.io-client (tests/fixtures/socketio_client, installed
from npm by `npm ci` on first use), run by Node and driven over pipes.
"""

import itertools
import json
import queue
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from multidb.rbac import event_code
from tests.conftest import ADMIN_PASSWORD
from tests.helpers import Api, create_user, get_user_id
from tests.processes import wait_for

pytestmark = pytest.mark.process

CLIENT = Path(__file__).resolve().parents[1] / "fixtures" / "socketio_client"
SWEEP = 0.5  # REALTIME_SWEEP_INTERVAL of the tests' server
CODES = (event_code("presence:list"),)


@pytest.fixture(scope="session")
def node_client() -> Path:
    """The package installed (once: `npm ci` from its lock file)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    assert node, "Node.js is needed for the socket.io-client tests"
    assert npm, "npm is needed for the socket.io-client tests"
    if not (CLIENT / "node_modules" / "socket.io-client").is_dir():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=CLIENT, check=True, capture_output=True, timeout=120)
    return CLIENT / "client.mjs"


class NodeSocket:
    """A socket.io-client connection in a Node process; what it hears, in order."""

    def __init__(self, script: Path, url: str, token: str, agent: str) -> None:
        self.process = subprocess.Popen(
            ["node", str(script), url, token, agent],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.acks: dict[int, Any] = {}
        self.ids = itertools.count(1)
        self.connected = False
        threading.Thread(target=self._read, daemon=True).start()
        first = self.wait(lambda line: line["type"] in ("connected", "connect_error"), "the connection")
        assert first["type"] == "connected", first

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            line = json.loads(raw)
            if line["type"] == "connected":
                self.connected = True
            elif line["type"] == "disconnected":
                self.connected = False
            elif line["type"] == "ack":
                self.acks[line["id"]] = line["data"]
            self.lines.put(line)

    def wait(self, match: Any, what: str, timeout: float = 10) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            if match(line):
                return line
        raise AssertionError(f"no {what} within {timeout}s")

    def call(self, event: str, data: Any = None) -> Any:
        n = next(self.ids)
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"id": n, "emit": event, "data": data}) + "\n")
        return wait_for(lambda: self.acks.get(n), timeout=10, what=f"the ack of {event}")

    def close(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def browsers(node_client: Path, realtime: str) -> Iterator[Any]:
    opened: list[NodeSocket] = []

    def open_socket(token: str, agent: str = "browser") -> NodeSocket:
        socket = NodeSocket(node_client, realtime, token, agent)
        opened.append(socket)
        return socket

    yield open_socket
    for socket in opened:
        socket.close()


def online(admin: NodeSocket, user_id: str) -> int:
    """How many open connections the user has, as an admin asks (`presence:user`)."""
    ack = admin.call("presence:user", {"userId": user_id})
    assert ack["code"] == 200, ack
    count: int = ack["data"]["connections"]
    return count


def test_logout_takes_that_sessions_socket_out_of_presence_at_once(api: Api, browsers: Any) -> None:
    alice_id = create_user("alice", "alice-password", codes=CODES)
    admin = browsers(api.login("admin", ADMIN_PASSWORD).access, "admin")
    first = api.login("alice", "alice-password")
    leaving = browsers(first.access, "laptop")
    staying = browsers(api.login("alice", "alice-password").access, "phone")
    assert online(admin, alice_id) == 2
    assert api.post("/api/v1/auth/logout", token=first.access).status_code == 200
    leaving.wait(lambda line: line["type"] == "disconnected", "the socket to close")
    # the moment the server has closed it, nobody sees it any more
    assert online(admin, alice_id) == 1
    listed = staying.call("presence:list")["data"]
    assert [(s["userAgent"], s["current"]) for s in listed] == [("phone", True)]


def test_disabling_a_user_takes_their_sockets_out_of_presence_at_once(api: Api, browsers: Any) -> None:
    alice_id = create_user("alice", "alice-password", codes=CODES)
    admin_token = api.login("admin", ADMIN_PASSWORD).access
    admin = browsers(admin_token, "admin")
    alices = [browsers(api.login("alice", "alice-password").access, agent) for agent in ("laptop", "phone")]
    assert online(admin, alice_id) == 2
    disable = api.put(f"/api/v1/users/{alice_id}", token=admin_token, json_body={"status": False})
    assert disable.status_code == 200
    for socket in alices:
        socket.wait(lambda line: line["type"] == "disconnected", "the socket to close")
    assert online(admin, alice_id) == 0


def test_a_socket_held_open_for_many_sweeps_stays_listed(api: Api, browsers: Any) -> None:
    alice_id = create_user("alice", "alice-password", codes=CODES)
    admin = browsers(api.login("admin", ADMIN_PASSWORD).access, "admin")
    alice = browsers(api.login("alice", "alice-password").access, "laptop")
    # Watched all along, not slept through: twelve sweeps, past the entries' first TTL.
    until = time.monotonic() + 12 * SWEEP
    while time.monotonic() < until:
        assert online(admin, alice_id) == 1
        time.sleep(SWEEP / 2)
    assert alice.connected
    assert [s["userAgent"] for s in alice.call("presence:list")["data"]] == ["laptop"]
    assert online(admin, get_user_id("admin")) == 1
