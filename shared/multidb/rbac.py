"""Role-based access: generated permission codes, per-user grants cached in Redis.

A permission code is `METHOD:/api/v1/path/{param}`, made from a route's method and path
template; an API Gateway routeKey (`GET /api/v1/roles/{role_id}`) maps to the same code.
`auth:permission:<user_id>` caches what a user may do until the access token would
expire, and `auth:profile:v<n>:<user_id>` what `GET /auth/user/info` answers; anything that
changes a user or their roles deletes both (see `invalidate`).
"""

import json
import os
import re
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from typing import TYPE_CHECKING, Any, cast

from .keyspace import Keys
from .settings import get_settings

if TYPE_CHECKING:
    from collections.abc import Iterable

    from redis.asyncio import Redis
    from sqlmodel.ext.asyncio.session import AsyncSession

    from .models import Role, User


class Access(StrEnum):
    PUBLIC = "public"  # no token at all
    AUTHENTICATED = "authenticated"  # any active user with a valid access token
    PERMISSION = "permission"  # the route's permission code must be granted


def permission_code(method: str, path: str) -> str:
    return f"{method.upper()}:{path}"


def code_from_route_key(route_key: str) -> str:
    method, _, path = route_key.partition(" ")
    return permission_code(method, path)


PROFILE_VERSION = 1  # bumped when the profile's shape changes: old entries are then never read

permission_key = Keys("auth:permission")  # (user id): the codes the user's roles grant
profile_key = Keys(f"auth:profile:v{PROFILE_VERSION}")  # (user id): what user/info answers
version_key = Keys("auth:permission-version")  # (user id): bumped when either goes stale


def task_code(task: str) -> str:
    """The code that lets a caller run or schedule one task (beside the route's own code)."""
    return permission_code("TASK", task)


def event_code(event: str) -> str:
    """The code that lets a caller send one Socket.IO client event."""
    return permission_code("SOCKET", event)


@lru_cache
def _catalogue_file() -> dict[str, list[dict[str, Any]]]:
    # Beside this module: the layer and the venv hold the package unzipped, and
    # importlib.resources would cost the authorizer's cold start ~17 ms of imports.
    with open(os.path.join(os.path.dirname(__file__), "catalogue.json"), encoding="utf-8") as file:
        data: dict[str, list[dict[str, Any]]] = json.load(file)
    return data


@lru_cache
def catalogue() -> dict[str, dict[str, Any]]:
    """The generated route catalogue shipped with this package, by permission code."""
    return {entry["code"]: entry for entry in _catalogue_file()["routes"]}


@lru_cache
def grantable() -> dict[str, dict[str, Any]]:
    """Every code a role may grant: the routes', the tasks' (`TASK:<name>`) and the Socket.IO
    client events' (`SOCKET:<event>`)."""
    data = _catalogue_file()
    entries = [*data["routes"], *data.get("tasks", []), *data.get("events", [])]
    return {entry["code"]: entry for entry in entries}


ROLE_FIELDS = ("interface_permissions", "button_permissions", "router_permissions")
# How a button or router code counts among the codes a user holds (beside the interface codes,
# which count as they are): prefixed, so that it can never be mistaken for a route's code.
_HELD_AS = {"button_permissions": "BUTTON", "router_permissions": "ROUTER"}


@lru_cache
def declared(kind: str) -> frozenset[str]:
    """The codes a role's `kind` of permissions may name: interface permissions the routes',
    tasks' and events' (`grantable`), router and button permissions the console's pages and
    buttons the catalogue declares."""
    if kind == "interface_permissions":
        return frozenset(grantable())
    section = {"button_permissions": "buttons", "router_permissions": "routers"}[kind]
    return frozenset(entry["code"] for entry in _catalogue_file().get(section, []))


@lru_cache
def listed() -> dict[str, dict[str, Any]]:
    """Every entry of the catalogue, routes, tasks, events, pages and buttons: what initdb
    syncs into the table `GET /router/backend` serves."""
    data = _catalogue_file()
    return {entry["code"]: entry for section in data.values() for entry in section}


