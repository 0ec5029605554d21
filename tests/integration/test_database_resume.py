"""A database that is not answering yet (Aurora resuming from auto-pause): one retry, then 503.

A forwarder in front of the real PostgreSQL accepts a connection and says nothing, as a
paused Aurora Serverless v2 instance does while it resumes, for as many connections as a
test asks; the next ones reach PostgreSQL. The connect timeout is shortened so that each
case takes about a second.
"""

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient
from sqlalchemy import text

from multidb import db, runtime
from multidb.api.app import create_app
from tests.conftest import PG_DATABASE, USE_POSTGRES

pytestmark = [
    pytest.mark.first_pass_only("PostgreSQL resuming"),
    pytest.mark.skipif(not USE_POSTGRES, reason="needs the PostgreSQL server"),
]

TIMEOUT = 0.5  # seconds per connection attempt in these tests


class Resuming:
    """A TCP forwarder to PostgreSQL that leaves its first `held` connections unanswered."""

    def __init__(self, held: int) -> None:
        self.held = held
        self.accepted = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.silent: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            self.accepted += 1
            if self.accepted <= self.held:
                self.silent.append(client)  # connected, never answered: the client times out
                continue
            upstream = socket.create_connection(("127.0.0.1", 5432))
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pump, args=(source, target), daemon=True).start()

    def close(self) -> None:
        self.listener.close()
        for held in self.silent:
            held.close()


def _pump(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            target.sendall(data)
    except OSError:
        pass
    finally:
        for end in (source, target):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def resuming(configure: Callable[..., None]) -> Iterator[Callable[[int], Resuming]]:
    made: list[Resuming] = []

    def start(held: int) -> Resuming:
        forwarder = Resuming(held)
        made.append(forwarder)
        configure(
            DATABASE_URL=f"postgresql+asyncpg://postgres@127.0.0.1:{forwarder.port}/{PG_DATABASE}",
            DATABASE_CONNECT_TIMEOUT=TIMEOUT,
        )
        return forwarder

    yield start
    runtime.run(db.close())
    for forwarder in made:
        forwarder.close()


async def _select_one() -> Any:
    async with db.session_scope() as session:
        return (await session.exec(text("SELECT 1"))).scalar_one()  # type: ignore[call-overload]


def test_a_database_that_answers_the_second_attempt_serves_the_request(resuming: Callable[[int], Resuming]) -> None:
    forwarder = resuming(1)  # the first connection times out, as while Aurora resumes
    assert runtime.run(_select_one()) == 1
    assert forwarder.accepted == 2


def test_a_database_that_answers_neither_attempt_is_unavailable_with_retry_after(
    resuming: Callable[[int], Resuming],
) -> None:
    forwarder = resuming(2)
    with pytest.raises(db.DatabaseUnavailable) as raised:
        runtime.run(_select_one())
    assert forwarder.accepted == 2  # one retry, no more
    assert raised.value.retry_after == db.RESUME_SECONDS
    assert runtime.run(_select_one()) == 1  # awake now: the next request is served


def test_a_route_answers_503_with_retry_after_while_the_database_resumes(
    resuming: Callable[[int], Resuming],
) -> None:
    from multidb.api.sql import SessionDep

    router = APIRouter(prefix="/api/v1/probe")

    @router.get("")
    async def probe(session: SessionDep) -> dict[str, int]:
        return {"one": (await session.exec(text("SELECT 1"))).scalar_one()}  # type: ignore[call-overload]

    resuming(2)
    client = TestClient(create_app("probe", router))
    response = client.get("/api/v1/probe")
    assert response.status_code == 503
    assert response.headers["retry-after"] == str(db.RESUME_SECONDS)
    body = response.json()
    assert (body["code"], body["error"]) == (503, "database_unavailable")
    assert "Timeout" not in response.text  # no internals
    assert "127.0.0.1" not in response.text
    assert client.get("/api/v1/probe").json() == {"one": 1}


def test_a_server_that_refuses_the_credentials_is_not_retried(configure: Callable[..., None]) -> None:
    """An answer from the server (here: no such database) is the server's word, not an outage."""
    configure(
        DATABASE_URL="postgresql+asyncpg://postgres@127.0.0.1:5432/no_such_database_here",
        DATABASE_CONNECT_TIMEOUT=TIMEOUT,
    )
    try:
        with pytest.raises(Exception, match="no_such_database_here") as raised:
            runtime.run(_select_one())
        assert not isinstance(raised.value, db.DatabaseUnavailable)
    finally:
        runtime.run(db.close())


def test_pool_size_zero_holds_no_connection_between_units_of_work(configure: Callable[..., None]) -> None:
    """What lets an auto-pausing Aurora pause while beat or Socket.IO idle (DATABASE_POOL_SIZE=0)."""

    async def backends() -> int:
        async with db.session_scope() as session:
            query = (
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            return int((await session.exec(text(query))).scalar_one())  # type: ignore[call-overload]

    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{PG_DATABASE}"
    try:
        configure(DATABASE_URL=url, DATABASE_POOL_SIZE=0)
        before = runtime.run(backends())
        runtime.run(_select_one())
        assert runtime.run(backends()) == before  # the unit of work's connection was closed
        assert db.get_engine().pool.__class__.__name__ == "NullPool"
    finally:
        runtime.run(db.close())


def test_verify_full_trusts_amazon_rds_roots_beside_the_system_store() -> None:
    """Without RDS Proxy (dev) the functions meet Aurora's own certificate, signed by an RDS
    root (rds-ca-rsa2048-g1, the stack's choice); RDS Proxy's is public (ACM)."""
    _, arguments = db.tls_arguments("postgresql+asyncpg://u:p@cluster.example:5432/multidb?ssl=verify-full")
    context = arguments["ssl"]
    subjects = {
        dict(part[0] for part in certificate["subject"]).get("commonName") for certificate in context.get_ca_certs()
    }
    assert "Amazon RDS us-east-1 Root CA RSA2048 G1" in subjects
    assert context.check_hostname is True
    assert context.verify_mode.name == "CERT_REQUIRED"
