"""Every store stays bounded: what a request leaves in Redis expires on its own (sessions,
revocations, caches, runs and their indexes), the audit log's entries end by a TTL index
whose lifetime the deploy step sets, and the files' tombstones by the sweep
(tests/files). The rules: docs/database.md, "Retention"."""

from typing import Any

import pytest

from multidb import audit, runtime
from multidb.mongo import database
from multidb.redis import get_redis
from tests.helpers import Api, create_user

RUNS = "/api/v1/tasks/runs"


async def _keys_without_ttl() -> list[str]:
    redis = get_redis()
    found = []
    async for key in redis.scan_iter(count=1000):
        if await redis.ttl(key) == -1:
            found.append(key if isinstance(key, str) else key.decode())
    return sorted(found)


def test_what_logins_refreshes_logouts_caches_and_runs_leave_in_redis_all_expires(api: Api) -> None:
    """No key a session, a cache or a run writes lives forever: each has a TTL."""
    from multidb.rbac import task_code

    create_user("kept", "kept-password", codes=(f"POST:{RUNS}", f"GET:{RUNS}", task_code("multidb.ping")))
    for _ in range(2):
        pair = api.login("kept", "kept-password")
        renewed = api.post("/api/v1/auth/token/refresh", headers={"x-refresh-token": pair.refresh})
        assert renewed.status_code == 200, renewed.body
        access = renewed.json()["data"]["accessToken"]
        assert api.get("/api/v1/auth/user/info", token=access).status_code == 200
        assert api.post(RUNS, token=access, json_body={"task": "multidb.ping"}).status_code == 202
        assert api.get(RUNS, token=access).status_code == 200
    assert api.post("/api/v1/auth/logout", token=access).status_code == 200
    refused = api.post("/api/v1/auth/login", json_body={"username": "kept", "password": api.encrypt("wrong")})
    assert refused.status_code == 401
    assert runtime.run(_keys_without_ttl()) == []


@pytest.mark.first_pass_only("MongoDB is the same server in both passes")
def test_the_audit_logs_ttl_index_ends_entries_after_the_retention_and_follows_a_change(
    files_backends: None,
) -> None:
    async def ttl() -> Any:
        return (await database()[audit.COLLECTION].index_information())["at_ttl"]

    async def reset() -> None:
        await database()[audit.COLLECTION].drop()

    runtime.run(reset())
    runtime.run(audit.ensure_retention(30))
    index = runtime.run(ttl())
    assert (index["key"], index["expireAfterSeconds"]) == ([("at", 1)], 30 * 24 * 3600)
    runtime.run(audit.ensure_retention(7))  # a changed AUDIT_RETENTION_DAYS: the same index, changed
    assert runtime.run(ttl())["expireAfterSeconds"] == 7 * 24 * 3600
    runtime.run(reset())
