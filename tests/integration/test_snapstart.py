"""SnapStart: the template publishes versions behind an alias and turns SnapStart on with one
parameter; init primes, the before-snapshot hooks close every socket, and a restore, emulated
by `os.fork()` in a process that served a request first, answers correctly after reopening.

Lambda's own `snapshot_restore_py` exists only in the managed runtime: the emulation hands
the hooks to a stand-in of it (two registration functions that record what they are given)
and then calls them as Lambda would, around the fork."""

import json
import os
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from infra.deploy.template import load
from tests.conftest import ADMIN_PASSWORD
from tests.helpers import ROOT, Api, get_user_id, invalidate_cache, load_event
from tests.integration.test_template import translated

pytestmark = [pytest.mark.infra, pytest.mark.first_pass_only("SnapStart: the deployed shape")]

EMULATION = textwrap.dedent(
    """
    import json, os, sys, time, types

    registered = {}
    runtime_hooks = types.ModuleType("snapshot_restore_py")
    runtime_hooks.register_before_snapshot = lambda hook: registered.setdefault("before", hook)
    runtime_hooks.register_after_restore = lambda hook: registered.setdefault("after", hook)
    sys.modules["snapshot_restore_py"] = runtime_hooks
    os.environ["AWS_LAMBDA_INITIALIZATION_TYPE"] = "snap-start"

    def sockets():
        found = 0
        for fd in os.listdir("/proc/self/fd"):
            try:
                found += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
            except FileNotFoundError:  # the listing's own descriptor, closed by now
                pass
        return found

    class Context:
        aws_request_id = "emulated"
        def get_remaining_time_in_millis(self):
            return 10_000

    handler = __import__(sys.argv[1], fromlist=["handler"]).handler  # init: primes, installs the hooks
    primed = "sqlalchemy.dialects.postgresql.asyncpg" in sys.modules
    event = json.loads(sys.argv[2])
    first = handler(event, Context())
    second = handler(event, Context())  # a warm one: the authorizer's blocking client too
    open_before = sockets()
    import multidb.redis as shared_redis
    blocking = [conn for c in shared_redis._made_blocking for conn in c.connection_pool._available_connections]
    blocking_before = sum(conn._sock is not None for conn in blocking)
    registered["before"]()  # what Lambda calls before it takes the snapshot
    open_after = sockets()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # a container restored from the snapshot
        os.close(read)
        registered["after"]()
        started = time.perf_counter()
        answer = handler(event, Context())
        seconds = time.perf_counter() - started
        os.write(write, json.dumps({"answer": answer, "seconds": seconds}).encode())
        os._exit(0)
    os.close(write)
    child = json.loads(os.read(read, 1 << 20))
    os.waitpid(pid, 0)
    print(json.dumps({
        "primed": primed,
        "hooks": sorted(registered),
        "first": first,
        "second": second,
        "sockets_open_before_the_snapshot": open_before,
        "sockets_open_after_the_hooks": open_after,
        "blocking_redis_connections_before_the_snapshot": blocking_before,
        "restored": child,
    }))
    """
)


