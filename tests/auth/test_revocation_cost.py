"""Logging out, refreshing and ending sessions touch only the caller's own Redis keys: no SCAN
or KEYS, and the same commands whether Redis holds nothing else or 100,000 other keys.

Counted on the Redis server itself (MONITOR), so whatever client code runs, what reaches
Redis is what is checked; only this process's connections count (servers other tests left
running, a Socket.IO sweep say, share the database). The embedded Redis has no MONITOR: this
runs in the first pass, on the real server."""

import threading
import uuid

import pytest
import redis

from tests.conftest import REDIS_DB, REDIS_URL, USE_REDIS
from tests.helpers import Api, create_user, get_user_id
from tests.processes import tcp_sockets

pytestmark = [
    pytest.mark.first_pass_only("MONITOR needs the real Redis server"),
    pytest.mark.skipif(not USE_REDIS, reason="MONITOR needs the real Redis server"),
]

OTHER_KEYS = 100_000
STOP = "monitor-stop"


def local_ports() -> set[str]:
    """The local TCP ports of this process's open sockets (its Redis connections among them)."""
    return {str(int(fields[1].rsplit(":", 1)[1], 16)) for fields in tcp_sockets()}


class Monitor:
    """Every command this process has the server run on the test database while the block
    runs, with what the scripts it sends run (Redis runs a script whole, so a script's own
    commands follow its EVAL with nothing of other clients between)."""

    def __init__(self) -> None:
        self.client = redis.Redis.from_url(REDIS_URL)
        self.seen: list[tuple[str, list[str]]] = []  # (client port, or "lua"; words)
        self.ours: set[str] = set()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._listen, daemon=True)

    def _listen(self) -> None:
        with self.client.monitor() as monitor:
            self.ready.set()
            for seen in monitor.listen():
                if seen.get("db") != REDIS_DB:
                    continue
                words = seen["command"].split()
                if words[:2] == ["ECHO", STOP]:
                    return
                self.seen.append(("lua" if seen["client_type"] == "lua" else seen["client_port"], words))

    @property
    def commands(self) -> list[list[str]]:
        kept: list[list[str]] = []
        sender_is_ours = False
        for client, words in self.seen:
            if client != "lua":
                sender_is_ours = client in self.ours
            if sender_is_ours:
                kept.append(words)
        return kept

    def __enter__(self) -> "Monitor":
        self.thread.start()
        assert self.ready.wait(5)
        return self

    def __exit__(self, *exc: object) -> None:
        self.ours = local_ports()  # while the connections that sent the commands are open
        self.client.echo(STOP)
        self.thread.join(10)
        assert not self.thread.is_alive(), "MONITOR did not see the stop marker"


def fill(client: redis.Redis, count: int) -> None:
    """Other users' sessions and unrelated keys, `count` in all."""
    for start in range(0, count, 10_000):
        batch: dict[str, str] = {}
        for n in range(start, min(start + 10_000, count)):
            other = uuid.UUID(int=n)
            batch[f"auth:refresh:{other}:{n:032x}" if n % 2 else f"cache:item:{n}"] = "x"
        client.mset(batch)


# What a client sends when it opens a connection (or checks an idle one), whichever run that falls in.
CONNECTION_SETUP = {"SELECT", "CLIENT", "HELLO", "PING"}


def act(api: Api, action: str) -> list[list[str]]:
    """Log alice in (three other sessions of hers open too), then do `action` while MONITOR
    watches; what Redis ran. Her earlier sessions are ended first, so each run starts alike."""
    from multidb import runtime
    from multidb.notices import Reason
    from multidb.redis import get_redis
    from multidb.security.sessions import revoke_user_sessions

    runtime.run(revoke_user_sessions(get_redis(), get_user_id("alice"), Reason.LOGOUT))
    for _ in range(3):
        api.login("alice", "alice-password")
    tokens = api.login("alice", "alice-password")
    with Monitor() as monitor:
        if action == "logout":
            response = api.post("/api/v1/auth/logout", token=tokens.access)
        elif action == "refresh":
            response = api.post("/api/v1/auth/token/refresh", headers={"x-refresh-token": tokens.refresh})
        else:  # a password change ends every other session of hers
            body = {"oldPassword": api.encrypt("alice-password"), "newPassword": api.encrypt("alice-password")}
            response = api.put("/api/v1/auth/user/password", token=tokens.access, json_body=body)
    assert response.status_code == 200, response.body
    return monitor.commands


@pytest.mark.parametrize("action", ["logout", "refresh", "password change"])
def test_ending_or_renewing_a_session_touches_only_the_callers_keys_however_many_others_there_are(
    api: Api, action: str
) -> None:
    create_user("alice", "alice-password")
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    quiet = act(api, action)
    fill(client, OTHER_KEYS)
    assert client.dbsize() >= OTHER_KEYS
    busy = act(api, action)

    names = [words[0].upper() for words in busy if words[0].upper() not in CONNECTION_SETUP]
    assert "EVAL" in names or "EVALSHA" in names, names  # the session script ran, and was seen
    assert not {"SCAN", "KEYS", "FLUSHDB", "RANDOMKEY"} & set(names), names
    # the same commands, whatever else Redis holds: the cost does not grow with other keys
    assert names == [words[0].upper() for words in quiet if words[0].upper() not in CONNECTION_SETUP]
    touched = " ".join(" ".join(words[1:]) for words in busy)
    assert "cache:item:" not in touched
    others = {f"auth:refresh:{uuid.UUID(int=n)}" for n in range(1, 200, 2)}
    assert not any(other in touched for other in others)
    assert get_user_id("alice") in touched  # the commands are about her


def test_no_request_path_asks_redis_to_walk_its_keyspace() -> None:
    """SCAN and KEYS cost what the whole keyspace costs: none in the layer, the functions or
    the Socket.IO server (tests and local tooling may)."""
    import re

    from tests.helpers import ROOT

    # a client call (`.scan_iter(match=…)`, `.keys("…")`) or the command by name ("SCAN" in Lua or execute_command)
    walking = re.compile(r"\.(scan_iter|scan|keys)\(\s*(match|pattern|[\"'])|[\"'](SCAN|KEYS)[\"' ]")
    sources = [
        *(ROOT / "shared" / "multidb").rglob("*.py"),
        *(ROOT / "functions").glob("*/*_fn/*.py"),
        *(ROOT / "infra" / "services").rglob("*.py"),
    ]
    assert len(sources) > 40
    found = [
        f"{p.relative_to(ROOT)}:{n}"
        for p in sources
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if walking.search(line)
    ]
    assert found == []
