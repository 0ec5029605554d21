"""MongoDB over a real TCP wire-protocol server (SecantusDB): PyMongo async client and Beanie 2."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from beanie import Document, Indexed
from pymongo.errors import DuplicateKeyError

from multidb import mongo, runtime
from tests.helpers import reset_clients
from tests.processes import free_port

pytestmark = pytest.mark.first_pass_only("MongoDB is the same server in both passes")


@pytest.fixture(scope="module")
def mongo_url() -> Iterator[str]:
    port = free_port()
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "secantusd-py"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--storage-path",
            ":memory:",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            assert server.poll() is None, "the MongoDB-compatible server exited"
            time.sleep(0.1)
    try:
        yield f"mongodb://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture
def client(mongo_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("MONGO_URL", mongo_url)
    monkeypatch.setenv("MONGO_DATABASE", os.environ["MONGO_DATABASE"])
    reset_clients()
    mongo._mongo.cache_clear()
    yield
    runtime.run(mongo.get_mongo().close())
    mongo._mongo.cache_clear()
    monkeypatch.undo()
    reset_clients()


class Counter(Document):
    name: Indexed(str, unique=True)  # type: ignore[valid-type]
    value: int = 0

    class Settings:
        name = "counters"


def test_the_client_is_created_once_and_reaches_the_server(client: None) -> None:
    assert mongo.get_mongo() is mongo.get_mongo()
    assert runtime.run(mongo.get_mongo().admin.command("ping"))["ok"] == 1


def test_beanie_documents_with_a_unique_index(client: None) -> None:
    async def scenario() -> tuple[int, bool]:
        await mongo.init_documents(Counter, build_indexes=True)
        await mongo.init_documents(Counter, build_indexes=True)  # the second call is free
        await Counter.find_all().delete()
        await Counter(name="logins").insert()
        await Counter.find_one(Counter.name == "logins").inc({Counter.value: 2})  # type: ignore[union-attr]
        duplicate = False
        try:
            await Counter(name="logins").insert()
        except DuplicateKeyError:
            duplicate = True
        counter = await Counter.find_one(Counter.name == "logins")
        assert counter is not None
        return counter.value, duplicate

    assert runtime.run(scenario()) == (2, True)


def test_no_mongo_connection_without_use() -> None:
    code = "import sys; sys.path[:0] = ['shared']; import multidb.mongo; print('pymongo' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path(__file__).parents[2]
    )
    assert out.stdout.strip() == "False"
