"""Schedules and runs have an owner and limits: another user's schedules do not exist for a
user (an admin sees them), a user owns a bounded number of schedules that run no more often
than the minimum interval, runs are limited per minute and while queued, and a task needs its
own code; a run pushes only notices (issue #8's holes 2, 3 and 18, through the real
handlers)."""

from typing import Any

import pytest

from multidb import runtime
from multidb.rbac import task_code
from multidb.redis import get_redis
from tests.helpers import Api, create_user, get_user_id, snapshot

RUNS = "/api/v1/tasks/runs"
SCHEDULES = "/api/v1/tasks/schedules"


# ---- 2. schedules have an owner and limits ---------------------------------------------------

SCHEDULER_CODES = (
    f"GET:{SCHEDULES}",
    f"POST:{SCHEDULES}",
    f"GET:{SCHEDULES}/{{schedule_id}}",
    f"PUT:{SCHEDULES}/{{schedule_id}}",
    f"DELETE:{SCHEDULES}/{{schedule_id}}",
    task_code("multidb.ping"),
)


def scheduler(api: Api, name: str, *extra: str) -> str:
    create_user(name, f"{name}-password", codes=(*SCHEDULER_CODES, *extra))
    return api.login(name, f"{name}-password").access


def new_schedule(api: Api, token: str, name: str = "mine", **fields: Any) -> Any:
    body = {"name": name, "task": "multidb.ping", "intervalSeconds": 60, **fields}
    return api.post(SCHEDULES, token=token, json_body=body)


def test_schedules_of_others_do_not_exist_for_a_user_but_do_for_an_admin(api: Api, admin: str) -> None:
    alice, bob = scheduler(api, "alice"), scheduler(api, "bob")
    alices = new_schedule(api, alice).json()["data"]
    assert alices["ownerId"] == get_user_id("alice")
    assert new_schedule(api, bob).status_code == 201  # names are unique per owner only
    before = snapshot()
    for method, body in [("GET", None), ("PUT", {"task": "multidb.ping", "intervalSeconds": 1}), ("DELETE", None)]:
        response = api.request(method, f"{SCHEDULES}/{alices['id']}", token=bob, json_body=body)
        assert (response.status_code, response.json()["message"]) == (404, "schedule not found")
    assert snapshot() == before
    listed = api.get(SCHEDULES, token=bob).json()["data"]
    assert [r["ownerId"] for r in listed["records"]] == [get_user_id("bob")]
    assert api.get(SCHEDULES, token=admin).json()["data"]["total"] == 2
    assert api.get(f"{SCHEDULES}/{alices['id']}", token=admin).status_code == 200


def test_a_user_owns_at_most_the_configured_number_of_schedules(api: Api, configure: Any) -> None:
    configure(SCHEDULES_PER_USER=2)
    alice = scheduler(api, "alice")
    assert new_schedule(api, alice, "one").status_code == 201
    assert new_schedule(api, alice, "two").status_code == 201
    before = snapshot()
    third = new_schedule(api, alice, "three")
    assert third.status_code == 429
    assert int(third.headers["retry-after"]) > 0
    assert snapshot() == before


def test_a_schedule_runs_no_more_often_than_the_minimum_interval(api: Api, configure: Any) -> None:
    configure(SCHEDULE_MIN_INTERVAL=60)
    alice = scheduler(api, "alice")
    too_often = new_schedule(api, alice, intervalSeconds=1)
    assert too_often.status_code == 422
    assert too_often.json()["data"] == [{"field": "intervalSeconds", "message": "at least 60"}]
    created = new_schedule(api, alice, intervalSeconds=60).json()["data"]
    assert api.put(f"{SCHEDULES}/{created['id']}", token=alice, json_body={"intervalSeconds": 5}).status_code == 422


