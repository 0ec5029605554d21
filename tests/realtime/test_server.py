"""Socket.IO client events and pushed revocations, across two real server processes that
share Redis (their sweeps set to a minute, so only the push can end a socket quickly)."""

import queue
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
import socketio

from multidb.rbac import event_code
from multidb.security.tokens import TokenType, issue
from tests.conftest import ADMIN_PASSWORD
from tests.helpers import Api, create_user, get_user_id, role_id, snapshot
from tests.processes import Process, free_port, listening, wait_for

pytestmark = pytest.mark.process

PUSHED_WITHIN = 1.0  # seconds from the API's answer to `session:revoked` on every server


@pytest.fixture(scope="module")
def servers() -> Iterator[list[str]]:
    """Two Socket.IO servers, as two containers behind one load balancer would be."""
    ports = [free_port(), free_port()]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    processes = [
        Process(
            f"realtime-{n}",
            [sys.executable, "-m", "tests.fixtures.socket_events", "--port", str(port)],  # the server, plus test:fail
            {
                "REALTIME_CORS_ORIGINS": ",".join(urls),
                "REALTIME_SWEEP_INTERVAL": "60",
                "LOG_LEVEL": "INFO",
            },
        )
        for n, port in enumerate(ports)
    ]
    try:
        for process, port in zip(processes, ports, strict=True):
            wait_for(lambda: listening(port) or not process.alive(), what=f"{process.name}")
            assert process.alive(), process.log()
        for process in processes:
            wait_for(lambda: "following revocations" in process.log(), what="the notice channel")
        yield urls
    finally:
        for process in processes:
            process.stop()


class Socket:
    """A browser's Socket.IO connection that records every event it hears, with the time."""

    def __init__(self, url: str, token: str, agent: str = "Mozilla/5.0 tests") -> None:
        self.client = socketio.Client(reconnection=False)
        self.heard: queue.Queue[tuple[float, str, Any]] = queue.Queue()
        self.client.on("*", lambda event, data: self.heard.put((time.monotonic(), event, data)))
        headers = {"User-Agent": agent}
        self.client.connect(url, auth={"token": token}, headers=headers, transports=["websocket"], wait_timeout=10)

    def call(self, event: str, data: Any = None) -> Any:
        return self.client.call(event, data, timeout=10)

    def next(self, event: str, timeout: float = 10) -> tuple[float, Any]:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                at, name, data = self.heard.get(timeout=left)
            except queue.Empty:
                break
            if name == event:
                return at, data
        raise AssertionError(f"no {event!r} within {timeout}s")

    def quiet(self, event: str, seconds: float) -> bool:
        try:
            self.next(event, timeout=seconds)
        except AssertionError:
            return True
        return False


@pytest.fixture
def sockets() -> Iterator[list[Socket]]:
    opened: list[Socket] = []
    yield opened
    for socket in opened:
        if socket.client.connected:
            socket.client.disconnect()


def open_socket(sockets: list[Socket], url: str, token: str, agent: str = "Mozilla/5.0 tests") -> Socket:
    socket = Socket(url, token, agent)
    sockets.append(socket)
    return socket


def envelope(ack: Any, code: int) -> Any:
    assert isinstance(ack, dict), ack
    assert set(ack) == {"code", "message", "ts", "data"} | ({"error"} if code >= 400 else set()), ack
    assert ack["code"] == code, ack
    return ack["data"]


# ---- client events ---------------------------------------------------------------------------

SOCKET_CODES = (event_code("presence:list"), event_code("message:send"))
PRESENCE_CODE = event_code("presence:user")  # who else is connected: deliveredTo, presence:user