def _emulated(module: str, function: str, event: dict[str, Any]) -> dict[str, Any]:
    paths = [str(ROOT), str(ROOT / "shared"), str(ROOT / "functions" / function)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    command = [sys.executable, "-c", EMULATION, module, json.dumps(event)]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    seen: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["primed"]  # init imported what the first request would have
    assert seen["hooks"] == ["after", "before"]
    assert seen["sockets_open_after_the_hooks"] == 0
    return seen


def test_a_restored_process_answers_after_the_hooks_closed_every_socket(api: Api) -> None:
    token = api.login("admin", ADMIN_PASSWORD).access
    event = json.loads(json.dumps(load_event("auth/user_info")).replace("<access-token>", token))
    seen = _emulated("auth_fn.app", "auth", event)
    assert seen["first"]["statusCode"] == 200
    assert seen["sockets_open_before_the_snapshot"] >= 2  # PostgreSQL and Redis at least
    restored = seen["restored"]["answer"]
    assert restored["statusCode"] == 200, restored
    assert json.loads(restored["body"])["data"]["username"] == "admin"


def test_a_restored_authorizer_decides_after_the_hooks_closed_both_redis_clients(api: Api) -> None:
    token = api.login("admin", ADMIN_PASSWORD).access
    event = json.loads(json.dumps(load_event("authorizer/user_info")).replace("<access-token>", token))
    invalidate_cache(get_user_id("admin"))
    seen = _emulated("authorizer_fn.handler", "authorizer", event)
    assert seen["first"]["isAuthorized"] is True  # a cache miss: the asyncio client (and the database)
    assert seen["second"]["isAuthorized"] is True  # a hit: the blocking client
    assert seen["sockets_open_before_the_snapshot"] >= 3  # PostgreSQL and both Redis clients
    assert seen["blocking_redis_connections_before_the_snapshot"] == 1  # closed by the hooks, like every socket
    assert seen["restored"]["answer"] == seen["second"], seen["restored"]


def test_without_snapstart_init_primes_nothing_and_installs_no_hook() -> None:
    code = (
        "import sys\n"
        "from auth_fn.app import handler\n"
        "import multidb.snapstart as s\n"
        "print(s._installed, 'asyncpg' in sys.modules)\n"
    )
    paths = [str(ROOT), str(ROOT / "shared"), str(ROOT / "functions" / "auth")]
    env = {k: v for k, v in os.environ.items() if k != "AWS_LAMBDA_INITIALIZATION_TYPE"}
    env["PYTHONPATH"] = os.pathsep.join(paths)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["False", "False"]  # a cold start stays as lean as its imports


def _functions(resources: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in resources.items() if r["Type"] == "AWS::Lambda::Function"}


def test_one_parameter_turns_snapstart_on_for_every_function_and_the_api_invokes_their_alias() -> None:
    output = translated()
    resources = output["template"]["Resources"]
    conditions = output["template"]["Conditions"]
    assert conditions["UseSnapStart"] == {"Fn::Equals": [{"Ref": "SnapStart"}, "true"]}
    # nobody waits for these two: the deploy steps and the minute's metrics never snapshot
    unwaited = {"DeployFunction", "MetricsFunction"}
    functions = _functions(resources)
    assert unwaited < set(functions)
    for name, function in functions.items():
        when = {"Fn::If": ["UseSnapStart", "PublishedVersions", "None"]} if name not in unwaited else "None"
        assert function["Properties"]["SnapStart"] == {"ApplyOn": when}, name
        assert f"{name}Aliaslive" in resources, name  # a published version behind the alias
    integrations = json.dumps(resources["HttpApi"]["Properties"]["Body"]["paths"])
    for function in load().api_functions:
        assert f"${{{function}Aliaslive}}/invocations" in integrations, function
    assert "FunctionArn" not in integrations.replace("Aliaslive", "")  # no route invokes $LATEST
    permissions = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::Permission"]
    authorizer = [p for p in permissions if "authorizers" in json.dumps(p["SourceArn"])]
    assert [p["FunctionName"] for p in authorizer] == [{"Ref": "AuthorizerFunctionAliaslive"}]
    assert all(p["FunctionName"]["Ref"].endswith("Aliaslive") for p in permissions), permissions


# What each function's first request loads lazily (`make bench` shows it: "first call" in its
# import breakdown); a SnapStart init must have loaded it, or every restore pays for it.
FIRST_REQUEST_LOADS = {
    "auth": ["redis.asyncio", "sqlalchemy.dialects.postgresql.asyncpg", "anyio._backends._asyncio"],
    "roles": ["redis.asyncio", "sqlalchemy.dialects.postgresql.asyncpg", "anyio._backends._asyncio"],
    "users": ["redis.asyncio", "sqlalchemy.dialects.postgresql.asyncpg", "anyio._backends._asyncio"],
    "routers": ["redis.asyncio", "sqlalchemy.dialects.postgresql.asyncpg", "anyio._backends._asyncio"],
    "tasks": ["redis.asyncio", "celery", "kombu.transport.redis", "multidb.queue.runs"],
    "files": ["redis.asyncio", "pymongo", "beanie", "multidb.files.documents", "boto3"],
    "audit": ["redis.asyncio", "pymongo", "beanie", "multidb.documents"],
}


def test_each_function_serving_routes_says_what_its_first_request_loads() -> None:
    served = {function.folder.removeprefix("functions/") for function in load().api_functions.values()}
    assert set(FIRST_REQUEST_LOADS) == served


@pytest.mark.parametrize("function", sorted(FIRST_REQUEST_LOADS))
def test_a_snapstart_init_loads_what_the_first_request_would(function: str) -> None:
    code = (
        "import json, os, sys\n"
        "os.environ['AWS_LAMBDA_INITIALIZATION_TYPE'] = 'snap-start'\n"
        f"from {function}_fn.app import handler\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    paths = [str(ROOT), str(ROOT / "shared"), str(ROOT / "functions" / function)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    loaded = set(json.loads(result.stdout.strip().splitlines()[-1]))
    assert [name for name in FIRST_REQUEST_LOADS[function] if name not in loaded] == []