def held(kind: str, codes: "Iterable[str]") -> frozenset[str]:
    """Codes of one kind as they count among what a user holds (`granted_all`)."""
    prefix = _HELD_AS.get(kind)
    return frozenset(codes if prefix is None else (permission_code(prefix, code) for code in codes))


# Resetting a password hands over the account (its files, schedules, sessions): whoever holds
# this code is managed by admins only (`authz.check_may_manage`), or resetters would take each
# other over, and one stolen would take them all.
PASSWORD_RESET = permission_code("PUT", "/api/v1/users/{user_id}/password")

# Role codes a client may take for "administrator" (user/info lists a user's role codes): only
# admins create, rename to, change, delete or assign such roles. Compared without case or separators.
RESERVED_ROLE_CODES = frozenset(
    {"admin", "administrator", "administrators", "root", "superadmin", "superuser", "sysadmin"}
)


def is_reserved(role_code: str) -> bool:
    return re.sub(r"[_:.-]", "", role_code.lower()) in RESERVED_ROLE_CODES


def access_of(code: str) -> Access:
    """How a route is guarded; a code missing from the catalogue needs an explicit grant."""
    entry = catalogue().get(code)
    return Access(entry["access"]) if entry else Access.PERMISSION


@dataclass(frozen=True, slots=True)
class Grants:
    user_id: str
    name: str
    active: bool
    admin: bool
    # What the user's enabled roles grant (`granted_all`): route, task and event codes, and
    # their pages' and buttons' as ROUTER:<code> and BUTTON:<code>.
    codes: frozenset[str] = field(default_factory=frozenset)

    def allows(self, code: str) -> bool:
        if not self.active:
            return False
        match access_of(code):
            case Access.PUBLIC | Access.AUTHENTICATED:
                return True
            case Access.PERMISSION:
                return self.admin or code in self.codes

    def to_json(self) -> str:
        return json.dumps(
            {
                "user_id": self.user_id,
                "name": self.name,
                "active": self.active,
                "admin": self.admin,
                "codes": sorted(self.codes),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> "Grants":
        """The grants a cached text holds. A warm container reads the same few texts again
        and again, and grants are immutable: each text is parsed once (the last
        MAX_PARSED kept), a repeat costs a dictionary lookup."""
        grants = _parsed.get(text)
        if grants is None:
            data = json.loads(text)
            active, admin, codes = data["active"], data["admin"], data["codes"]
            if not (isinstance(active, bool) and isinstance(admin, bool) and isinstance(codes, list)):
                raise ValueError("cached grants of the wrong shape")
            grants = cls(str(data["user_id"]), str(data["name"]), active, admin, frozenset(codes))
            if len(_parsed) >= MAX_PARSED:
                _parsed.pop(next(iter(_parsed)))
            _parsed[text] = grants
        return grants


MAX_PARSED = 256
_parsed: dict[str, Grants] = {}


def granted(
    roles: "Iterable[Role]", kind: str = "interface_permissions", *, disabled_too: bool = False
) -> frozenset[str]:
    """The codes these roles grant: their enabled ones' (what a user may do now), or with
    `disabled_too` every one's (what enabling them would hand over). `kind` picks interface,
    button or router permissions."""
    return frozenset(code for role in roles if role.status or disabled_too for code in getattr(role, kind))


def granted_all(roles: "Iterable[Role]", *, disabled_too: bool = False) -> frozenset[str]:
    """Every code these roles hand out, of all three kinds, as one set: interface codes as
    they are, button and router codes as `BUTTON:<code>` and `ROUTER:<code>`. What a user holds
    (the grants' codes) and what the grant rule compares with it."""
    roles = list(roles)
    return frozenset().union(*(held(kind, granted(roles, kind, disabled_too=disabled_too)) for kind in ROLE_FIELDS))


async def load_views(session: "AsyncSession", user_id: str) -> "tuple[Grants, dict[str, Any]] | None":
    """Read a user once (one statement) for both cached views of them: their grants, from
    which disabled roles grant nothing, and their profile."""
    # SQLAlchemy is imported here, on a cache miss, not with the authorizer (~300 ms cold).
    from .repository import UserRepository

    user = await UserRepository(session).get(user_id)
    if user is None:
        return None
    return Grants(str(user.id), user.name, user.status, user.is_admin, granted_all(user.roles)), profile_of(user)


def profile_of(user: "User") -> dict[str, Any]:
    """Who a user is and what their enabled roles grant: `GET /auth/user/info`'s answer."""
    return {
        "id": str(user.id),
        "name": user.name,
        "email": user.email,
        "username": user.username,
        "status": user.status,
        "is_admin": user.is_admin,
        "roles": [role.code for role in user.roles if role.status],
        "permissions": {
            "interface": sorted(granted(user.roles)),
            "button": sorted(granted(user.roles, "button_permissions")),
            "router": sorted(granted(user.roles, "router_permissions")),
        },
    }


async def cached_profile(redis: "Redis", user_id: str, read: str | None = None) -> dict[str, Any] | None:
    """A user's profile from the cache, read from the database (one statement) on a miss and
    cached like the grants: only if no invalidation happened meanwhile. `read`: the cached
    text, read already with the caller check (`authz.check_reading`)."""
    if read is not None:
        return cast(dict[str, Any], json.loads(read))
    cached, version = await redis.mget(profile_key(user_id), version_key(user_id))
    if cached is not None:
        return cast(dict[str, Any], json.loads(cached))
    views = await _read_and_cache(redis, user_id, cast(str | None, version))
    return None if views is None else views[1]


async def cached_grants(
    redis: "Redis", user_id: str, cached: str | None = None, version: str | None = None
) -> Grants | None:
    """Grants from the cache, rebuilt from the database on a miss.

    `version` is the user's invalidation counter as read with the cache miss: the rebuilt
    grants are cached only if no invalidation happened meanwhile, so a change committed
    while we read the old rows cannot be papered over until the TTL.
    """
    if cached is not None:
        return Grants.from_json(cached)
    views = await _read_and_cache(redis, user_id, version)
    return None if views is None else views[0]


async def _read_and_cache(
    redis: "Redis", user_id: str, seen_version: str | None
) -> "tuple[Grants, dict[str, Any]] | None":
    """On a miss of either view, read the user once and cache both (a first request's caller
    check then leaves `GET /auth/user/info` nothing to read)."""
    from .db import read_scope

    async with read_scope() as session:
        views = await load_views(session, user_id)
    if views is not None:
        grants, profile = views
        await _store(
            redis,
            user_id,
            {permission_key(user_id): grants.to_json(), profile_key(user_id): json.dumps(profile)},
            seen_version,
        )
    return views


async def _store(redis: "Redis", user_id: str, values: dict[str, str], seen_version: str | None) -> None:
    """Cache what was read for a user, unless an invalidation happened since `seen_version`."""
    from redis.exceptions import WatchError

    async with redis.pipeline(transaction=True) as pipe:
        try:
            await pipe.watch(version_key(user_id))
            if await pipe.get(version_key(user_id)) != seen_version:
                return  # invalidated while we read the database: what we read may be stale
            pipe.multi()  # type: ignore[no-untyped-call]
            ttl = get_settings().access_token_ttl
            for key, value in values.items():
                pipe.set(key, value, ex=ttl)
            await pipe.execute()
        except WatchError:
            return


async def invalidate(redis: "Redis", *user_ids: str) -> None:
    """Forget cached grants and profiles so the very next request sees the database."""
    if not user_ids:
        return
    ttl = get_settings().access_token_ttl
    async with redis.pipeline(transaction=True) as pipe:
        for user_id in user_ids:
            pipe.incr(version_key(user_id))
            pipe.expire(version_key(user_id), ttl)
        pipe.delete(*(key for uid in user_ids for key in (permission_key(uid), profile_key(uid))))
        await pipe.execute()