def test_a_granted_event_is_acknowledged_in_the_envelope(api: Api, servers: list[str], sockets: list[Socket]) -> None:
    create_user("alice", "alice-password", codes=SOCKET_CODES)
    first = open_socket(sockets, servers[0], api.login("alice", "alice-password").access, "laptop")
    open_socket(sockets, servers[1], api.login("alice", "alice-password").access, "phone")
    listed = envelope(first.call("presence:list"), 200)
    # both servers' connections, oldest first, this one marked
    assert [(s["userAgent"], s["current"]) for s in listed] == [("laptop", True), ("phone", False)]
    assert all(s["connectedAt"].endswith(("Z", "+00:00")) for s in listed), listed


def test_a_message_reaches_every_socket_of_its_user_on_every_server(
    api: Api, servers: list[str], sockets: list[Socket]
) -> None:
    create_user("alice", "alice-password", codes=(*SOCKET_CODES, PRESENCE_CODE))
    bob_id = create_user("bob", "bob-password", codes=SOCKET_CODES)
    create_user("carol", "carol-password", codes=SOCKET_CODES)
    alice = open_socket(sockets, servers[0], api.login("alice", "alice-password").access)
    bobs = [open_socket(sockets, url, api.login("bob", "bob-password").access) for url in servers]
    carol = open_socket(sockets, servers[1], api.login("carol", "carol-password").access)
    sent = envelope(alice.call("message:send", {"to": bob_id, "text": "hi Bob"}), 200)
    assert sent == {"deliveredTo": 2}
    for socket in bobs:
        assert socket.next("message")[1] == {"from": get_user_id("alice"), "data": {"text": "hi Bob"}}
    assert carol.quiet("message", 1)


def test_a_message_reaches_only_users_who_may_message_and_refuses_the_rest_alike(
    api: Api, servers: list[str], sockets: list[Socket]
) -> None:
    create_user("alice", "alice-password", codes=SOCKET_CODES)
    carol_id = create_user("carol", "carol-password")  # holds no messaging code
    dave_id = create_user("dave", "dave-password", codes=SOCKET_CODES, status=False)
    alice = open_socket(sockets, servers[0], api.login("alice", "alice-password").access)
    carol = open_socket(sockets, servers[1], api.login("carol", "carol-password").access)
    refusals = [
        alice.call("message:send", {"to": to, "text": "spam"})
        for to in (carol_id, dave_id, "00000000-0000-0000-0000-000000000001")
    ]
    # the same answer whether the user exists, is disabled or may not be messaged
    assert {(r["code"], r["error"], r["message"]) for r in refusals} == {
        (403, "recipient_unreachable", "you cannot message this user")
    }
    assert carol.quiet("message", 0.5)
    # an admin reaches anyone, and is told how many sockets it reached
    admin = open_socket(sockets, servers[0], api.login("admin", ADMIN_PASSWORD).access)
    assert envelope(admin.call("message:send", {"to": carol_id, "text": "from the admin"}), 200) == {"deliveredTo": 1}
    assert carol.next("message")[1] == {"from": get_user_id("admin"), "data": {"text": "from the admin"}}


def test_presence_is_told_only_to_holders_of_its_code(api: Api, servers: list[str], sockets: list[Socket]) -> None:
    create_user("alice", "alice-password", codes=SOCKET_CODES)
    bob_id = create_user("bob", "bob-password", codes=SOCKET_CODES)
    admin_id = get_user_id("admin")
    alice = open_socket(sockets, servers[0], api.login("alice", "alice-password").access)
    bob = open_socket(sockets, servers[1], api.login("bob", "bob-password").access)
    open_socket(sockets, servers[1], api.login("admin", ADMIN_PASSWORD).access)
    # delivered, but whether anyone was connected is not said: not for bob, not for the admin
    assert envelope(alice.call("message:send", {"to": bob_id, "text": "hi"}), 200) == {"deliveredTo": None}
    assert envelope(alice.call("message:send", {"to": admin_id, "text": "hi"}), 200) == {"deliveredTo": None}
    assert bob.next("message")[1]["data"] == {"text": "hi"}
    assert envelope(alice.call("presence:user", {"userId": admin_id}), 403) is None


