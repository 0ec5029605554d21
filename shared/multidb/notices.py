"""What functions tell every Socket.IO server through plain Redis pub/sub: sessions that
ended, and users whose grants changed. (python-socketio is not in the Lambda layer, and
needs not be: each server subscribes to this channel and acts on its own connections.)

    {"type": "revoked", "user": <id>, "family": <family> | null, "keep": <family> | null, "reason": …}
    {"type": "grants", "users": [<id>, …]}

A revocation is published by the same Lua script that revokes, so a server hears of it
exactly when it takes effect.
"""

import json
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from redis.asyncio import Redis

CHANNEL = "multidb:notices"


class Reason(StrEnum):
    """Why a session ended, as `session:revoked` tells the page."""

    LOGOUT = "logout"
    REUSE = "refresh_token_reused"
    PASSWORD_CHANGED = "password_changed"
    PASSWORD_RESET = "password_reset"
    DISABLED = "user_disabled"
    DELETED = "user_deleted"


def revoked(user_id: str, reason: Reason, *, family: str | None = None, keep: str | None = None) -> str:
    """One session (`family`), or every session of the user but `keep`."""
    return json.dumps({"type": "revoked", "user": user_id, "family": family, "keep": keep, "reason": reason.value})


async def grants_changed(redis: "Redis", *user_ids: str) -> None:
    """Tell the users' open pages to reload what depends on their permissions."""
    if user_ids:
        await redis.publish(CHANNEL, json.dumps({"type": "grants", "users": sorted(set(user_ids))}))
