"""The tasks function through the gateway, with a real Celery worker on the real broker."""

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from multidb import runtime
from multidb.keyspace import BEAT_HEARTBEAT
from multidb.queue import runs
from multidb.rbac import Access, catalogue, task_code
from multidb.redis import get_redis
from tests.conftest import BROKER_URL
from tests.helpers import Api, create_user, get_user_id, invalidate_cache, point_celery_at, set_user, snapshot
from tests.processes import Process, wait_for

TASK_ROUTES = sorted(
    (entry["method"], entry["path"])
    for entry in catalogue().values()
    if entry["function"] == "TasksFunction" and entry["access"] == Access.PERMISSION
)
RUNS = "/api/v1/tasks/runs"
SCHEDULES = "/api/v1/tasks/schedules"
STATUS = "/api/v1/tasks/status"


def concrete(path: str) -> str:
    return path.replace("{task_id}", str(uuid.uuid4())).replace("{schedule_id}", str(uuid.uuid4()))


def body_of(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.body
    payload = response.json()
    errors = {"error"} if payload["code"] >= 400 else set()  # an error names itself
    assert set(payload) == {"code", "message", "ts", "data"} | errors, payload
    assert payload["code"] == status
    return payload["data"]


def runner(api: Api, username: str = "runner", tasks: tuple[str, ...] = ("multidb.add", "multidb.ping")) -> str:
    """A user who may run these tasks and read runs, nothing else."""
    create_user(username, "runner-password", codes=(f"POST:{RUNS}", f"GET:{RUNS}/{{task_id}}", *map(task_code, tasks)))
    return api.login(username, "runner-password").access


def wait_for_run(api: Api, token: str, task_id: str) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        run: dict[str, Any] = body_of(api.get(f"{RUNS}/{task_id}", token=token))
        return run if run["state"] in ("SUCCESS", "FAILURE") else None

    return wait_for(finished, timeout=30, what=f"run {task_id}")  # type: ignore[return-value]


@pytest.mark.parametrize(("method", "path"), TASK_ROUTES)
def test_anonymous_is_401_and_without_permission_is_403(api: Api, method: str, path: str) -> None:
    create_user("nobody", "nobody-password")
    nobody = api.login("nobody", "nobody-password").access
    assert api.request(method, concrete(path)).status_code == 401
    denied = api.request(method, concrete(path), token=nobody, json_body={})
    assert denied.status_code == 403


def test_the_task_list_names_runnable_tasks_with_their_signatures(api: Api, admin: str) -> None:
    tasks = {task["name"]: task["description"] for task in body_of(api.get("/api/v1/tasks", token=admin))}
    assert {"multidb.ping", "multidb.add", "multidb.notify", "multidb.broadcast"} <= set(tasks)
    assert not any(name.startswith("celery.") for name in tasks)
    assert tasks["multidb.add"].startswith("multidb.add(x: float, y: float) -> float: Add two numbers")


def parameter(name: str, json_type: str | None, **fields: Any) -> dict[str, Any]:
    """A TaskParameter as the API sends it: required, positional or keyword, no default, unless told."""
    defaults = {"required": True, "default": None, "nullable": False, "enum": None, "kind": "positional_or_keyword"}
    return {"name": name, "type": json_type, **defaults, **fields}


def test_the_task_list_types_each_parameter_from_its_annotation(api: Api, admin: str) -> None:
    tasks = {task["name"]: task["parameters"] for task in body_of(api.get("/api/v1/tasks", token=admin))}
    assert tasks["multidb.ping"] == []
    assert tasks["multidb.add"] == [parameter("x", "number"), parameter("y", "number")]
    assert tasks["multidb.notify"] == [
        parameter("user_id", "string"),
        parameter("event", "string", enum=["notification", "message"]),
        parameter("data", "object", required=False, nullable=True),
    ]


def test_arguments_that_do_not_fit_are_422_naming_the_parameter(api: Api, admin: str) -> None:
    before = snapshot()
    for kwargs, field in (({"x": 1}, "y"), ({"x": 1, "y": "2"}, "y"), ({"x": 1, "y": 2, "z": 3}, "z")):
        response = api.post(RUNS, token=admin, json_body={"task": "multidb.add", "kwargs": kwargs})
        assert response.status_code == 422, response.body
        assert response.json()["error"] == "bad_task_arguments"
        assert [problem["field"] for problem in response.json()["data"]] == [field]
    assert snapshot() == before


def test_the_queue_status_counts_waiting_runs_and_ages_beats_heartbeat(
    api: Api, admin: str, spare_broker: str, configure: Callable[..., None]
) -> None:
    import redis
    from celery import Celery

    configure(BROKER_URL=spare_broker)  # a broker no worker reads: what is sent stays to be counted
    status = body_of(api.get(STATUS, token=admin))
    assert status["queues"] == [{"name": "celery", "waiting": 0}]
    assert (status["reserved"], status["beatHeartbeatAge"]) == (0, None)  # no beat ever ticked here

    sender = Celery(broker=spare_broker)
    try:
        for priority in (0, 0, 0, 9, 9):  # Redis keeps each priority in a list of its own
            sender.send_task("multidb.ping", priority=priority)
    finally:
        sender.close()
    with redis.Redis.from_url(spare_broker) as broker:
        broker.set(BEAT_HEARTBEAT, f"{time.time() - 42:.3f}")
    status = body_of(api.get(STATUS, token=admin))
    assert status["queues"] == [{"name": "celery", "waiting": 5}]
    assert 42 <= status["beatHeartbeatAge"] < 42 + 60
    assert set(status) == {"queues", "reserved", "beatHeartbeatAge", "checkedAt"}


def test_the_queue_status_of_an_unreachable_broker_is_503(api: Api, admin: str, configure: Callable[..., None]) -> None:
    configure(BROKER_URL="redis://127.0.0.1:9/0")  # the discard port: nothing listens
    response = api.get(STATUS, token=admin)
    assert response.status_code == 503
    assert response.json()["error"] == "task_queue_unavailable"
    assert "redis" not in response.body.decode().lower()


def test_a_run_is_queued_executed_by_the_worker_and_its_result_read(api: Api, worker: Process) -> None:
    token = runner(api)
    queued = body_of(api.post(RUNS, token=token, json_body={"task": "multidb.add", "args": [2, 3]}), 202)
    assert queued["state"] == "PENDING"
    assert queued["task"] == "multidb.add"
    run = wait_for_run(api, token, queued["taskId"])
    times = {name: run.pop(name) for name in ("ownerId", "queuedAt", "startedAt", "finishedAt")}
    assert run == {"taskId": queued["taskId"], "task": "multidb.add", "state": "SUCCESS", "result": 5, "error": None}
    assert times["ownerId"] is not None
    record = runtime.run(runs.get(get_redis(), queued["taskId"]))  # what the worker wrote, if a check fails
    assert None not in times.values(), (times, record, worker.tail(30))
    assert times["queuedAt"] <= times["startedAt"] <= times["finishedAt"], times


def test_a_run_that_starts_and_ends_while_its_status_is_read_shows_its_start(
    api: Api, spare_broker: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker records the start, then stores the result: the route reads them the other way
    round, so a finished result always comes with its start. Here the worker's two writes land
    while the route reads the result (under `make dev` they did, and the run showed SUCCESS with
    `startedAt: null` when the record was read first)."""
    import redis

    from multidb.queue.app import app
    from tests.conftest import REDIS_URL

    token = runner(api)
    point_celery_at(spare_broker)  # no worker reads it: the test plays the worker's part
    try:
        task_id = body_of(api.post(RUNS, token=token, json_body={"task": "multidb.ping"}), 202)["taskId"]
    finally:
        point_celery_at(BROKER_URL)

    def worker_meanwhile(backend: Any, asked: str) -> dict[str, Any]:
        with redis.Redis.from_url(REDIS_URL) as store:
            store.hset(runs.run_key(asked), mapping={"started_at": time.time(), "state": "STARTED"})
        return {"status": "SUCCESS", "result": "pong", "date_done": datetime.now(UTC).isoformat()}

    # on the class: each thread has a backend of its own, and the route reads from a worker thread
    monkeypatch.setattr(type(app.backend), "get_task_meta", worker_meanwhile)
    run = body_of(api.get(f"{RUNS}/{task_id}", token=token))
    assert (run["state"], run["result"]) == ("SUCCESS", "pong")
    assert None not in (run["queuedAt"], run["startedAt"], run["finishedAt"]), run
    assert run["queuedAt"] <= run["startedAt"] <= run["finishedAt"], run


def test_async_tasks_run_on_the_worker_loop_too(api: Api, worker: Process, admin: str) -> None:
    body = {"task": "multidb.broadcast", "kwargs": {"event": "notification", "data": {"n": 1}}}
    queued = body_of(api.post(RUNS, token=admin, json_body=body), 202)
    assert wait_for_run(api, admin, queued["taskId"])["result"] is True


def test_a_failed_run_names_the_error_type_but_not_its_message(api: Api, worker: Process, admin: str) -> None:
    # The API refuses such arguments (422), so the run is sent to the broker directly, as an
    # older producer could have: what the API reports of a failure is what is tested here.
    from multidb import runtime
    from multidb.queue import runs
    from multidb.queue.app import OWNER_HEADER
    from multidb.queue.tasks import add
    from multidb.redis import get_redis

    admin_id = str(get_user_id("admin"))
    task_id = str(uuid.uuid4())
    runtime.run(runs.queued(get_redis(), task_id, admin_id, "multidb.add"))
    add.apply_async((1, "x"), task_id=task_id, headers={OWNER_HEADER: admin_id})
    queued = {"taskId": task_id}
    run = wait_for_run(api, admin, queued["taskId"])
    assert run["state"] == "FAILURE"
    assert run["error"] == "TypeError"
    assert run["result"] is None
    assert "unsupported operand" not in str(run)


@pytest.mark.parametrize("header", ["api run", "schedule"])
@pytest.mark.parametrize("change", ["disabled", "task code taken away"])
def test_a_run_whose_owner_may_no_longer_run_it_is_refused_by_the_worker(
    api: Api, worker: Process, admin: str, header: str, change: str
) -> None:
    """Runs queued or scheduled before a user was disabled or lost TASK:<name> do not run:
    the worker checks the owner's live grants as each run starts (fails closed)."""
    from multidb import runtime
    from multidb.queue import runs
    from multidb.queue.app import OWNER_HEADER, SCHEDULE_OWNER_HEADER
    from multidb.queue.tasks import add
    from multidb.redis import get_redis

    owner = create_user("owner", codes=(task_code("multidb.add"),), role_status=change == "disabled")
    if change == "disabled":
        set_user(owner, status=False)
    invalidate_cache(owner)
    task_id = str(uuid.uuid4())
    runtime.run(runs.queued(get_redis(), task_id, owner, "multidb.add"))
    headers = {OWNER_HEADER if header == "api run" else SCHEDULE_OWNER_HEADER: owner}
    result = add.apply_async((2, 3), task_id=task_id, headers=headers)
    with pytest.raises(Exception, match=r"the owner of this run may no longer run multidb\.add") as refused:
        result.get(timeout=30)
    assert type(refused.value).__name__ == "RunRefused", refused.value
    # and an owner who still holds the code runs it
    allowed = create_user("allowed", codes=(task_code("multidb.add"),))
    assert add.apply_async((2, 3), headers={SCHEDULE_OWNER_HEADER: allowed}).get(timeout=30) == 5


def test_runs_of_others_are_hidden_but_admins_see_them(api: Api, worker: Process, admin: str) -> None:
    first, second = runner(api, "first"), runner(api, "second")
    queued = body_of(api.post(RUNS, token=first, json_body={"task": "multidb.ping"}), 202)
    wait_for_run(api, first, queued["taskId"])
    hidden = api.get(f"{RUNS}/{queued['taskId']}", token=second)
    assert hidden.status_code == 404
    assert body_of(api.get(f"{RUNS}/{queued['taskId']}", token=admin))["result"] == "pong"


def test_runs_are_listed_newest_first_to_their_owner_and_all_to_an_admin_with_filters(api: Api, admin: str) -> None:
    codes = (f"POST:{RUNS}", f"GET:{RUNS}", task_code("multidb.ping"), task_code("multidb.add"))
    first_id = create_user("first", "first-password", codes=codes)
    second_id = create_user("second", "second-password", codes=codes)
    first = api.login("first", "first-password").access
    second = api.login("second", "second-password").access
    later = {"countdown": 3600}  # queued, not run: the listing reads the run records
    mine = [
        body_of(api.post(RUNS, token=first, json_body={"task": task, **args, **later}), 202)["taskId"]
        for task, args in [("multidb.ping", {}), ("multidb.add", {"args": [1, 2]}), ("multidb.ping", {})]
    ]
    theirs = body_of(api.post(RUNS, token=second, json_body={"task": "multidb.ping", **later}), 202)["taskId"]

    page = body_of(api.get(f"{RUNS}?page=1&pageSize=2", token=first))
    assert (page["total"], [r["taskId"] for r in page["records"]]) == (3, mine[::-1][:2])  # newest first
    assert {r["ownerId"] for r in page["records"]} == {first_id}
    assert all(r["queuedAt"] and r["state"] == "PENDING" for r in page["records"])
    rest = body_of(api.get(f"{RUNS}?page=2&pageSize=2", token=first))
    assert [r["taskId"] for r in rest["records"]] == [mine[0]]
    # a user's filter for someone else is ignored: they see their own runs only
    spied = body_of(api.get(f"{RUNS}?userId={second_id}", token=first))
    assert theirs not in [r["taskId"] for r in spied["records"]]
    assert [r["taskId"] for r in body_of(api.get(f"{RUNS}?task=multidb.add", token=first))["records"]] == [mine[1]]

    everyone = body_of(api.get(f"{RUNS}?pageSize=100", token=admin))
    assert {theirs, *mine} <= {r["taskId"] for r in everyone["records"]}
    only_second = body_of(api.get(f"{RUNS}?userId={second_id}", token=admin))
    assert [r["taskId"] for r in only_second["records"]] == [theirs]
    pings_of_first = body_of(api.get(f"{RUNS}?userId={first_id}&task=multidb.ping", token=admin))
    assert [r["taskId"] for r in pings_of_first["records"]] == [mine[2], mine[0]]
    assert body_of(api.get(f"{RUNS}?pageSize=100", token=second))["total"] == 1

    # a run whose record expired leaves the listing, and the index a page read it from
    runtime.run(get_redis().delete(runs.run_key(mine[1])))
    page = body_of(api.get(f"{RUNS}?pageSize=100", token=first))
    assert ([r["taskId"] for r in page["records"]], page["total"]) == ([mine[2], mine[0]], 2)
    assert runtime.run(get_redis().zscore(runs.user_key(first_id), mine[1])) is None
    pings = body_of(api.get(f"{RUNS}?userId={first_id}&task=multidb.ping&pageSize=1&page=2", token=admin))
    assert ([r["taskId"] for r in pings["records"]], pings["total"]) == ([mine[0]], 2)


def test_paging_past_expired_runs_skips_no_live_one(api: Api) -> None:
    """A page drops the expired runs it meets and reads again: the next page starts right after
    the last run shown, so walking the pages shows every live run exactly once."""
    owner = "paging-owner"

    async def walk() -> list[str]:
        redis = get_redis()
        ids = [f"run-{n:02d}" for n in range(12)]
        for task_id in ids:
            await runs.queued(redis, task_id, owner, "multidb.ping")
        for expired in ("run-09", "run-08", "run-03"):  # newest first: runs 9 and 8 are on page 1
            await redis.delete(runs.run_key(expired))
        shown: list[str] = []
        for number in range(1, 5):
            page, _ = await runs.page(redis, number, 4, user=owner)
            shown += [task_id for task_id, _ in page]
        return shown

    shown = runtime.run(walk())
    assert shown == [f"run-{n:02d}" for n in (11, 10, 7, 6, 5, 4, 2, 1, 0)]


def test_an_unknown_run_is_404_and_a_malformed_id_422(api: Api, admin: str) -> None:
    assert api.get(f"{RUNS}/{uuid.uuid4()}", token=admin).status_code == 404
    assert api.get(f"{RUNS}/not-a-uuid", token=admin).status_code == 422


@pytest.mark.parametrize(
    "body",
    [
        {"task": "multidb.nope"},
        {"task": "celery.backend_cleanup"},
        {"task": "multidb.add", "args": [1]},
        {"task": "multidb.add", "args": [1, 2], "kwargs": {"z": 3}},
        {"task": "multidb.ping", "countdown": -1},
        {"task": "multidb.ping", "args": list(range(33))},
        {"task": "multidb.broadcast", "args": ["big", "x" * 20_000]},
        {"task": ""},
        {"args": []},
    ],
)
def test_a_bad_run_is_422_and_queues_nothing(api: Api, admin: str, body: dict[str, Any]) -> None:
    before = snapshot()
    response = api.post(RUNS, token=admin, json_body=body)
    assert response.status_code == 422, response.body
    assert response.json()["code"] == 422
    assert snapshot() == before


def test_an_unreachable_broker_is_503_and_leaves_no_run(api: Api, admin: str, monkeypatch: pytest.MonkeyPatch) -> None:
    point_celery_at("redis://127.0.0.1:9/0")  # the discard port: nothing listens
    before = snapshot()
    try:
        response = api.post(RUNS, token=admin, json_body={"task": "multidb.ping"})
    finally:
        point_celery_at(BROKER_URL)
    assert response.status_code == 503
    assert response.json() == {**response.json(), "code": 503, "data": None}
    assert "redis" not in response.body.decode().lower()
    assert snapshot() == before


def schedule(api: Api, token: str, **fields: Any) -> dict[str, Any]:
    body = {"name": "every-minute", "task": "multidb.ping", "intervalSeconds": 60, **fields}
    return body_of(api.post(SCHEDULES, token=token, json_body=body), 201)  # type: ignore[no-any-return]


def test_schedule_create_get_list_update_delete(api: Api, admin: str) -> None:
    created = schedule(api, admin, description="health check")
    assert created["intervalSeconds"] == 60
    assert created["crontab"] is None
    assert created["enabled"] is True
    assert created["lastRunAt"] is None
    assert created["totalRunCount"] == 0
    nightly = schedule(
        api, admin, name="nightly", task="multidb.add", args=[1, 2], intervalSeconds=None, crontab="0 3 * * *"
    )
    assert body_of(api.get(f"{SCHEDULES}/{created['id']}", token=admin)) == created

    page = body_of(api.get(f"{SCHEDULES}?pageSize=1", token=admin))
    assert (page["total"], page["pageSize"], [r["name"] for r in page["records"]]) == (2, 1, ["every-minute"])
    assert [r["name"] for r in body_of(api.get(f"{SCHEDULES}?keyword=add", token=admin))["records"]] == ["nightly"]

    # Sending a crontab replaces the interval, and an interval the crontab.
    changed = body_of(api.put(f"{SCHEDULES}/{created['id']}", token=admin, json_body={"crontab": "*/5 * * * *"}))
    assert (changed["crontab"], changed["intervalSeconds"]) == ("*/5 * * * *", None)
    changed = body_of(api.put(f"{SCHEDULES}/{nightly['id']}", token=admin, json_body={"intervalSeconds": 30}))
    assert (changed["crontab"], changed["intervalSeconds"]) == (None, 30)
    disabled = body_of(api.put(f"{SCHEDULES}/{nightly['id']}", token=admin, json_body={"enabled": False}))
    assert disabled["enabled"] is False
    assert [r["name"] for r in body_of(api.get(f"{SCHEDULES}?enabled=false", token=admin))["records"]] == ["nightly"]

    assert api.delete(f"{SCHEDULES}/{created['id']}", token=admin).status_code == 200
    assert api.get(f"{SCHEDULES}/{created['id']}", token=admin).status_code == 404
    assert api.delete(f"{SCHEDULES}/{created['id']}", token=admin).status_code == 404


def test_a_duplicate_schedule_name_is_409(api: Api, admin: str) -> None:
    schedule(api, admin)
    before = snapshot()
    duplicate = api.post(
        SCHEDULES, token=admin, json_body={"name": "every-minute", "task": "multidb.ping", "crontab": "* * * * *"}
    )
    assert duplicate.status_code == 409
    assert snapshot() == before


@pytest.mark.parametrize(
    "change",
    [
        {"intervalSeconds": None},
        {"crontab": "* * * * *"},
        {"intervalSeconds": 0},
        {"crontab": "99 * * * *", "intervalSeconds": None},
        {"crontab": "* * *", "intervalSeconds": None},
        {"crontab": "0 0 31 2 *", "intervalSeconds": None},
        {"crontab": "$(reboot) * * * *", "intervalSeconds": None},
        {"task": "multidb.nope"},
        {"task": "multidb.add"},
        {"args": [1, 2, 3]},
        {"name": ""},
        {"name": "bad/name"},
    ],
)
def test_a_bad_schedule_is_422_and_stores_nothing(api: Api, admin: str, change: dict[str, Any]) -> None:
    before = snapshot()
    body = {"name": "every-minute", "task": "multidb.ping", "intervalSeconds": 60, **change}
    response = api.post(SCHEDULES, token=admin, json_body=body)
    assert response.status_code == 422, response.body
    assert snapshot() == before
    assert body_of(api.get(SCHEDULES, token=admin))["total"] == 0


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"enabled": None},
        {"crontab": "61 * * * *"},
        {"crontab": "* * * * *", "intervalSeconds": 5},
        {"task": "multidb.add"},
    ],
)
def test_a_bad_schedule_update_is_422_and_changes_nothing(api: Api, admin: str, change: dict[str, Any]) -> None:
    created = schedule(api, admin)
    response = api.put(f"{SCHEDULES}/{created['id']}", token=admin, json_body=change)
    assert response.status_code == 422, response.body
    assert body_of(api.get(f"{SCHEDULES}/{created['id']}", token=admin)) == created


def test_updating_an_unknown_schedule_is_404(api: Api, admin: str) -> None:
    missing = api.put(f"{SCHEDULES}/{uuid.uuid4()}", token=admin, json_body={"enabled": False})
    assert missing.status_code == 404
