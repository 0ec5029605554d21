"""Refused logins in the audit log: anyone can cause them, so they are tallied (one entry per
username, address and window, with a count), and what a caller sends is stored without
control characters and cut to length — against the MongoDB server over TCP."""

from datetime import UTC, datetime
from typing import Any

import pytest

from multidb import audit, runtime
from multidb.documents import AuditEntry
from multidb.mongo import database, init_documents
from tests.conftest import ADMIN_PASSWORD
from tests.helpers import Api, create_user

LOGIN = "/api/v1/auth/login"


@pytest.fixture(autouse=True)
def empty_log(empty_files: None) -> None:
    async def clear() -> None:
        await init_documents(AuditEntry, build_indexes=True)
        await database()[audit.COLLECTION].delete_many({})
        await database()["counters"].delete_many({})

    runtime.run(clear())
    audit._down_until = 0.0


def stored(**where: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = runtime.run(
        database()[audit.COLLECTION].find({"action": "auth.login", "outcome": "failure", **where}).to_list()
    )
    return found


def refuse(api: Api, username: str, password: str, **request: Any) -> int:
    response = api.post(LOGIN, json_body={"username": username, "password": password}, **request)
    assert response.status_code in (401, 429), response.body
    return response.status_code


def test_three_hundred_refused_logins_of_one_username_from_one_address_are_one_entry(api: Api) -> None:
    alice = create_user("alice", "alice-password")
    guess = api.encrypt("guess")
    statuses = [refuse(api, "alice", guess, source_ip="10.9.8.7") for _ in range(300)]
    assert statuses.count(429) == 295  # the limit refused these without a password check

    (entry,) = stored()
    assert entry["events"] == 300
    assert entry["details"] == {"username": "alice", "reasons": {"wrong_password": 5, "rate_limited": 295}}
    assert (entry["user_id"], entry["target_id"], entry["ip"]) == (alice, alice, "10.9.8.7")
    assert entry["at"] <= entry["last_at"]
    assert entry["seq"] == 1  # numbered when opened: the log has no gap

    admin = api.login("admin", ADMIN_PASSWORD).access
    page = api.get("/api/v1/audit?outcome=failure", token=admin).json()["data"]
    assert page["total"] == 1
    assert (page["records"][0]["events"], page["records"][0]["seq"]) == (300, 1)
    assert page["records"][0]["lastAt"]


def test_each_username_and_address_has_its_own_entry(api: Api) -> None:
    guess = api.encrypt("guess")
    for username, address in [("alice", "10.0.0.1"), ("bob", "10.0.0.1"), ("alice", "10.0.0.2"), ("alice", "10.0.0.1")]:
        refuse(api, username, guess, source_ip=address)
    counts = {(e["details"]["username"], e["ip"]): e["events"] for e in stored()}
    assert counts == {("alice", "10.0.0.1"): 2, ("bob", "10.0.0.1"): 1, ("alice", "10.0.0.2"): 1}
    assert sorted(e["seq"] for e in stored()) == [1, 2, 3]


def test_a_new_window_opens_a_new_entry(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    guess = api.encrypt("guess")
    moments = iter([datetime(2026, 1, 1, 0, 14, tzinfo=UTC), datetime(2026, 1, 1, 0, 16, tzinfo=UTC)])

    class Clock(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> "Clock":
            moment = next(moments)
            return cls.fromtimestamp(moment.timestamp(), tz)

    monkeypatch.setattr(audit, "datetime", Clock)
    refuse(api, "alice", guess)  # 00:14, in the window from 00:00 (LOGIN_FAILURE_WINDOW: 900 s)
    refuse(api, "alice", guess)  # 00:16, in the one from 00:15
    windows = sorted((e["window"], e["events"]) for e in stored())
    assert [(w.strftime("%H:%M"), n) for w, n in windows] == [("00:00", 1), ("00:15", 1)]


def test_stored_text_has_no_control_characters_and_is_bounded(api: Api) -> None:
    forged = "admin\r\n[2026-01-01] auth.login success\u202e\u2028"  # (a NUL in a username is the input check's 422)
    user_agent = "Mozilla\r\nX-Forged: 1\x00" + "A" * 400  # the route takes up to 512 characters
    refuse(api, forged, api.encrypt("guess"), user_agent=user_agent)
    (entry,) = stored()
    assert entry["details"]["username"] == "admin[2026-01-01] auth.login success"
    assert entry["user_agent"].startswith("MozillaX-Forged: 1AAA")
    assert len(entry["user_agent"]) == audit.MAX_TEXT


def test_an_address_opens_a_bounded_number_of_entries_per_window(api: Api) -> None:
    """A flood over many usernames from one address: the first TALLIES_PER_ADDRESS usernames
    have their own entries, the rest count in one shared entry."""
    guess = api.encrypt("guess")
    extra = 7
    for number in range(audit.TALLIES_PER_ADDRESS + extra):
        refuse(api, f"sprayed-{number}", guess, source_ip="10.6.6.6")
    refuse(api, "someone", guess, source_ip="10.7.7.7")
    mine = stored(ip="10.6.6.6")
    assert len(mine) == audit.TALLIES_PER_ADDRESS + 1
    (others,) = [e for e in mine if e["details"]["username"] == audit.OTHERS]
    assert (others["events"], others["user_id"]) == (extra, None)
    assert len(stored(ip="10.7.7.7")) == 1  # another address is not crowded out


def test_all_addresses_together_open_a_bounded_number_of_entries_per_window(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flood from many addresses (a botnet, an IPv6 range): past TALLIES_PER_WINDOW entries,
    every new username and address counts in one entry."""
    monkeypatch.setattr(audit, "TALLIES_PER_WINDOW", 3)
    monkeypatch.setattr(audit, "_full_windows", set())
    guess = api.encrypt("guess")
    for number in range(8):
        refuse(api, f"user-{number}", guess, source_ip=f"10.5.0.{number}")
    refuse(api, "user-0", guess, source_ip="10.5.0.0")  # an entry opened before still counts its own
    entries = {(e["details"]["username"], e["ip"]): e["events"] for e in stored()}
    assert entries == {
        ("user-0", "10.5.0.0"): 2,
        ("user-1", "10.5.0.1"): 1,
        ("user-2", "10.5.0.2"): 1,
        (audit.OTHERS, audit.OTHERS): 5,
    }


def test_concurrent_refusals_open_one_entry_and_take_one_number(api: Api) -> None:
    """Twenty requests racing to open the same tally: one opens it, all count, and only the
    opener takes a number (the log stays without a gap)."""
    import asyncio

    from multidb import logs

    async def race() -> None:
        logs.client_ip.set("10.4.4.4")
        await asyncio.gather(
            *(audit.tally("auth.login", subject="raced", reason="wrong_password", window=900) for _ in range(20))
        )
        await audit.record("auth.logout")  # the next entry takes the next number

    runtime.run(race())
    (entry,) = stored()
    assert (entry["events"], entry["seq"]) == (20, 1)
    assert [e["seq"] for e in runtime.run(database()[audit.COLLECTION].find({}).sort("seq").to_list())] == [1, 2]
