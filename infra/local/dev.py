"""`make dev`: the whole system on one machine, no Docker, under one supervisor.

Starts an embedded stand-in for every datastore that no environment variable points
elsewhere (SQLite needs no process), then the local gateway, the Socket.IO server, a
Celery worker and beat, and the admin console (Vite's dev server; DEV_CONSOLE=0 leaves it
out); prefixed, coloured logs (honcho); Ctrl-C stops everything. Set
REDIS_URL, BROKER_URL, MONGO_URL, S3_ENDPOINT_URL or DATABASE_URL to use real servers instead.
"""

import errno
import os
import shutil
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..deploy.template import load

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Plan:
    state: Path
    env: dict[str, str]
    processes: dict[str, str] = field(default_factory=dict)
    banner: list[str] = field(default_factory=list)
    # Every port it binds on 127.0.0.1, with the variable that moves it and what listens there.
    ports: dict[int, tuple[str, str]] = field(default_factory=dict)


# Under `make dev` (APP_ENV=LOCAL) the gateway and the Socket.IO server accept these besides
# their configured lists; a deployed stage accepts its lists alone.
LOCAL_ORIGINS = "any http://localhost:<port> or http://127.0.0.1:<port>"


def busy_port(ports: dict[int, tuple[str, str]], host: str = "127.0.0.1") -> str | None:
    """One line naming the first port something else holds, and the variable to change; else None."""
    for port, (variable, what) in ports.items():
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind
            try:
                probe.bind((host, port))
            except OSError as exc:
                why = "is in use" if exc.errno == errno.EADDRINUSE else f"cannot be bound ({exc.strerror})"
                return (
                    f"Port {port} ({what}) {why}: stop what holds it, or choose another port, "
                    f"e.g. make dev {variable}={_another(port)}"
                )
    return None


