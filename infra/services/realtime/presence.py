"""Who is connected: each Socket.IO server records its sockets in Redis, so any server can
answer for a user across all of them.

    realtime:presence:<user_id>     hash: "<server>:<sid>" -> {"connectedAt", "userAgent"}
    realtime:server:<server>        present while that server lives (renewed by its sweep)

Both live a few sweep intervals: each sweep writes back the entries of the server's open
sockets and renews their users' hashes, so a socket stays listed however long it is held.
A server that dies leaves its entries behind; they are ignored, and dropped, once its key
has expired (and the hash goes with its TTL).
"""

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, cast

from multidb.keyspace import Keys

if TYPE_CHECKING:
    from collections.abc import Iterable

    from redis.asyncio import Redis


presence_key = Keys("realtime:presence")  # (user id): the user's open connections
server_key = Keys("realtime:server")  # (server): a Socket.IO instance's heartbeat


@dataclass(frozen=True, slots=True)
class Connection:
    server: str
    sid: str
    connected_at: datetime
    user_agent: str


def entry(user_agent: str) -> str:
    """A connection's presence entry, made when it connects."""
    return json.dumps({"connectedAt": datetime.now(UTC).isoformat(), "userAgent": user_agent[:256]})


async def record(redis: "Redis", user_id: str, server: str, sid: str, entry: str, ttl: int) -> None:
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(presence_key(user_id), f"{server}:{sid}", entry)
        pipe.expire(presence_key(user_id), ttl)
        await pipe.execute()


async def renew(redis: "Redis", server: str, held: "Iterable[tuple[str, str, str]]", ttl: int) -> None:
    """This server still runs, with these (sid, user id, entry) open: one round trip."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.set(server_key(server), "1", ex=ttl)
        users = set()
        for sid, user_id, entry in held:
            pipe.hset(presence_key(user_id), f"{server}:{sid}", entry)
            users.add(user_id)
        for user_id in users:
            pipe.expire(presence_key(user_id), ttl)
        await pipe.execute()


async def forget(redis: "Redis", user_id: str, server: str, sid: str) -> None:
    await redis.hdel(presence_key(user_id), f"{server}:{sid}")  # type: ignore[misc]


async def alive(redis: "Redis", server: str, ttl: int) -> None:
    """This server still runs (its sweep calls this)."""
    await redis.set(server_key(server), "1", ex=ttl)


async def connections(redis: "Redis", user_id: str) -> list[Connection]:
    """The user's open sockets on live servers, oldest first; entries of dead servers go."""
    entries = cast(dict[str, str], await redis.hgetall(presence_key(user_id)))  # type: ignore[misc]
    if not entries:
        return []
    parsed = [(field.split(":", 1), json.loads(value), field) for field, value in entries.items()]
    servers = sorted({server for (server, _), _, _ in parsed})
    living = {server for server, up in zip(servers, await redis.mget(*map(server_key, servers)), strict=True) if up}
    dead = [field for (server, _), _, field in parsed if server not in living]
    if dead:
        await redis.hdel(presence_key(user_id), *dead)  # type: ignore[misc]
    found = [
        Connection(server, sid, datetime.fromisoformat(entry["connectedAt"]), entry["userAgent"])
        for (server, sid), entry, _ in parsed
        if server in living
    ]
    return sorted(found, key=lambda c: c.connected_at)