@pytest.mark.parametrize(
    ("crontab", "allowed"),
    [
        ("* * * * *", False),  # every minute
        ("0,30 * * * *", False),  # 30 minutes apart
        ("59 0,1 * * *", False),  # 00:59 and 01:59: an hour apart, refused against a minimum of 3601 s
        ("0 * * * *", True),  # hourly
        ("0 3 * * 1", True),  # weekly
        ("15,45 9 * * *", False),  # 09:15 and 09:45
    ],
)
def test_a_crontab_runs_no_more_often_than_the_minimum_interval(
    api: Api, configure: Any, crontab: str, allowed: bool
) -> None:
    configure(SCHEDULE_MIN_INTERVAL=3600 if crontab != "59 0,1 * * *" else 3601)
    alice = scheduler(api, "alice")
    response = new_schedule(api, alice, intervalSeconds=None, crontab=crontab)
    if allowed:
        assert response.status_code == 201, response.json()
        return
    assert response.status_code == 422, response.json()
    assert response.json()["data"][0]["field"] == "crontab"


def test_scheduling_a_task_needs_its_code(api: Api) -> None:
    create_user("mallory", "mallory-password", codes=SCHEDULER_CODES)
    mallory = api.login("mallory", "mallory-password").access
    body = {"name": "spam", "task": "multidb.broadcast", "args": ["notification", {"x": 1}], "intervalSeconds": 60}
    assert api.post(SCHEDULES, token=mallory, json_body=body).status_code == 403


RUNNER_CODES = (f"POST:{RUNS}", task_code("multidb.ping"), task_code("multidb.notify"))


def test_runs_per_minute_are_limited_per_user(api: Api, configure: Any) -> None:
    configure(TASK_RUNS_PER_MINUTE=3)
    create_user("alice", "alice-password", codes=RUNNER_CODES)
    create_user("bob", "bob-password", codes=RUNNER_CODES)
    alice, bob = api.login("alice", "alice-password").access, api.login("bob", "bob-password").access
    run = {"task": "multidb.ping", "countdown": 3600}  # stays queued: nothing runs it meanwhile
    assert [api.post(RUNS, token=alice, json_body=run).status_code for _ in range(4)] == [202, 202, 202, 429]
    assert api.post(RUNS, token=bob, json_body=run).status_code == 202  # others are not starved


def test_queued_runs_are_limited_per_user(api: Api, configure: Any) -> None:
    configure(TASK_RUNS_QUEUED=2)
    create_user("alice", "alice-password", codes=RUNNER_CODES)
    alice = api.login("alice", "alice-password").access
    run = {"task": "multidb.ping", "countdown": 3600}
    statuses = [api.post(RUNS, token=alice, json_body=run) for _ in range(3)]
    assert [r.status_code for r in statuses] == [202, 202, 429]
    assert statuses[-1].headers["retry-after"] == "30"
    # A refused run does not use up the rate either.
    assert runtime.run(get_redis().get(f"tasks:rate:{get_user_id('alice')}")) == "2"


# ---- 3. task runs push only notices, and only with their own codes ---------------------------


@pytest.mark.parametrize("event", ["task:finished", "disconnect", "session:revoked", "connect", ""])
def test_notify_cannot_push_system_events(api: Api, admin: str, event: str) -> None:
    before = snapshot()
    body = {"task": "multidb.notify", "args": [get_user_id("admin"), event, {"url": "https://evil.example"}]}
    response = api.post(RUNS, token=admin, json_body=body)
    assert response.status_code == 422
    assert response.json()["data"] == [{"field": "event", "message": "Input should be 'notification' or 'message'"}]
    broadcast = api.post(RUNS, token=admin, json_body={"task": "multidb.broadcast", "args": [event]})
    assert broadcast.status_code == 422
    assert snapshot() == before


def test_notify_and_broadcast_need_their_own_codes(api: Api) -> None:
    create_user("runner", "runner-password", codes=(f"POST:{RUNS}", task_code("multidb.ping")))
    runner = api.login("runner", "runner-password").access
    assert api.post(RUNS, token=runner, json_body={"task": "multidb.ping", "countdown": 60}).status_code == 202
    for task, args in [("multidb.notify", [get_user_id("admin"), "message"]), ("multidb.broadcast", ["message"])]:
        response = api.post(RUNS, token=runner, json_body={"task": task, "args": args})
        assert response.status_code == 403
        assert task_code(task) in response.json()["message"]
