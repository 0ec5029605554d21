"""TLS to Redis as production runs it (ElastiCache in transit, `rediss://` with AUTH): a real
redis-server speaking only TLS, with a certificate from a test CA that the processes trust
the way they trust a public CA (the system store, here `SSL_CERT_FILE`). The app's client,
a Celery worker and the Socket.IO relay all verify the certificate; a client that does not
trust the CA is refused."""

import datetime
import ipaddress
import os
import queue
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import socketio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from multidb import realtime, runtime
from multidb.queue.app import _config
from tests.processes import Process, free_port, listening, serving, wait_for

pytestmark = [pytest.mark.process, pytest.mark.first_pass_only("TLS to PostgreSQL and Redis: the deployed shape")]

PASSWORD = "tls-auth-token"


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A CA, and a server certificate for 127.0.0.1 / localhost signed by it."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("multidb test CA"))
        .issuer_name(_name("multidb test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    alt = x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    server = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(alt, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    folder = tmp_path_factory.mktemp("tls")
    ca, cert, key = certificates(folder)
    port = free_port()
    command = [
        "redis-server",
        *("--port", "0", "--tls-port", str(port)),
        *("--tls-cert-file", str(cert), "--tls-key-file", str(key), "--tls-ca-cert-file", str(ca)),
        *("--tls-auth-clients", "no", "--requirepass", PASSWORD, "--save", "", "--appendonly", "no"),
        *("--dir", str(folder)),
    ]
    with serving(Process("redis-tls", command), port, "redis-server with TLS"):
        yield f"rediss://:{PASSWORD}@127.0.0.1:{port}/0", ca


@pytest.fixture
def trusting(tls_redis: tuple[str, Path], monkeypatch: pytest.MonkeyPatch) -> str:
    """This process trusts the test CA as it trusts public ones; returns the rediss:// URL."""
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_redis[1]))
    return tls_redis[0]


def test_the_apps_redis_client_verifies_the_certificate(tls_redis: tuple[str, Path], configure: Any) -> None:
    from multidb.redis import get_redis

    url, ca = tls_redis
    configure(REDIS_URL=url)
    with pytest.raises(redis.exceptions.ConnectionError, match="certificate verify failed"):
        runtime.run(get_redis().ping())  # the CA is not trusted (yet)
    configure(REDIS_URL=url, SSL_CERT_FILE=str(ca))
    assert runtime.run(get_redis().ping()) is True


def test_a_celery_worker_runs_tasks_over_a_verified_rediss_broker(trusting: str, configure: Any) -> None:
    from celery import Celery

    configure(BROKER_URL=trusting)
    config = _config()
    worker = Process(
        "worker-tls",
        [sys.executable, "-m", "celery", "-A", "multidb.queue.app", "worker", "-P", "solo", "--without-gossip"],
        {"BROKER_URL": trusting, "SSL_CERT_FILE": os.environ["SSL_CERT_FILE"]},
    )
    try:
        client = Celery(broker=trusting, backend=trusting)
        client.conf.update(broker_use_ssl=config["broker_use_ssl"], redis_backend_use_ssl=config["broker_use_ssl"])
        assert client.send_task("multidb.add", (20, 22)).get(timeout=60) == 42, worker.log()
    finally:
        assert worker.stop() == 0, worker.log()


def test_socketio_relays_events_over_a_verified_rediss_channel(trusting: str, configure: Any, api: Any) -> None:
    from tests.conftest import ADMIN_PASSWORD

    token = api.login("admin", ADMIN_PASSWORD).access
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = Process(
        "realtime-tls",
        [sys.executable, "-m", "infra.services.realtime", "--port", str(port)],
        {"BROKER_URL": trusting, "SSL_CERT_FILE": os.environ["SSL_CERT_FILE"], "REALTIME_CORS_ORIGINS": url},
    )
    client = socketio.Client(reconnection=False)
    heard: queue.Queue[Any] = queue.Queue()
    client.on("message", heard.put)
    try:
        wait_for(lambda: listening(port) or not server.alive(), what="the Socket.IO server")
        client.connect(url, auth={"token": token}, transports=["websocket"], wait_timeout=10)
        configure(BROKER_URL=trusting)
        realtime._manager.cache_clear()
        runtime.run(realtime.emit("message", {"over": "tls"}))  # what functions and tasks call
        assert heard.get(timeout=10) == {"over": "tls"}
    finally:
        client.disconnect()
        realtime._manager.cache_clear()
        server.stop()


PG_BIN = Path("/usr/lib/postgresql")


@pytest.fixture(scope="module")
def tls_postgres() -> Iterator[tuple[str, Path]]:
    """A PostgreSQL server of its own that accepts only TLS (hostssl), as RDS Proxy does with
    RequireTLS; its certificate comes from the test CA."""
    # Not under pytest's folder: that one is root's alone, and PostgreSQL refuses to run as root.
    folder = Path(tempfile.mkdtemp(prefix="multidb-pg-tls-"))
    ca, cert, key = certificates(folder)
    (binaries,) = sorted(PG_BIN.glob("*/bin"))[-1:]
    data = folder / "data"
    shutil.chown(folder, "postgres")
    for path in (cert, key):
        shutil.chown(path, "postgres")
    key.chmod(0o600)
    subprocess.run(
        ["runuser", "-u", "postgres", "--", str(binaries / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"],
        check=True,
        capture_output=True,
    )
    (data / "pg_hba.conf").write_text("hostssl all all 127.0.0.1/32 trust\n")
    port = free_port()
    command = [
        *("runuser", "-u", "postgres", "--", str(binaries / "postgres"), "-D", str(data)),
        *("-p", str(port), "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={folder}"),
        *("-c", "ssl=on", "-c", f"ssl_cert_file={cert}", "-c", f"ssl_key_file={key}"),
    ]
    try:
        with serving(Process("postgres-tls", command), port, "PostgreSQL with TLS"):
            yield f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres?ssl=verify-full", ca
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_postgresql_verify_full_trusts_the_system_store_and_nothing_else(
    tls_postgres: tuple[str, Path], configure: Any
) -> None:
    """asyncpg given `ssl=verify-full` alone would look for ~/.postgresql/root.crt; ours uses the
    system store, where RDS Proxy's certificate chains."""
    from sqlalchemy import text

    from multidb.db import get_engine

    url, ca = tls_postgres

    async def encrypted() -> bool:
        async with get_engine().connect() as connection:
            query = text("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            return bool((await connection.execute(query)).scalar_one())

    configure(DATABASE_URL=url)
    with pytest.raises(Exception, match="certificate verify failed"):
        runtime.run(encrypted())
    configure(DATABASE_URL=url, SSL_CERT_FILE=str(ca))
    assert runtime.run(encrypted()) is True


def test_migrations_run_over_verify_full_too(tls_postgres: tuple[str, Path], configure: Any) -> None:
    from infra.deploy import initdb

    url, ca = tls_postgres
    configure(SSL_CERT_FILE=str(ca))
    initdb.migrate(url)  # the deploy step, through the same TLS arguments