@pytest.mark.parametrize(
    "payload",
    [None, {}, {"to": "not-a-uuid", "text": "x"}, {"to": "00000000-0000-0000-0000-000000000001", "text": ""}],
)
def test_a_bad_payload_is_422_with_the_fields(
    api: Api, servers: list[str], sockets: list[Socket], payload: Any
) -> None:
    create_user("alice", "alice-password", codes=SOCKET_CODES)
    alice = open_socket(sockets, servers[0], api.login("alice", "alice-password").access)
    fields = envelope(alice.call("message:send", payload), 422)
    assert fields
    assert all({"field", "message"} == set(f) for f in fields)
    assert alice.client.connected
    assert envelope(alice.call("presence:list"), 200)  # the connection is still usable


def test_an_ungranted_event_is_403_and_runs_nothing(api: Api, servers: list[str], sockets: list[Socket]) -> None:
    create_user("alice", "alice-password", codes=(event_code("presence:list"),))
    bob_id = create_user("bob", "bob-password")
    alice = open_socket(sockets, servers[0], api.login("alice", "alice-password").access)
    bob = open_socket(sockets, servers[1], api.login("bob", "bob-password").access)
    assert envelope(alice.call("message:send", {"to": bob_id, "text": "spam"}), 403) is None
    assert bob.quiet("message", 1)


def test_a_grant_taken_back_refuses_the_very_next_emit(api: Api, servers: list[str], sockets: list[Socket]) -> None:
    create_user("alice", "alice-password", codes=SOCKET_CODES)
    admin = api.login("admin", ADMIN_PASSWORD).access
    alice = open_socket(sockets, servers[0], api.login("alice", "alice-password").access)
    assert envelope(alice.call("presence:list"), 200)
    only_messages = {"interfacePermissions": [event_code("message:send")]}
    assert api.put(f"/api/v1/roles/{role_id('alice-role')}", token=admin, json_body=only_messages).status_code == 200
    assert envelope(alice.call("presence:list"), 403) is None


def test_a_failing_handler_answers_500_with_a_request_id_and_keeps_the_connection(
    api: Api, servers: list[str], sockets: list[Socket]
) -> None:
    admin = open_socket(sockets, servers[0], api.login("admin", ADMIN_PASSWORD).access)
    ack = admin.call("test:fail")
    assert envelope(ack, 500) is None
    assert ack["message"].startswith("Internal server error (request ")
    assert "hunter2" not in str(ack)
    assert envelope(admin.call("presence:list"), 200)  # admins pass every event's check


# ---- revocation pushed, not swept ------------------------------------------------------------


def alice_everywhere(api: Api, servers: list[str], sockets: list[Socket]) -> tuple[Any, list[Socket], list[Socket]]:
    """alice with two sessions open on both servers, and bob connected to both."""
    create_user("alice", "alice-password")
    create_user("bob", "bob-password")
    first = api.login("alice", "alice-password")
    second = api.login("alice", "alice-password", user_agent="other browser")
    alices = [open_socket(sockets, url, tokens.access) for url in servers for tokens in (first, second)]
    bobs = [open_socket(sockets, url, api.login("bob", "bob-password").access) for url in servers]
    return first, alices, bobs


def ended(socket: Socket, reason: str, since: float) -> None:
    at, data = socket.next("session:revoked", timeout=5)
    assert data == {"reason": reason}
    assert at - since < PUSHED_WITHIN, f"heard after {at - since:.2f} s"
    wait_for(lambda: not socket.client.connected, timeout=5, what="the socket to close")


