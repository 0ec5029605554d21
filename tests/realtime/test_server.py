"""The Socket.IO server with real clients over WebSocket, as a browser connects: who may
connect, client events, and revocations pushed across two server processes that share Redis
(their sweeps set to a minute, so only the push can end a socket quickly); then events from
the worker and from beat, on the tests' own server."""

import os
import queue
import signal
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
import socketio

from multidb.rbac import event_code, task_code
from multidb.security.tokens import TokenType, issue
from tests.conftest import ADMIN_PASSWORD
from tests.helpers import Api, create_user, get_user_id, invalidate_cache, role_id, set_user, snapshot
from tests.processes import Process, free_port, listening, start_beat, wait_for

pytestmark = pytest.mark.process

PUSHED_WITHIN = 1.0  # seconds from the API's answer to `session:revoked` on every server
TICK = {"text": "tick"}
ONCE = {"text": "once"}


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
    """A browser's Socket.IO connection that records every event it hears, with the time. The
    token goes in the `auth` payload, or (token None) in the `headers` the caller gives."""

    def __init__(
        self, url: str, token: str | None, agent: str = "Mozilla/5.0 tests", headers: dict[str, str] | None = None
    ) -> None:
        self.client = socketio.Client(reconnection=False)
        self.heard: queue.Queue[tuple[float, str, Any]] = queue.Queue()
        self.client.on("*", lambda event, data: self.heard.put((time.monotonic(), event, data)))
        auth = {"token": token} if token else None
        headers = {"User-Agent": agent, **(headers or {})}
        self.client.connect(url, auth=auth, headers=headers, transports=["websocket"], wait_timeout=10)

    def call(self, event: str, data: Any = None) -> Any:
        return self.client.call(event, data, timeout=10)

    def next_at(self, event: str, timeout: float = 20) -> tuple[float, Any]:
        """When the socket heard `event` next, and its data."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                at, name, data = self.heard.get(timeout=left)
            except queue.Empty:
                break
            if name == event:
                return at, data
        state = "connected" if self.client.connected else "disconnected"
        raise AssertionError(f"no {event!r} within {timeout}s (the socket is {state})")

    def next(self, event: str, timeout: float = 20) -> Any:
        return self.next_at(event, timeout)[1]

    def quiet(self, event: str, seconds: float) -> bool:
        try:
            self.next(event, timeout=seconds)
        except AssertionError:
            return True
        return False

    def forget(self) -> None:
        """Drop what it has heard so far."""
        while not self.heard.empty():
            self.heard.get()


@pytest.fixture
def sockets() -> Iterator[list[Socket]]:
    opened: list[Socket] = []
    yield opened
    for socket in opened:
        if socket.client.connected:
            socket.client.disconnect()


def open_socket(
    sockets: list[Socket],
    url: str,
    token: str | None,
    agent: str = "Mozilla/5.0 tests",
    headers: dict[str, str] | None = None,
) -> Socket:
    socket = Socket(url, token, agent, headers)
    sockets.append(socket)
    return socket


def refusal(url: str, token: str | None, headers: dict[str, str] | None = None) -> Any:
    """Why the server refused a connection (it must refuse): the reason alone; the error's
    fields beside it (`data`) are checked in test_first_hour.py."""
    client = socketio.Client(reconnection=False)
    reasons: list[Any] = []
    client.on("connect_error", reasons.append)
    auth = {"token": token} if token else None
    with pytest.raises(socketio.exceptions.ConnectionError):
        client.connect(url, auth=auth, headers=headers or {}, transports=["websocket"], wait_timeout=10)
    if reasons and isinstance(reasons[0], dict):
        assert reasons[0]["data"]["message"] == reasons[0]["message"]
        return {"message": reasons[0]["message"]}
    return reasons[0] if reasons else None


def envelope(ack: Any, code: int) -> Any:
    assert isinstance(ack, dict), ack
    assert set(ack) == {"code", "message", "ts", "data"} | ({"error"} if code >= 400 else set()), ack
    assert ack["code"] == code, ack
    return ack["data"]


# ---- connecting --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (None, "authentication required"),
        ("not-a-jwt", "invalid token"),
        ("eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.", "invalid token"),
    ],
)
def test_a_connection_without_a_valid_token_is_refused(realtime: str, token: str | None, reason: str) -> None:
    assert refusal(realtime, token) == {"message": reason}


def test_a_token_past_its_exp_cannot_connect_even_within_the_leeway(realtime: str) -> None:
    alice_id = create_user("alice", "alice-password")
    token, claims = issue(alice_id, TokenType.ACCESS, "alice-family", -2)  # JWT_LEEWAY (10 s) would pass it
    assert claims.exp < time.time()
    assert refusal(realtime, token) == {"message": "token expired"}


def test_a_disabled_user_cannot_connect(api: Api, realtime: str) -> None:
    user_id = create_user("alice", "alice-password")
    token = api.login("alice", "alice-password").access
    set_user(user_id, status=False)
    invalidate_cache(user_id)
    assert refusal(realtime, token) == {"message": "user is disabled"}


def test_a_page_from_another_origin_cannot_connect(api: Api, realtime: str, sockets: list[Socket]) -> None:
    token = api.login("admin", ADMIN_PASSWORD).access
    # Refused by Engine.IO's origin check, before Socket.IO looks at the token.
    assert refusal(realtime, token, headers={"Origin": "https://evil.example"}) == "Connection error"
    assert open_socket(sockets, realtime, token).client.connected  # the client sends its own URL as Origin


def test_the_header_works_too_and_ping_answers(api: Api, realtime: str, sockets: list[Socket]) -> None:
    token = api.login("admin", ADMIN_PASSWORD).access
    socket = open_socket(sockets, realtime, None, headers={"Authorization": f"Bearer {token}"})
    assert socket.call("ping") == "pong"


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
        assert socket.next("message") == {"from": get_user_id("alice"), "data": {"text": "hi Bob"}}
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
    assert carol.next("message") == {"from": get_user_id("admin"), "data": {"text": "from the admin"}}


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
    assert bob.next("message")["data"] == {"text": "hi"}
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
    at, data = socket.next_at("session:revoked", timeout=5)
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
    at, data = alice.next_at("session:revoked", timeout=5)
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
    assert refusal(servers[0], first.access) == {"message": "token revoked"}  # and it cannot come back


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
        assert socket.next("permissions:changed") == {}
    assert bob.quiet("permissions:changed", 1)
    assert snapshot() != before


# ---- events from the worker and beat, on the tests' own server ------------------------------


def admin_and_listening_alice(api: Api, realtime: str, sockets: list[Socket]) -> tuple[str, str, Socket]:
    """An admin's access token, and a plain user (alice) with a Socket.IO connection open."""
    admin = api.login("admin", ADMIN_PASSWORD).access
    alice_id = create_user("alice", "alice-password")
    return admin, alice_id, open_socket(sockets, realtime, api.login("alice", "alice-password").access)


