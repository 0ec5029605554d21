"""Socket.IO: a real client against the real server, with events from the worker and from beat."""

import os
import queue
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest
import socketio

from multidb.rbac import task_code
from multidb.security.tokens import TokenType, issue
from tests.conftest import ADMIN_PASSWORD
from tests.helpers import Api, create_user, get_user_id, invalidate_cache, set_user
from tests.processes import Process, start_beat, wait_for

pytestmark = pytest.mark.process

TICK = {"text": "tick"}
ONCE = {"text": "once"}


class Listener:
    """A Socket.IO client over WebSocket, as a browser connects, that records what it hears."""

    def __init__(self, url: str, token: str | None = None, headers: dict[str, str] | None = None) -> None:
        self.client = socketio.Client(reconnection=False)
        self.heard: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.refusal: Any = None
        self.client.on("*", lambda event, data: self.heard.put((event, data)))
        self.client.on("connect_error", self._refused)
        auth = {"token": token} if token else None
        self.client.connect(url, auth=auth, headers=headers or {}, transports=["websocket"], wait_timeout=10)

    def _refused(self, data: Any) -> None:
        self.refusal = data

    def next(self, event: str, timeout: float = 20) -> Any:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                name, data = self.heard.get(timeout=left)
            except queue.Empty:
                break
            if name == event:
                return data
        state = "connected" if self.client.connected else "disconnected"
        raise AssertionError(f"no {event!r} within {timeout}s (the socket is {state})")

    def silent(self, event: str, seconds: float) -> bool:
        try:
            self.next(event, timeout=seconds)
        except AssertionError:
            return True
        return False

    def close(self) -> None:
        self.client.disconnect()


@pytest.fixture
def listeners() -> Iterator[list[Listener]]:
    opened: list[Listener] = []
    yield opened
    for listener in opened:
        listener.close()


def connect(listeners: list[Listener], url: str, token: str | None = None, **kwargs: Any) -> Listener:
    listener = Listener(url, token, **kwargs)
    listeners.append(listener)
    return listener


def admin_and_listening_alice(api: Api, realtime: str, listeners: list[Listener]) -> tuple[str, str, Listener]:
    """An admin's access token, and a plain user (alice) with a Socket.IO connection open."""
    admin = api.login("admin", ADMIN_PASSWORD).access
    alice_id = create_user("alice", "alice-password")
    return admin, alice_id, connect(listeners, realtime, api.login("alice", "alice-password").access)


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


def test_a_page_from_another_origin_cannot_connect(api: Api, realtime: str, listeners: list[Listener]) -> None:
    token = api.login("admin", ADMIN_PASSWORD).access
    # Refused by Engine.IO's origin check, before Socket.IO looks at the token.
    assert refusal(realtime, token, headers={"Origin": "https://evil.example"}) == "Connection error"
    assert connect(listeners, realtime, token).client.connected  # the client sends its own URL as Origin


def test_the_header_works_too_and_ping_answers(api: Api, realtime: str, listeners: list[Listener]) -> None:
    token = api.login("admin", ADMIN_PASSWORD).access
    listener = connect(listeners, realtime, headers={"Authorization": f"Bearer {token}"})
    assert listener.client.call("ping", timeout=10) == "pong"


def test_the_owner_hears_when_a_task_run_ends_and_nobody_else_does(
    api: Api, realtime: str, worker: Process, listeners: list[Listener]
) -> None:
    codes = ("POST:/api/v1/tasks/runs", task_code("multidb.add"))
    create_user("alice", "alice-password", codes=codes)
    create_user("bob", "bob-password", codes=codes)
    alice, bob = api.login("alice", "alice-password").access, api.login("bob", "bob-password").access
    alice_socket, bob_socket = connect(listeners, realtime, alice), connect(listeners, realtime, bob)
    queued = api.post("/api/v1/tasks/runs", token=alice, json_body={"task": "multidb.add", "args": [20, 22]})
    task_id = queued.json()["data"]["taskId"]
    finished = alice_socket.next("task:finished")
    assert finished == {"taskId": task_id, "task": "multidb.add", "state": "SUCCESS"}
    assert bob_socket.silent("task:finished", 1)


