"""How each request's cost grows with the data: `make bench-scale`.

Seeds the real PostgreSQL and Redis at 1x, 10x and 100x of a base data set (users 1,000 with
roles 100, schedules 100 and task runs 1,000 of one user, live sessions 1,000; in MongoDB
files 1,000, half of them the user's, and audit entries 10,000), in bulk (one multi-row
INSERT per table, Redis pipelines, `insert_many`), and at each scale times the same warm
requests through the local gateway in this process (the authorizer, then the function, as
`tests/integration` call them): the list and lookup routes (deep pages by number and by
cursor), `user/info`, login, refresh and logout, and the authorizer's decision with its
permission cache warm and emptied; then, in this process, beat's tick (nothing due), its
refresh (marker unchanged) and its full reload, and the files sweep (nothing due). Reports
p50 and p99 of each and their ratios to the 1x figures of the same run, and Redis bytes per
live session and per cached user.

MongoDB here is the test server, a stand-in written in Python that scans: the files and
audit figures are its curve, not MongoDB's; what proves their pages is
`tests/integration/test_scale.py` (every query against the declared indexes).

    python -m tests.benchmarks.scale [--scales 1,10,100] [--calls 200] [--redis-port 6379] [--json FILE]

Not part of the test command: it takes minutes (100x seeds 100,000 users).
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.benchmarks.backends import MARKER, REDIS_PORT, environment, servers

BASE = {
    "users": 1_000,
    "roles": 100,
    "schedules": 100,
    "runs": 1_000,
    "sessions": 1_000,
    "files": 1_000,
    "audit": 10_000,
}
PAGE = 10
PASSWORD = "bench-user-password"


def _percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def _reset() -> None:
    from sqlalchemy import text

    from multidb.db import get_engine
    from multidb.mongo import database
    from multidb.redis import get_redis

    for collection in ("files", "audit", "counters"):
        await database()[collection].delete_many({})
    await get_redis().flushdb()
    await get_redis().set(MARKER, os.getpid())  # the bench's claim on its Redis database (backends.py)
    async with get_engine().begin() as connection:
        await connection.execute(text("DELETE FROM periodic_tasks"))
        await connection.execute(text("DELETE FROM user_roles"))
        await connection.execute(text("DELETE FROM users WHERE username <> 'admin'"))
        await connection.execute(text("DELETE FROM roles"))


async def _seed_sql(scale: int, codes: list[str]) -> str:
    """The scale's users and roles (each user holds one), and the bench user with the
    scale's schedules; returns the bench user's id."""
    from sqlalchemy import insert, text

    from multidb.db import get_engine
    from multidb.models import PeriodicTask, Role, User, UserRole
    from multidb.security.passwords import hash_password

    start, hashed = datetime(2026, 1, 1, tzinfo=UTC), hash_password(PASSWORD)
    roles = [
        {"id": uuid.uuid4(), "name": f"role {n}", "code": f"scale-{n}", "created_at": start + timedelta(seconds=n),
         "updated_at": start, "interface_permissions": codes, "button_permissions": [], "router_permissions": []}
        for n in range(BASE["roles"] * scale)
    ]  # fmt: skip
    users = [
        {"id": uuid.uuid4(), "name": f"User {n}", "email": f"u{n}@example.com", "username": f"user{n}",
         "password_hash": hashed, "created_at": start + timedelta(seconds=n), "updated_at": start}
        for n in range(BASE["users"] * scale)
    ]  # fmt: skip
    bench = users[0]
    links = [{"user_id": u["id"], "role_id": roles[n % len(roles)]["id"]} for n, u in enumerate(users)]
    schedules = [
        {"id": uuid.uuid4(), "owner_id": bench["id"], "name": f"every-{n}", "task": "multidb.ping", "args": [],
         "kwargs": {}, "interval_seconds": 3600, "created_at": start, "updated_at": start,
         "last_run_at": datetime.now(UTC)}  # none due: beat's tick is timed with nothing to send
        for n in range(BASE["schedules"] * scale)
    ]  # fmt: skip
    async with get_engine().begin() as connection:
        for model, rows in ((Role, roles), (User, users), (UserRole, links), (PeriodicTask, schedules)):
            for chunk in range(0, len(rows), 5_000):
                await connection.execute(insert(model), rows[chunk : chunk + 5_000])  # type: ignore[arg-type]
    async with get_engine().connect() as connection:
        await connection.execute(text("ANALYZE"))
        await connection.commit()
    return str(bench["id"])


async def _seed_documents(scale: int, owner: str) -> None:
    """The scale's files (every other one the bench user's, all stored) and audit entries
    (a tenth of them the bench user's), as the deploy step's indexes serve them."""
    from infra.deploy.initdb import build_mongo_indexes
    from multidb import audit
    from multidb.mongo import database

    await build_mongo_indexes()
    start, others = datetime(2026, 1, 1, tzinfo=UTC), [str(uuid.uuid4()) for _ in range(100)]
    files: list[dict[str, Any]] = [
        {"owner_id": owner if n % 2 else others[n % 100], "name": f"file-{n}.txt", "content_type": "text/plain",
         "size": 10, "key": f"scale/{n}", "status": "ready", "created_at": start + timedelta(seconds=n),
         "updated_at": start}
        for n in range(BASE["files"] * scale)
    ]  # fmt: skip
    entries: list[dict[str, Any]] = [
        {"seq": n + 1, "at": start + timedelta(seconds=n), "events": 1, "action": ("user.update", "role.update")[n % 2],
         "outcome": ("success", "failure")[n % 5 == 0], "user_id": owner if n % 10 == 0 else others[n % 100],
         "target_type": "user", "target_id": others[(n * 7) % 100], "details": {}}
        for n in range(BASE["audit"] * scale)
    ]  # fmt: skip
    for collection, documents in (("files", files), (audit.COLLECTION, entries)):
        for chunk in range(0, len(documents), 5_000):
            await database()[collection].insert_many(documents[chunk : chunk + 5_000])
    # The audit log's sequence continues after the seeded entries (logins below record more).
    await database()["counters"].update_one(
        {"_id": f"{audit.COLLECTION}:global"}, {"$set": {"value": len(entries)}}, upsert=True
    )


async def _seed_redis(scale: int, owner: str) -> tuple[float, int]:
    """The bench user's runs, and the scale's live sessions (each a login's keys); returns the
    Redis bytes per session and how many."""
    from multidb.queue import runs
    from multidb.redis import get_redis
    from multidb.security import sessions
    from multidb.settings import get_settings

    redis = get_redis()
    count, now = BASE["runs"] * scale, time.time()
    members: dict[str, dict[str, float]] = {}
    async with redis.pipeline(transaction=False) as pipe:
        for n in range(count):
            task, at, task_id = ("multidb.add" if n % 20 == 0 else "multidb.ping"), now - count + n, f"run-{n}"
            pipe.hset(
                runs.run_key(task_id), mapping={"owner": owner, "task": task, "queued_at": at, "state": "SUCCESS"}
            )
            pipe.expire(runs.run_key(task_id), 3600)
            for index in runs.indexes(owner, task):
                members.setdefault(index, {})[task_id] = at
        for index, scores in members.items():
            pipe.zadd(index, scores)
        await pipe.execute()
    before = int((await redis.info("memory"))["used_memory"])
    live = BASE["sessions"] * scale
    users = [str(uuid.uuid4()) for _ in range(max(1, live // 10))]  # ten sessions a user
    # Login's own script (`sessions._OPEN`) writes each session's keys, with fresh ids: what
    # login stores, without signing the two tokens it hands out (which is most of its time).
    opening, ttl = redis.register_script(sessions._OPEN), get_settings().refresh_token_ttl
    for chunk in range(0, live, 5_000):
        async with redis.pipeline(transaction=False) as pipe:
            for n in range(chunk, min(live, chunk + 5_000)):
                user, family, jti = users[n % len(users)], uuid.uuid4().hex, uuid.uuid4().hex
                keys = [sessions.refresh_key(user, jti), sessions.family_key(family), sessions.families_key(user),
                        sessions.epoch_key(user)]  # fmt: skip
                args = [sessions._record(family, "bench/1.0"), ttl, family, jti, ""]
                await opening(keys=keys, args=args, client=pipe)
            await pipe.execute()
    after = int((await redis.info("memory"))["used_memory"])
    return (after - before) / live, live


def _timed(call: Callable[[], Any], calls: int) -> list[float]:
    for _ in range(5):  # warm
        call()
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def measure(scale: int, calls: int) -> dict[str, Any]:
    from infra.local.gateway.invoke import LocalGateway
    from multidb import runtime
    from multidb.redis import get_redis
    from tests.helpers import Api

    codes = ["GET:/api/v1/users", "GET:/api/v1/users/{user_id}", "GET:/api/v1/roles", "GET:/api/v1/router/backend",
             "GET:/api/v1/tasks/schedules", "GET:/api/v1/tasks/runs", "GET:/api/v1/files",
             "GET:/api/v1/audit"]  # fmt: skip
    runtime.run(_reset())
    started = time.perf_counter()
    owner = runtime.run(_seed_sql(scale, codes))
    print(f"{scale}x: SQL seeded in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    session_bytes, sessions = runtime.run(_seed_redis(scale, owner))
    runtime.run(_seed_documents(scale, owner))
    seeded_in = time.perf_counter() - started
    api = Api(LocalGateway())
    token = api.login("user0", PASSWORD).access
    role = api.get("/api/v1/roles?pageSize=1&page=2", token=token).json()["data"]["records"][0]["id"]
    deep = BASE["users"] * scale // PAGE // 2
    before_middle = api.get(f"/api/v1/users?pageSize=10&page={deep - 1}", token=token).json()["data"]["nextCursor"]
    routes = {
        "GET /users": "/api/v1/users?pageSize=10",
        "GET /users (middle page)": f"/api/v1/users?pageSize=10&page={deep}",
        "GET /users (middle page, cursor)": f"/api/v1/users?pageSize=10&cursor={before_middle}",
        "GET /users?roleId": f"/api/v1/users?pageSize=10&roleId={role}",
        "GET /users/{id}": f"/api/v1/users/{owner}",
        "GET /roles": "/api/v1/roles?pageSize=10",
        "GET /router/backend": "/api/v1/router/backend",
        "GET /tasks/schedules": "/api/v1/tasks/schedules?pageSize=10",
        "GET /tasks/runs": "/api/v1/tasks/runs?pageSize=10",
        "GET /tasks/runs?task": "/api/v1/tasks/runs?pageSize=10&task=multidb.add",
        "GET /auth/user/info": "/api/v1/auth/user/info",
        "GET /files": "/api/v1/files?pageSize=10",
        "GET /files?keyword": "/api/v1/files?pageSize=10&keyword=file-9",
        "GET /audit": "/api/v1/audit?pageSize=10",
        "GET /audit?userId": f"/api/v1/audit?pageSize=10&userId={owner}",
        "GET /audit?action": "/api/v1/audit?pageSize=10&action=role.update",
        "GET /audit?outcome": "/api/v1/audit?pageSize=10&outcome=failure",
        "GET /audit (middle page, cursor)": f"/api/v1/audit?pageSize=10&cursor={BASE['audit'] * scale // 2}",
    }
    results: dict[str, list[float]] = {}
    for name, path in routes.items():

        def get(path: str = path) -> None:
            response = api.get(path, token=token)
            assert response.status_code == 200, (path, response.body)

        results[name] = _timed(get, calls)

    # login, refresh, logout: each timed on its own, in turns (each spends what the one before made)
    login, refresh, logout = [], [], []
    for _ in range(max(10, calls // 4)):
        started = time.perf_counter()
        pair = api.login("user0", PASSWORD)
        login.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        renewed = api.post("/api/v1/auth/token/refresh", headers={"x-refresh-token": pair.refresh})
        refresh.append((time.perf_counter() - started) * 1000)
        assert renewed.status_code == 200, renewed.body
        access = renewed.json()["data"]["accessToken"]
        started = time.perf_counter()
        assert api.post("/api/v1/auth/logout", token=access).status_code == 200
        logout.append((time.perf_counter() - started) * 1000)
    results.update({"POST /auth/login": login, "POST /auth/token/refresh": refresh, "POST /auth/logout": logout})

    from authorizer_fn.handler import handler as authorizer
    from tests.benchmarks.backends import authorizer_event

    event = authorizer_event(token, "GET /api/v1/users")
    redis = get_redis()

    def cached() -> None:
        assert authorizer(event, None)["isAuthorized"]

    def missed() -> None:
        runtime.run(redis.delete(f"auth:permission:{owner}"))
        assert authorizer(event, None)["isAuthorized"]

    results["authorizer (cached)"] = _timed(cached, calls)
    results["authorizer (missed)"] = _timed(missed, calls)
    results.update(_background(calls))
    cached_user = sum(
        int(runtime.run(redis.memory_usage(key)) or 0)
        for key in (f"auth:permission:{owner}", f"auth:profile:v1:{owner}", f"auth:permission-version:{owner}")
    )
    return {
        "scale": scale,
        "seeded_s": round(seeded_in, 1),
        "data": {name: size * scale for name, size in BASE.items()},
        "redis_bytes_per_session": round(session_bytes),
        "sessions": sessions,
        "redis_bytes_per_cached_user": cached_user,
        "routes": {
            name: {"p50": statistics.median(s), "p99": _percentile(s, 0.99), "calls": len(s)}
            for name, s in results.items()
        },
    }


def _background(calls: int) -> dict[str, list[float]]:
    """Beat's tick with nothing due, its refresh when no schedule changed (the change marker
    alone), its full reload (every enabled schedule: O(schedules), on a change only), and the
    files sweep with nothing due; each in this process, as beat and the worker run them."""
    from multidb import runtime
    from multidb.files import lifecycle
    from multidb.queue.app import app
    from multidb.queue.scheduler import DatabaseScheduler

    scheduler = DatabaseScheduler(app=app, lazy=True)
    scheduler.setup_schedule()

    def tick() -> None:
        assert scheduler.tick() > 0  # nothing was due

    def refresh() -> None:
        scheduler._loaded_at = None  # the refresh interval passed: the marker is read
        scheduler.get_schedule()

    def reload() -> None:
        scheduler._seen_version = None  # as if a schedule changed: every enabled one is read
        refresh()

    def sweep() -> None:
        assert runtime.run(lifecycle.sweep()) == 0

    timed = {"beat tick": _timed(tick, calls), "beat refresh (unchanged)": _timed(refresh, calls)}
    timed |= {"beat reload": _timed(reload, calls), "files sweep": _timed(sweep, calls)}
    scheduler.close()
    return timed


def table(runs: list[dict[str, Any]]) -> str:
    base = runs[0]
    head = " | ".join(f"{r['scale']}x p50 / p99 (ms)" for r in runs)
    lines = [f"| route | {head} | p50 ratio to 1x |", "|---|" + "---|" * len(runs) + "---|"]
    for name, first in base["routes"].items():
        cells = [f"{r['routes'][name]['p50']:.2f} / {r['routes'][name]['p99']:.2f}" for r in runs]
        ratios = ", ".join(f"{r['routes'][name]['p50'] / first['p50']:.2f}x" for r in runs[1:]) or "n/a"
        lines.append(f"| {name} | {' | '.join(cells)} | {ratios} |")
    lines.append(
        "| Redis bytes per live session | "
        + " | ".join(f"{r['redis_bytes_per_session']:,} ({r['sessions']:,} sessions)" for r in runs)
        + " | |"
    )
    lines.append(
        "| Redis bytes per cached user | " + " | ".join(f"{r['redis_bytes_per_cached_user']:,}" for r in runs) + " | |"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", default="1,10,100")
    parser.add_argument("--calls", type=int, default=200, help="warm calls timed per route and scale")
    parser.add_argument("--redis-port", type=int, default=int(os.environ.get("BENCH_REDIS_PORT", REDIS_PORT)))
    parser.add_argument("--redis-db", type=int, default=14)
    parser.add_argument("--pg-database", default="multidb_bench_scale")
    parser.add_argument("--json", type=Path, default=Path(".local/bench-scale.json"))
    options = parser.parse_args()
    scales = [int(s) for s in options.scales.split(",")]
    root = Path(__file__).resolve().parents[2]
    with servers(options.pg_database, options.redis_db, options.redis_port) as found:
        state = Path(tempfile.mkdtemp(prefix="bench-scale-"))
        env = environment(found, state) | {"LOG_LEVEL": "WARNING"}
        from multidb.settings import FIELDS

        for name in FIELDS:
            os.environ.pop(name.upper(), None)
        os.environ.update(env)
        sys.path[:0] = [str(root / "functions" / "authorizer")]
        from infra.deploy import initdb
        from multidb import runtime

        initdb.migrate()
        runtime.run(initdb.seed())
        results = []
        for scale in scales:
            results.append(measure(scale, options.calls))
            print(f"{scale}x: seeded in {results[-1]['seeded_s']} s", file=sys.stderr, flush=True)
    options.json.parent.mkdir(parents=True, exist_ok=True)
    options.json.write_text(json.dumps(results, indent=1))
    print(table(results))


if __name__ == "__main__":
    main()
