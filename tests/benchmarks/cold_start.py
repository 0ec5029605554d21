"""Cold start, memory and warm latency of the handlers, as ratios to baselines measured in the same run.

    make bench        (or: python tests/benchmarks/cold_start.py)

Cold start: a fresh interpreter importing a handler, against one importing nothing.
Memory: the peak RSS of those processes. Warm latency: the authorizer's whole decision on a
cache hit, against the bare Redis MGET it is built on; user/info through Mangum, against
the public-key route (no I/O). Uses the environment's DATABASE_URL / REDIS_URL.
"""

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ("auth", "authorizer", "tasks", "files")
PATHS = [str(ROOT / "shared"), *(str(ROOT / "functions" / name) for name in FUNCTIONS), str(ROOT)]
RUNS = 7


def child(statement: str) -> tuple[float, float]:
    """Wall seconds of a fresh interpreter running `statement`, and its peak RSS in MiB."""
    code = f"import resource, sys\nsys.path[:0] = {PATHS!r}\n{statement}\n"
    code += "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)\n"
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return time.perf_counter() - start, float(out.stdout.split()[-1])


def cold(statement: str) -> tuple[float, float]:
    samples = [child(statement) for _ in range(RUNS)]
    return statistics.median(s for s, _ in samples), statistics.median(r for _, r in samples)


def warm() -> dict[str, float]:
    sys.path[:0] = PATHS
    from authorizer_fn.handler import handler as authorizer
    from infra.deploy.initdb import migrate, seed
    from infra.local.gateway.invoke import LocalGateway
    from multidb import runtime
    from multidb.redis import get_redis
    from multidb.security.login_crypto import encrypt_password

    migrate()
    runtime.run(seed())
    gateway = LocalGateway()
    ua = {"user-agent": "bench", "content-type": "application/json"}
    pem = gateway.request("GET", "/api/v1/auth/keys/public").json()["data"]["publicKey"]
    password = os.environ.get("ADMIN_PASSWORD", "123456")
    body = json.dumps({"username": "admin", "password": encrypt_password(password, pem)})
    token = gateway.request("POST", "/api/v1/auth/login", headers=ua, body=body).json()["data"]["accessToken"]
    event = json.loads((ROOT / "events/authorizer/user_info.json").read_text().replace("<access-token>", token))

    def p50(action: object, n: int = 300) -> float:
        for _ in range(20):
            action()  # type: ignore[operator]
        times = []
        for _ in range(n):
            start = time.perf_counter()
            action()  # type: ignore[operator]
            times.append(time.perf_counter() - start)
        return statistics.median(times) * 1000

    redis = get_redis()
    keys = ["auth:revoked:x", "auth:revoked-family:y", "auth:permission:z"]
    headers = {"authorization": f"Bearer {token}", **ua}
    return {
        "redis_mget_ms": p50(lambda: runtime.run(redis.mget(keys))),
        "authorizer_ms": p50(lambda: authorizer(event, None)),
        "public_key_ms": p50(
            lambda: gateway.invoke("AuthFunction", _event(gateway, "GET", "/api/v1/auth/keys/public", ua))
        ),
        "user_info_ms": p50(
            lambda: gateway.invoke("AuthFunction", _event(gateway, "GET", "/api/v1/auth/user/info", headers))
        ),
    }


def _event(gateway: object, method: str, path: str, headers: dict[str, str]) -> dict[str, object]:
    from infra.local.gateway.events import http_event

    return http_event(f"{method} {path}", method, path, headers=headers)


def main() -> None:
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    base_s, base_rss = cold("pass")
    rows = []
    for name, statement in [
        ("authorizer", "import authorizer_fn.handler"),
        ("auth function", "import auth_fn.app"),
        ("tasks function", "import tasks_fn.app"),
        ("files function", "import files_fn.app"),
        # What its first request adds: boto3's client and the Beanie document (no I/O).
        ("files + 1st call", "import files_fn.app, files_fn.storage, multidb.documents; files_fn.storage.get_s3()"),
    ]:
        seconds, rss = cold(statement)
        rows.append((name, seconds, rss))
    print(f"cold start (median of {RUNS} fresh interpreters; baseline: an interpreter importing nothing)")
    print(f"  {'baseline':<16} {base_s * 1000:7.1f} ms   peak RSS {base_rss:6.1f} MiB")
    for name, seconds, rss in rows:
        print(
            f"  {name:<16} {seconds * 1000:7.1f} ms = x{seconds / base_s:.1f}   "
            f"peak RSS {rss:6.1f} MiB = x{rss / base_rss:.1f}"
        )
    w = warm()
    print("warm invocations (median of 300)")
    authorizer, mget = w["authorizer_ms"], w["redis_mget_ms"]
    info, public = w["user_info_ms"], w["public_key_ms"]
    print(f"  authorizer decision {authorizer:.3f} ms = x{authorizer / mget:.1f} a bare Redis MGET ({mget:.3f} ms)")
    print(f"  GET user/info       {info:.3f} ms = x{info / public:.1f} GET keys/public ({public:.3f} ms)")


if __name__ == "__main__":
    main()
