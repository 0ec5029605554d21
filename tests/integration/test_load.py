"""A bounded load test on loopback: 50 clients log in and make authorised reads and writes
through the local gateway's HTTP server (a process of its own) for LOAD_SECONDS (30)
seconds. No answer may be a 5xx, and every write the API acknowledged is stored exactly
once; nothing it refused is stored at all. The figures are printed (see docs/security.md)."""

import asyncio
import os
import statistics
import sys
import time
from collections import Counter
from typing import Any

import httpx
import pytest
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from multidb import runtime
from multidb.db import get_engine
from multidb.models import Role
from multidb.security.login_crypto import encrypt_password
from tests.helpers import UA, create_user
from tests.processes import Process, free_port

pytestmark = [pytest.mark.process, pytest.mark.first_pass_only("tests the API under load, not a datastore")]

CLIENTS = 50
SECONDS = float(os.environ.get("LOAD_SECONDS", "30"))
CODES = ("GET:/api/v1/roles", "POST:/api/v1/roles")


async def client(base: str, n: int, public_key: str, until: float, latencies: list[float]) -> dict[str, Any]:
    """One user: log in, then read and write until the time is up."""
    statuses: Counter[int] = Counter()
    written: list[str] = []
    refused: list[str] = []
    async with httpx.AsyncClient(base_url=base, timeout=60, headers={"user-agent": UA}) as http:

        async def call(method: str, path: str, **kwargs: Any) -> httpx.Response:
            started = time.perf_counter()
            response = await http.request(method, path, **kwargs)
            latencies.append(time.perf_counter() - started)
            statuses[response.status_code] += 1
            return response

        body = {"username": f"load{n}", "password": encrypt_password(f"load-password-{n}", public_key)}
        login = await call("POST", "/api/v1/auth/login", json=body)
        assert login.status_code == 200, login.text
        auth = {"authorization": f"Bearer {login.json()['data']['accessToken']}"}
        sequence = 0
        while time.monotonic() < until:
            await call("GET", "/api/v1/auth/user/info", headers=auth)
            await call("GET", "/api/v1/roles?pageSize=5", headers=auth)
            code = f"load-{n}-{sequence}"
            sequence += 1
            created = await call("POST", "/api/v1/roles", headers=auth, json={"name": code, "code": code})
            (written if created.status_code == 201 else refused).append(code)
    return {"statuses": statuses, "written": written, "refused": refused}


async def stored_codes() -> list[str]:
    async with AsyncSession(get_engine()) as session:
        return list((await session.exec(select(Role.code).where(col(Role.code).like("load-%")))).all())


def test_fifty_clients_for_thirty_seconds_no_5xx_no_lost_or_doubled_writes() -> None:
    for n in range(CLIENTS):
        create_user(f"load{n}", f"load-password-{n}", codes=CODES)
    port = free_port()
    gateway = Process("gateway", [sys.executable, "-m", "infra.local.gateway", "serve", "--port", str(port)])
    try:
        gateway.wait_listening(port, "the gateway", timeout=60)
        base = f"http://127.0.0.1:{port}"
        public_key = httpx.get(f"{base}/api/v1/auth/keys/public").json()["data"]["publicKey"]
        latencies: list[float] = []

        async def everyone() -> list[dict[str, Any]]:
            until = time.monotonic() + SECONDS
            return await asyncio.gather(*(client(base, n, public_key, until, latencies) for n in range(CLIENTS)))

        started = time.monotonic()
        results = asyncio.run(everyone())
        elapsed = time.monotonic() - started
    finally:
        gateway.stop()

    statuses = sum((r["statuses"] for r in results), Counter())
    written = [code for r in results for code in r["written"]]
    stored = runtime.run(stored_codes())
    assert not [s for s in statuses if s >= 500], (statuses, gateway.log()[-3000:])
    assert sorted(stored) == sorted(written)  # every acknowledged write once; nothing refused stored
    assert len(set(written)) == len(written)
    assert written, "no write got through"
    quantiles = statistics.quantiles(latencies, n=100)
    print(
        f"\nload: {CLIENTS} clients, {elapsed:.1f} s, {sum(statuses.values())} requests "
        f"({sum(statuses.values()) / elapsed:.0f}/s), statuses {dict(sorted(statuses.items()))}, "
        f"{len(written)} writes stored once each; latency p50 {quantiles[49] * 1000:.0f} ms, "
        f"p95 {quantiles[94] * 1000:.0f} ms, p99 {quantiles[98] * 1000:.0f} ms"
    )
