"""The Socket.IO server's Redis connections: bounded under a burst, given back when idle, and
replaced transparently when Redis closed them (a restart, a failover, an idle timeout)."""

import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import socketio

from tests.conftest import ADMIN_PASSWORD, REDIS_SERVER_PORT, USE_REDIS
from tests.helpers import Api, get_user_id
from tests.processes import Process, free_port, tcp_sockets, wait_for

pytestmark = pytest.mark.process

BOUND = 4  # REDIS_MAX_CONNECTIONS of the server under test
IDLE = 1.0  # REDIS_IDLE_TIMEOUT: seconds an idle pooled connection is kept
# Its pools (the shared client's and the Socket.IO manager's publisher), and one subscription
# each for the manager's channel and the notices.
CEILING = 2 * BOUND + 2
BURST = 300


@pytest.fixture(scope="module")
def server() -> Iterator[Process]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = Process(
        "realtime-pools",
        [sys.executable, "-m", "infra.services.realtime", "--port", str(port)],
        {
            "REALTIME_CORS_ORIGINS": url,
            "REDIS_MAX_CONNECTIONS": str(BOUND),
            "REDIS_IDLE_TIMEOUT": str(IDLE),
            # the bound is the point, not how long a turn waits: the embedded Redis on a busy
            # machine serves a burst of 300 more slowly than the default wait (test_redis_pools
            # has the wait's fairness)
            "REDIS_POOL_TIMEOUT": "15",
            # the burst is the point here, not the limits (test_limits.py has those)
            "REALTIME_EVENTS_PER_SECOND": "10000",
            "REALTIME_EVENTS_BURST": "10000",
            "REALTIME_USER_EVENTS_PER_SECOND": "10000",
            "REALTIME_USER_EVENTS_BURST": "10000",
        },
    )
    process.url = url  # type: ignore[attr-defined]
    try:
        process.wait_listening(port, "the Socket.IO server")
        yield process
    finally:
        process.stop()


def redis_addresses(pid: int) -> set[str]:
    """The `ip:port` of every TCP connection the process holds to the Redis server, as
    CLIENT LIST names them."""
    found = set()
    for fields in tcp_sockets(pid):
        local, remote, state = fields[1], fields[2], fields[3]
        if int(remote.rsplit(":", 1)[1], 16) == REDIS_SERVER_PORT and state == "01":
            found.add(f"127.0.0.1:{int(local.rsplit(':', 1)[1], 16)}")
    return found


def connect(url: str, token: str) -> socketio.Client:
    client = socketio.Client(reconnection=False)
    client.heard = []  # type: ignore[attr-defined]
    client.on("message", client.heard.append)  # type: ignore[attr-defined]
    client.connect(url, auth={"token": token}, transports=["websocket"], wait_timeout=10)
    return client


def burst(client: socketio.Client, count: int) -> list[Any]:
    """Emit `count` events at once (half reading presence, half publishing a message); their acks."""
    acks: list[Any] = []
    done = threading.Event()
    lock = threading.Lock()

    def ack(data: Any) -> None:
        with lock:
            acks.append(data)
            if len(acks) == count:
                done.set()

    me = get_user_id("admin")
    for n in range(count):
        if n % 2:
            client.emit("presence:list", None, callback=ack)
        else:
            client.emit("message:send", {"to": me, "text": f"{n}"}, callback=ack)
    assert done.wait(30), f"{len(acks)} of {count} acknowledged"
    return acks


@pytest.fixture
def admin(api: Api, server: Process) -> Iterator[socketio.Client]:
    client = connect(server.url, api.login("admin", ADMIN_PASSWORD).access)  # type: ignore[attr-defined]
    yield client
    client.disconnect()


def test_a_burst_of_events_stays_within_the_pools_bound_and_shrinks_after(
    server: Process, admin: socketio.Client
) -> None:
    acks = burst(admin, BURST)
    assert [ack["code"] for ack in acks] == [200] * BURST, [a for a in acks if a["code"] != 200][:3]
    wait_for(lambda: len(admin.heard) == BURST // 2, timeout=10, what="every message to come back")  # type: ignore[attr-defined]
    held = len(redis_addresses(server.popen.pid))
    assert held <= CEILING, f"{held} connections to Redis after the burst"
    # idle ones go back: the subscriptions stay, and what the sweep itself uses
    wait_for(lambda: len(redis_addresses(server.popen.pid)) <= 4, timeout=10, what="the idle connections to close")


def test_connections_redis_closed_are_replaced_on_first_use(api: Api, server: Process, admin: socketio.Client) -> None:
    if not USE_REDIS:
        pytest.skip("CLIENT KILL needs the real Redis")  # the first pass always has it
    burst(admin, 40)  # several pooled connections, then Redis closes every one of them
    addresses = redis_addresses(server.popen.pid)
    with redis.Redis(port=REDIS_SERVER_PORT) as control:
        for address in addresses:
            control.execute_command("CLIENT", "KILL", "ADDR", address)
    wait_for(lambda: not addresses & redis_addresses(server.popen.pid), timeout=5, what="the kills to land")
    assert admin.call("presence:list", timeout=10)["code"] == 200
    assert admin.call("message:send", {"to": get_user_id("admin"), "text": "again"}, timeout=10)["code"] == 200
    second = connect(server.url, api.login("admin", ADMIN_PASSWORD).access)  # type: ignore[attr-defined]
    try:
        assert second.call("presence:list", timeout=10)["code"] == 200
    finally:
        second.disconnect()
    assert "AttributeError" not in server.log(), server.tail()
    assert "Cannot publish" not in server.log(), server.tail()