def test_a_task_reaches_one_user_and_a_broadcast_everyone(
    api: Api, realtime: str, worker: Process, listeners: list[Listener]
) -> None:
    admin = api.login("admin", ADMIN_PASSWORD).access
    admin_id = get_user_id("admin")
    alice_id = create_user("alice", "alice-password")
    create_user("bob", "bob-password")
    alice = connect(listeners, realtime, api.login("alice", "alice-password").access)
    bob = connect(listeners, realtime, api.login("bob", "bob-password").access)
    notify = {"task": "multidb.notify", "args": [alice_id, "notification", {"text": "hi"}]}
    assert api.post("/api/v1/tasks/runs", token=admin, json_body=notify).status_code == 202
    # The payload names its sender: a page can tell a user's notice from the system's events.
    assert alice.next("notification") == {"from": admin_id, "data": {"text": "hi"}}
    assert bob.silent("notification", 1)
    broadcast = {"task": "multidb.broadcast", "args": ["message", {"items": [1, 2]}]}
    assert api.post("/api/v1/tasks/runs", token=admin, json_body=broadcast).status_code == 202
    assert alice.next("message") == {"from": admin_id, "data": {"items": [1, 2]}}
    assert bob.next("message") == {"from": admin_id, "data": {"items": [1, 2]}}


def test_logging_out_ends_the_socket_within_a_sweep(api: Api, realtime: str, listeners: list[Listener]) -> None:
    create_user("alice", "alice-password")
    tokens = api.login("alice", "alice-password")
    listener = connect(listeners, realtime, tokens.access)
    assert listener.client.connected
    assert api.post("/api/v1/auth/logout", token=tokens.access).status_code == 200
    wait_for(lambda: not listener.client.connected, timeout=10, what="the server to end the socket")
    assert refusal(realtime, tokens.access) == {"message": "token revoked"}


def test_beat_runs_a_schedule_made_through_the_api_without_a_restart(
    api: Api, realtime: str, worker: Process, listeners: list[Listener], tmp_path: Any
) -> None:
    admin, alice_id, alice = admin_and_listening_alice(api, realtime, listeners)
    beat = start_beat(tmp_path)
    try:
        wait_for(lambda: "schedules from the database" in beat.log() or not beat.alive(), what="beat to start")
        body = {"name": "tick", "task": "multidb.notify", "args": [alice_id, "message", TICK], "intervalSeconds": 1}
        created = api.post("/api/v1/tasks/schedules", token=admin, json_body=body).json()["data"]
        assert alice.next("message")["data"] == TICK
        assert alice.next("message")["data"] == TICK

        def recorded() -> dict[str, Any] | None:
            row: dict[str, Any] = api.get(f"/api/v1/tasks/schedules/{created['id']}", token=admin).json()["data"]
            return row if row["totalRunCount"] >= 2 and row["lastRunAt"] else None

        wait_for(recorded, what="beat to record the runs")
        api.put(f"/api/v1/tasks/schedules/{created['id']}", token=admin, json_body={"enabled": False})
        time.sleep(1.5)  # one reload (0.5 s) and a run that was already in flight
        while not alice.heard.empty():
            alice.heard.get()
        assert alice.silent("message", 2.5)
    finally:
        assert beat.stop() == 0, beat.log()


def test_a_one_off_schedule_runs_once_and_disables_itself(
    api: Api, realtime: str, worker: Process, listeners: list[Listener], tmp_path: Any
) -> None:
    admin, alice_id, alice = admin_and_listening_alice(api, realtime, listeners)
    body = {"name": "once", "task": "multidb.notify", "args": [alice_id, "message", ONCE], "intervalSeconds": 1}
    body["oneOff"] = True
    created = api.post("/api/v1/tasks/schedules", token=admin, json_body=body).json()["data"]
    beat = start_beat(tmp_path)
    try:
        assert alice.next("message")["data"] == ONCE
        assert alice.silent("message", 3)
        row = api.get(f"/api/v1/tasks/schedules/{created['id']}", token=admin).json()["data"]
        assert (row["enabled"], row["totalRunCount"]) == (False, 1)
    finally:
        assert beat.stop() == 0, beat.log()


def test_a_second_beat_stands_by_and_takes_over_when_the_first_dies(
    api: Api, realtime: str, worker: Process, listeners: list[Listener], tmp_path: Any
) -> None:
    admin, alice_id, alice = admin_and_listening_alice(api, realtime, listeners)
    body = {"name": "tick", "task": "multidb.notify", "args": [alice_id, "message", TICK], "intervalSeconds": 1}
    assert api.post("/api/v1/tasks/schedules", token=admin, json_body=body).status_code == 201
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
        while not alice.heard.empty():
            alice.heard.get()
        assert alice.next("message")["data"] == TICK
    finally:
        first.stop()
        stopped = second.stop() if second is not None else 0
    assert stopped == 0, "the second beat did not stop cleanly on SIGTERM"