def test_the_owner_hears_when_a_task_run_ends_and_nobody_else_does(
    api: Api, realtime: str, worker: Process, sockets: list[Socket]
) -> None:
    codes = ("POST:/api/v1/tasks/runs", task_code("multidb.add"))
    create_user("alice", "alice-password", codes=codes)
    create_user("bob", "bob-password", codes=codes)
    alice, bob = api.login("alice", "alice-password").access, api.login("bob", "bob-password").access
    alice_socket, bob_socket = open_socket(sockets, realtime, alice), open_socket(sockets, realtime, bob)
    queued = api.post("/api/v1/tasks/runs", token=alice, json_body={"task": "multidb.add", "args": [20, 22]})
    task_id = queued.json()["data"]["taskId"]
    finished = alice_socket.next("task:finished")
    assert finished == {"taskId": task_id, "task": "multidb.add", "state": "SUCCESS"}
    assert bob_socket.quiet("task:finished", 1)


def test_a_task_reaches_one_user_and_a_broadcast_everyone(
    api: Api, realtime: str, worker: Process, sockets: list[Socket]
) -> None:
    admin = api.login("admin", ADMIN_PASSWORD).access
    admin_id = get_user_id("admin")
    alice_id = create_user("alice", "alice-password")
    create_user("bob", "bob-password")
    alice = open_socket(sockets, realtime, api.login("alice", "alice-password").access)
    bob = open_socket(sockets, realtime, api.login("bob", "bob-password").access)
    notify = {"task": "multidb.notify", "args": [alice_id, "notification", {"text": "hi"}]}
    assert api.post("/api/v1/tasks/runs", token=admin, json_body=notify).status_code == 202
    # The payload names its sender: a page can tell a user's notice from the system's events.
    assert alice.next("notification") == {"from": admin_id, "data": {"text": "hi"}}
    assert bob.quiet("notification", 1)
    broadcast = {"task": "multidb.broadcast", "args": ["message", {"items": [1, 2]}]}
    assert api.post("/api/v1/tasks/runs", token=admin, json_body=broadcast).status_code == 202
    assert alice.next("message") == {"from": admin_id, "data": {"items": [1, 2]}}
    assert bob.next("message") == {"from": admin_id, "data": {"items": [1, 2]}}