def test_a_socket_closes_when_its_token_expires_not_at_the_next_sweep(
    servers: list[str], sockets: list[Socket]
) -> None:
    alice_id = create_user("alice", "alice-password", codes=SOCKET_CODES)
    token, claims = issue(alice_id, TokenType.ACCESS, "alice-family", 2)
    expires = time.monotonic() + (claims.exp - time.time())  # on the clock Socket records with
    alice = open_socket(sockets, servers[0], token)
    late = []
    while alice.client.connected and time.monotonic() < expires + 2:
        sent = time.monotonic()
        try:
            ack = alice.client.call("presence:list", timeout=5)
        except socketio.exceptions.SocketIOError:
            break  # closed meanwhile
        if sent > expires and ack["code"] == 200:
            late.append(ack)
        time.sleep(0.1)  # under the connection's rate limit (this is pacing, not waiting)
    assert late == [], "events passed after the token expired"
    at, data = alice.next("session:revoked", timeout=5)
    assert data == {"reason": "token expired"}
    assert expires <= at < expires + PUSHED_WITHIN, f"closed {at - expires:+.2f} s from exp"
    wait_for(lambda: not alice.client.connected, timeout=5, what="the socket to close")


def test_logout_ends_that_sessions_sockets_on_every_server_at_once(
    api: Api, servers: list[str], sockets: list[Socket]
) -> None:
    first, alices, bobs = alice_everywhere(api, servers, sockets)
    since = time.monotonic()
    assert api.post("/api/v1/auth/logout", token=first.access).status_code == 200
    for socket in alices[0::2]:  # the first session's sockets, one per server
        ended(socket, "logout", since)
    for socket in [*alices[1::2], *bobs]:
        assert socket.client.connected
        assert socket.quiet("session:revoked", 0.5)


def test_a_password_reset_ends_every_session_of_the_user_at_once(
    api: Api, servers: list[str], sockets: list[Socket]
) -> None:
    _, alices, bobs = alice_everywhere(api, servers, sockets)
    admin = api.login("admin", ADMIN_PASSWORD).access
    since = time.monotonic()
    reset = {"password": api.encrypt("new-alice-password")}
    assert api.put(f"/api/v1/users/{get_user_id('alice')}/password", token=admin, json_body=reset).status_code == 200
    for socket in alices:
        ended(socket, "password_reset", since)
    assert all(socket.client.connected for socket in bobs)


def test_disabling_a_user_ends_their_sockets_at_once(api: Api, servers: list[str], sockets: list[Socket]) -> None:
    _, alices, bobs = alice_everywhere(api, servers, sockets)
    admin = api.login("admin", ADMIN_PASSWORD).access
    since = time.monotonic()
    assert api.put(f"/api/v1/users/{get_user_id('alice')}", token=admin, json_body={"status": False}).status_code == 200
    for socket in alices:
        ended(socket, "user_disabled", since)
    assert all(socket.client.connected for socket in bobs)


def test_changing_your_password_ends_your_other_sessions_sockets(
    api: Api, servers: list[str], sockets: list[Socket]
) -> None:
    first, alices, _ = alice_everywhere(api, servers, sockets)
    since = time.monotonic()
    change = {"oldPassword": api.encrypt("alice-password"), "newPassword": api.encrypt("new-alice-password")}
    assert api.put("/api/v1/auth/user/password", token=first.access, json_body=change).status_code == 200
    for socket in alices[1::2]:
        ended(socket, "password_changed", since)
    assert all(socket.client.connected for socket in alices[0::2])  # the session that changed it


def test_a_role_edit_tells_its_holders_pages_and_only_theirs(
    api: Api, servers: list[str], sockets: list[Socket]
) -> None:
    create_user("alice", "alice-password", codes=("GET:/api/v1/roles",))
    create_user("bob", "bob-password", codes=("GET:/api/v1/users",))
    admin = api.login("admin", ADMIN_PASSWORD).access
    alices = [open_socket(sockets, url, api.login("alice", "alice-password").access) for url in servers]
    bob = open_socket(sockets, servers[0], api.login("bob", "bob-password").access)
    before = snapshot()
    edit = {"interfacePermissions": ["GET:/api/v1/roles", "POST:/api/v1/roles"]}
    assert api.put(f"/api/v1/roles/{role_id('alice-role')}", token=admin, json_body=edit).status_code == 200
    for socket in alices:
        assert socket.next("permissions:changed")[1] == {}
    assert bob.quiet("permissions:changed", 1)
    assert snapshot() != before
