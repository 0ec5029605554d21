"""What tests share: a client that goes through the template's gateway path, users, state."""

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlmodel import col, delete, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from infra.local.gateway.invoke import GatewayResponse, LocalGateway
from multidb import runtime
from multidb.db import get_engine
from multidb.models import PeriodicTask, Role, User, UserRole
from multidb.redis import get_redis
from multidb.repository import ScheduleRepository
from multidb.security.passwords import hash_password

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "events"
UA = "Mozilla/5.0 (X11; Linux x86_64) multidb-tests/1.0"


def load_event(name: str) -> dict[str, Any]:
    """A real API Gateway event from events/, e.g. `auth/login`."""
    return json.loads((EVENTS / f"{name}.json").read_text())


@dataclass
class Tokens:
    access: str
    refresh: str


class Api:
    """Talks to the functions the way a frontend does through API Gateway."""

    def __init__(self, gateway: LocalGateway) -> None:
        self.gateway = gateway

    def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        json_body: Any = None,
        body: str | None = None,
        headers: dict[str, str] | None = None,
        user_agent: str | None = UA,
        source_ip: str = "127.0.0.1",
    ) -> GatewayResponse:
        sent = {"accept": "application/json"}
        if user_agent is not None:
            sent["user-agent"] = user_agent
        if token is not None:
            sent["authorization"] = f"Bearer {token}"
        if json_body is not None:
            sent["content-type"] = "application/json"
            body = json.dumps(json_body)
        sent.update(headers or {})
        path, _, query = path.partition("?")
        return self.gateway.request(method, path, headers=sent, body=body, query=query, source_ip=source_ip)

    def get(self, path: str, **kwargs: Any) -> GatewayResponse:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> GatewayResponse:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> GatewayResponse:
        return self.request("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> GatewayResponse:
        return self.request("DELETE", path, **kwargs)

    def public_key(self) -> str:
        return str(self.get("/api/v1/auth/keys/public").json()["data"]["publicKey"])

    def encrypt(self, password: str) -> str:
        from multidb.security.login_crypto import encrypt_password

        return encrypt_password(password, self.public_key())

    def login(self, username: str, password: str, user_agent: str = UA) -> Tokens:
        response = self.post(
            "/api/v1/auth/login",
            json_body={"username": username, "password": self.encrypt(password)},
            user_agent=user_agent,
        )
        assert response.status_code == 200, response.body
        data = response.json()["data"]
        return Tokens(data["accessToken"], data["refreshToken"])


async def _reset() -> None:
    await get_redis().flushdb()
    async with AsyncSession(get_engine()) as session:
        await session.exec(delete(UserRole))  # type: ignore[call-overload]
        await session.exec(delete(User).where(col(User.username) != "admin"))  # type: ignore[call-overload]
        await session.exec(delete(Role))  # type: ignore[call-overload]
        await session.exec(delete(PeriodicTask))  # type: ignore[call-overload]
        await session.exec(update(User).values(status=True, is_admin=True))  # type: ignore[call-overload]
        await ScheduleRepository(session).mark_changed()  # a running beat forgets the schedules
        await session.commit()


def reset_state() -> None:
    runtime.run(_reset())


async def _create_user(
    username: str, password: str, codes: tuple[str, ...], is_admin: bool, status: bool, role_status: bool
) -> str:
    async with AsyncSession(get_engine(), expire_on_commit=False) as session:
        user = User(
            name=username.title(),
            email=f"{username}@example.com",
            username=username,
            password_hash=hash_password(password),
            is_admin=is_admin,
            status=status,
        )
        if codes:
            user.roles = [
                Role(
                    name=f"{username} role",
                    code=f"{username}-role",
                    status=role_status,
                    interface_permissions=list(codes),
                )
            ]
        session.add(user)
        await session.commit()
        return str(user.id)


def new_user(api: Api, password: str = "new-password", **fields: Any) -> dict[str, Any]:
    """A `POST /users` body for the user "newbie", with these fields added or replaced."""
    return {"name": "New", "email": "new@example.com", "username": "newbie", "password": api.encrypt(password)} | fields


def create_user(
    username: str,
    password: str = "user-password",
    *,
    codes: tuple[str, ...] = (),
    is_admin: bool = False,
    status: bool = True,
    role_status: bool = True,
) -> str:
    """A user with one role granting `codes`; returns the user id."""
    return runtime.run(_create_user(username, password, codes, is_admin, status, role_status))


async def _set_user(user_id: str, **values: Any) -> None:
    import uuid

    async with AsyncSession(get_engine()) as session:
        await session.exec(update(User).where(col(User.id) == uuid.UUID(user_id)).values(**values))  # type: ignore[call-overload]
        await session.commit()


def set_user(user_id: str, **values: Any) -> None:
    """Change a user row directly, as an admin's write would (the cache is the caller's job)."""
    runtime.run(_set_user(user_id, **values))


async def _snapshot() -> dict[str, Any]:
    redis = get_redis()
    keys = sorted([key async for key in redis.scan_iter(match="*")])
    # auth:permission:* is a cache: rebuilding it on a read changes no stored data; and a
    # running Socket.IO server renews realtime:server:<id> on its own schedule.
    values = {
        key: await redis.get(key)
        for key in keys
        if await redis.type(key) == "string"
        and not key.startswith(("auth:permission:", "auth:profile:", "realtime:server:"))
    }
    async with AsyncSession(get_engine()) as session:
        users = (await session.exec(select(User.username, User.password_hash, User.status, User.is_admin))).all()  # type: ignore[call-overload]
        roles = (await session.exec(select(Role.code, Role.status))).all()  # type: ignore[call-overload]
        links = (await session.exec(text("SELECT count(*) FROM user_roles"))).one()  # type: ignore[call-overload]
        schedules = (await session.exec(select(PeriodicTask))).all()
    return {
        "redis": values,
        "users": sorted(map(tuple, users)),
        "roles": sorted(map(tuple, roles)),
        "links": tuple(links),
        "schedules": sorted(row.model_dump_json() for row in schedules),
    }


def snapshot() -> dict[str, Any]:
    """Everything stored, to prove that a refused request changed nothing."""
    return runtime.run(_snapshot())


def invalidate_cache(user_id: str) -> None:
    from multidb.rbac import invalidate

    runtime.run(invalidate(get_redis(), user_id))


def reset_clients() -> None:
    """Forget settings and clients so the next call reads the environment again, and close the
    engine's pool: a worker that forgot one per `configure` held 16-24 idle connections by the
    middle of the run, and three of them ran PostgreSQL out of its 100."""
    from multidb import db, mongo, redis, settings

    for cached in (settings.get_settings, redis._redis, redis._blocking, redis._memory, db._engine, mongo._mongo):
        cached.cache_clear()
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        runtime.run(db.close())  # outside a loop (every caller today); inside one, the next engine lets it go


async def _id_where(model: type[Role] | type[User], condition: Any) -> str:
    async with AsyncSession(get_engine()) as session:
        return str((await session.exec(select(model.id).where(condition))).one())


def role_id(code: str) -> str:
    return runtime.run(_id_where(Role, Role.code == code))


def get_user_id(username: str) -> str:
    return runtime.run(_id_where(User, User.username == username))


def point_celery_at(url: str) -> None:
    """Send tasks to this broker from now on. Celery keeps connections in its own pool and
    producers in kombu's process-wide registry (keyed by broker URL): drop all of them."""
    from kombu import pools

    from multidb.queue.app import app

    app.pool.force_close_all()
    pools.reset()
    app.conf.broker_url = url
    app._pool = None
    app.amqp._producer_pool = None


def production_settings() -> Any:
    """Settings that pass production's rules (TLS to every datastore, keys from Secrets
    Manager), for a test that patches a module's `get_settings` with them."""
    from multidb.settings import parse

    return parse(
        dict(
            app_env="PRODUCTION",
            database_url="postgresql+asyncpg://app@db/app?ssl=verify-full",
            redis_url="rediss://cache:6379/0",
            broker_url=None,
            mongo_url="mongodb+srv://app@docs.example.net/",
            keys_secret_id="arn:aws:secretsmanager:us-east-1:123456789012:secret:jwt-AbCdEf",
        )
    )