def notify_each_second(api: Api, admin: str, user_id: str, name: str, data: Any, **fields: Any) -> dict[str, Any]:
    """Create a schedule that sends the user a `message` each second; its record."""
    body = {"name": name, "task": "multidb.notify", "args": [user_id, "message", data], "intervalSeconds": 1}
    response = api.post("/api/v1/tasks/schedules", token=admin, json_body=body | fields)
    assert response.status_code == 201, response.body
    return dict(response.json()["data"])


def test_beat_runs_a_schedule_made_through_the_api_without_a_restart(
    api: Api, realtime: str, worker: Process, sockets: list[Socket], tmp_path: Any
) -> None:
    admin, alice_id, alice = admin_and_listening_alice(api, realtime, sockets)
    beat = start_beat(tmp_path)
    try:
        wait_for(lambda: "schedules from the database" in beat.log() or not beat.alive(), what="beat to start")
        created = notify_each_second(api, admin, alice_id, "tick", TICK)
        assert alice.next("message")["data"] == TICK
        assert alice.next("message")["data"] == TICK

        def recorded() -> dict[str, Any] | None:
            row: dict[str, Any] = api.get(f"/api/v1/tasks/schedules/{created['id']}", token=admin).json()["data"]
            return row if row["totalRunCount"] >= 2 and row["lastRunAt"] else None

        wait_for(recorded, what="beat to record the runs")
        api.put(f"/api/v1/tasks/schedules/{created['id']}", token=admin, json_body={"enabled": False})
        time.sleep(1.5)  # one reload (0.5 s) and a run that was already in flight
        alice.forget()
        assert alice.quiet("message", 2.5)
    finally:
        assert beat.stop() == 0, beat.log()


def test_a_one_off_schedule_runs_once_and_disables_itself(
    api: Api, realtime: str, worker: Process, sockets: list[Socket], tmp_path: Any
) -> None:
    admin, alice_id, alice = admin_and_listening_alice(api, realtime, sockets)
    created = notify_each_second(api, admin, alice_id, "once", ONCE, oneOff=True)
    beat = start_beat(tmp_path)
    try:
        assert alice.next("message")["data"] == ONCE
        assert alice.quiet("message", 3)
        row = api.get(f"/api/v1/tasks/schedules/{created['id']}", token=admin).json()["data"]
        assert (row["enabled"], row["totalRunCount"]) == (False, 1)
    finally:
        assert beat.stop() == 0, beat.log()


def test_a_second_beat_stands_by_and_takes_over_when_the_first_dies(
    api: Api, realtime: str, worker: Process, sockets: list[Socket], tmp_path: Any
) -> None:
    admin, alice_id, alice = admin_and_listening_alice(api, realtime, sockets)
    notify_each_second(api, admin, alice_id, "tick", TICK)
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    first = start_beat(tmp_path / "first")
    second: Process | None = None
    try:
        wait_for(lambda: "sends the schedule" in first.log() or not first.alive(), what="the first beat to lead")
        second = start_beat(tmp_path / "second")
        wait_for(lambda: "stands by" in second.log() or not second.alive(), what="the second beat to stand by")
        assert alice.next("message")["data"] == TICK
        assert alice.next("message")["data"] == TICK
        assert "Sending due task" not in second.log()
        os.killpg(first.popen.pid, signal.SIGKILL)  # no clean stop: its lock has to expire
        first.popen.wait()
        wait_for(lambda: "sends the schedule" in second.log(), what="the second beat to take over")
        alice.forget()
        assert alice.next("message")["data"] == TICK
    finally:
        first.stop()
        stopped = second.stop() if second is not None else 0
    assert stopped == 0, "the second beat did not stop cleanly on SIGTERM"