def listening(port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts connections on the port of 127.0.0.1."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def _another(port: int) -> int:
    return port + 100 if port + 100 < 65536 else port - 100


def plan(environ: dict[str, str]) -> Plan:
    """What to start and where, from the environment (pure: tested without starting anything)."""
    state = Path(environ.get("LOCAL_STATE_DIR", ROOT / ".local"))
    env = dict(environ)
    env.setdefault("APP_ENV", "LOCAL")
    env.setdefault("DATABASE_URL", f"sqlite+aiosqlite:///{state}/multidb.sqlite3")
    env.setdefault("KEYS_DIR", str(state / "keys"))
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "shared")])
    env["PYTHONUNBUFFERED"] = "1"
    python = sys.executable
    bin_dir = Path(python).parent
    gateway_port = int(environ.get("GATEWAY_PORT", "3000"))
    result = Plan(state, env)

    result.ports[gateway_port] = ("GATEWAY_PORT", "the gateway")

    def embedded(name: str, variable: str, url: str, command: str, port: tuple[int, str]) -> None:
        if environ.get(variable):
            result.banner.append(f"{name:<10} {environ[variable]} (from {variable})")
            return
        env[variable] = url
        result.processes[name.lower()] = command
        result.banner.append(f"{name:<10} {url} (embedded)")
        result.ports[port[0]] = (port[1], f"the embedded {name}")

    redis_port = int(environ.get("DEV_REDIS_PORT", "6390"))
    embedded(
        "Redis",
        "REDIS_URL",
        f"redis://127.0.0.1:{redis_port}/0",
        f"{python} -m infra.local.embedded_redis --port {redis_port} --snapshot {state}/redis.json",
        (redis_port, "DEV_REDIS_PORT"),
    )
    mongo_port = int(environ.get("DEV_MONGO_PORT", "27027"))
    embedded(
        "MongoDB",
        "MONGO_URL",
        f"mongodb://127.0.0.1:{mongo_port}",
        f"{bin_dir / 'secantusd-py'} --host 127.0.0.1 --port {mongo_port}"
        f" --storage-path {state}/mongo --log-level WARNING",
        (mongo_port, "DEV_MONGO_PORT"),
    )
    s3_port = int(environ.get("DEV_S3_PORT", "9000"))
    embedded(
        "S3",
        "S3_ENDPOINT_URL",
        f"http://127.0.0.1:{s3_port}",
        f"{python} -m infra.local.embedded_s3 -p {s3_port}",
        (s3_port, "DEV_S3_PORT"),
    )
    if "s3" in result.processes:  # the embedded server checks no signature: any key signs
        env.setdefault("AWS_ACCESS_KEY_ID", "local")
        env.setdefault("AWS_SECRET_ACCESS_KEY", "local")
        env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    sql = env["DATABASE_URL"]
    result.banner.insert(0, f"{'SQL':<10} {sql}{' (embedded)' if sql.startswith('sqlite') else ''}")
    options = " --isolate" if environ.get("ISOLATE") == "1" else ""
    if environ.get("PARAMETER_OVERRIDES"):
        options += f" --parameter-overrides {environ['PARAMETER_OVERRIDES']}"
    result.processes["gateway"] = f"{python} -m infra.local.gateway serve --port {gateway_port}{options}"
    result.banner.insert(0, f"{'Gateway':<10} http://127.0.0.1:{gateway_port}  (API docs: /docs)")

    realtime_port = int(environ.get("REALTIME_PORT", "3001"))
    result.ports[realtime_port] = ("REALTIME_PORT", "the Socket.IO server")
    result.processes["realtime"] = f"{python} -m infra.services.realtime --port {realtime_port}"
    result.banner.insert(1, f"{'Socket.IO':<10} http://127.0.0.1:{realtime_port}  (auth: {{token: <access token>}})")
    local = env["APP_ENV"] == "LOCAL"
    extra = f", {LOCAL_ORIGINS}" if local else ""
    realtime_origins = env.get("REALTIME_CORS_ORIGINS") or "http://localhost:5173"
    http_origins = ", ".join((load().cors or {}).get("AllowOrigins", [])) or "none"
    result.banner.insert(2, f"{'Origins':<10} HTTP: {http_origins} (CorsAllowOrigins){extra}")
    result.banner.insert(3, f"{'':<10} Socket.IO: {realtime_origins} (REALTIME_CORS_ORIGINS){extra}")
    # One process per role, as the containers run them; the solo pool keeps the worker small.
    celery = f"{python} -m celery -A multidb.queue.app"
    result.processes["worker"] = f"{celery} worker -P solo -l INFO -n dev@%h --without-gossip --without-mingle"
    result.processes["beat"] = f"{celery} beat -S multidb.queue.scheduler:DatabaseScheduler -l INFO"
    env.setdefault("BEAT_REFRESH_INTERVAL", "5")
    env.setdefault("SCHEDULE_MIN_INTERVAL", "5")  # try a schedule out without waiting a minute
    # The admin console (console/, Vite's dev server) on the origin CORS already allows; by
    # default where Node is installed (the Makefile installs its packages first).
    if (environ.get("DEV_CONSOLE") or ("1" if shutil.which("npm") else "0")) != "0":
        console_port = int(environ.get("CONSOLE_PORT", "5173"))
        result.ports[console_port] = ("CONSOLE_PORT", "the console")
        env["VITE_API_URL"] = f"http://127.0.0.1:{gateway_port}"
        env["VITE_SOCKET_URL"] = f"http://127.0.0.1:{realtime_port}"
        result.processes["console"] = f"npm --prefix console run dev -- --port {console_port}"
        result.banner.insert(2, f"{'Console':<10} http://localhost:{console_port}  (DEV_CONSOLE=0: without it)")
    broker = env.get("BROKER_URL") or env["REDIS_URL"]
    result.banner.append(
        f"{'Celery':<10} worker + beat on {broker} (schedules reloaded every {env['BEAT_REFRESH_INTERVAL']}s)"
    )
    return result


def main() -> int:
    from honcho.manager import Manager
    from honcho.printer import Printer

    # The state folder holds password hashes, keys and Redis data: only this user may read
    # it, and everything this supervisor and its children create is theirs alone.
    os.umask(0o077)
    current = plan(dict(os.environ))
    busy = busy_port(current.ports)
    if busy is not None:
        print(busy, file=sys.stderr, flush=True)
        return 2
    current.state.mkdir(parents=True, exist_ok=True)
    current.state.chmod(0o700)
    Path(current.env["KEYS_DIR"]).parent.mkdir(parents=True, exist_ok=True)
    # Migrations, the route catalogue and the admin user, against the same database.
    subprocess.run([sys.executable, "-m", "infra.deploy.initdb"], env=current.env, cwd=ROOT, check=True)
    print("Async-FastAPI-MultiDB, local (Ctrl-C stops everything)")
    for line in current.banner:
        print(f"  {line}")
    sys.stdout.flush()
    manager = Manager(Printer(sys.stdout))
    for name, command in current.processes.items():
        manager.add_process(name, command, env=current.env, cwd=str(ROOT))
    manager.loop()
    # Ctrl-C or SIGTERM that stopped every child cleanly is a clean exit.
    interrupted = manager.returncode in (128 + signal.SIGINT, 128 + signal.SIGTERM)
    if interrupted:
        print("all processes stopped", flush=True)
        return 0
    return manager.returncode or 0


if __name__ == "__main__":
    sys.exit(main())
