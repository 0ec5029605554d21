"""The first hour on `make dev`: the quickstart page's sessions run as written (curl and
openssl, Python without this repository, Node with socket.io-client), `make token`, and
`make invoke` on the running stack's datastores."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_local_stack import UA, Stack
from tests.helpers import ROOT

PAGE = ROOT / "docs" / "quickstart.md"
CLIENT = ROOT / "tests" / "fixtures" / "socketio_client"  # socket.io-client, installed by npm ci
# Never reinstall the shared venv from here: the suite runs after `make install`.
MAKE = ["make", "--no-print-directory", "-s", "-o", ".venv/.installed"]
TEST_ONLY = ("DATABASE_URL", "REDIS_URL", "BROKER_URL", "MONGO_URL", "S3_ENDPOINT_URL", "KEYS_DIR", "ADMIN_PASSWORD")


def snippets(language: str) -> str:
    """Every block of the page in `language`, in order: one session."""
    blocks = re.findall(rf"^```{language}\n(.*?)^```$", PAGE.read_text(), flags=re.MULTILINE | re.DOTALL)
    assert blocks, f"no {language} block in {PAGE}"
    return "\n".join(blocks)


def environment(stack: Stack, **more: str) -> dict[str, str]:
    """A new user's shell: no test settings, no PYTHONPATH; the stack's two URLs."""
    env = {k: v for k, v in os.environ.items() if k not in (*TEST_ONLY, "PYTHONPATH", "APP_ENV")}
    env.update(API=stack.url, SOCKET=f"http://127.0.0.1:{stack.ports['realtime']}", **more)
    return env


def run(command: list[str], env: dict[str, str], cwd: Path) -> list[str]:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{command[0]} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout.split("\n")[:-1]


def test_the_quickstarts_curl_and_openssl_session(stack: Stack, tmp_path: Path) -> None:
    script = "set -euo pipefail\n" + snippets("bash")
    assert run(["bash", "-c", script], environment(stack), tmp_path) == ["admin", "ready"]


def test_the_quickstarts_python_session_runs_without_this_repository(stack: Stack, tmp_path: Path) -> None:
    (tmp_path / "quickstart.py").write_text(snippets("python"))
    lines = run([sys.executable, "-I", "quickstart.py"], environment(stack), tmp_path)  # -I: no PYTHONPATH, no cwd
    assert lines == ["admin", "pong", "task:finished", "ready"]


def test_the_quickstarts_javascript_session_on_node(stack: Stack) -> None:
    node, npm = shutil.which("node"), shutil.which("npm")
    assert node, "Node.js is needed for the quickstart's JavaScript"
    assert npm, "npm is needed for the quickstart's JavaScript"
    if not (CLIENT / "node_modules" / "socket.io-client").is_dir():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=CLIENT, check=True, capture_output=True, timeout=120)
    script = CLIENT / f"quickstart-{os.getpid()}.mjs"  # beside node_modules, where imports resolve
    script.write_text(snippets("js"))
    try:
        lines = run([node, script.name], environment(stack), CLIENT)
    finally:
        script.unlink()
    assert lines == ["admin", "pong", "task:finished SUCCESS", "ready"]


def make_token(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    env = environment(stack, GATEWAY_PORT=str(stack.ports["gateway"]))
    return subprocess.run([*MAKE, "token", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_make_token_prints_an_access_token_and_nothing_else(stack: Stack) -> None:
    made = make_token(stack)  # admin and the local seed's password
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    info = httpx.get(f"{stack.url}/api/v1/auth/user/info", headers={"authorization": f"Bearer {token}", **UA})
    assert (info.status_code, info.json()["data"]["username"]) == (200, "admin")
    refused = make_token(stack, "USERNAME=admin", "PASSWORD=wrong-password")
    assert refused.returncode != 0
    assert refused.stdout == ""
    assert "make token: login refused: 401" in refused.stderr


def test_make_invoke_runs_on_make_devs_datastores_with_the_token_given(stack: Stack, state: Path) -> None:
    token = make_token(stack).stdout.strip()
    env = environment(
        stack,
        LOCAL_STATE_DIR=str(state),
        **{f"DEV_{name.upper()}_PORT": str(stack.ports[name]) for name in ("redis", "mongo", "s3")},
    )
    invoke = [*MAKE, "invoke", "FN=AuthFunction", f"TOKEN={token}"]
    done = subprocess.run(
        [*invoke, "EVENT=events/auth/user_info.json"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["statusCode"] == 200, answer
    assert json.loads(answer["body"])["data"]["username"] == "admin"
    # The logout lands in make dev's Redis: the running gateway refuses the token from then on.
    done = subprocess.run(
        [*invoke, "EVENT=events/auth/logout.json"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert json.loads(done.stdout)["statusCode"] == 200, done.stdout
    info = httpx.get(f"{stack.url}/api/v1/auth/user/info", headers={"authorization": f"Bearer {token}", **UA})
    assert info.status_code in (401, 403)


@pytest.mark.parametrize("origin", ["http://localhost:8080", "http://127.0.0.1:4173"])
def test_make_devs_gateway_answers_any_local_origin(stack: Stack, origin: str) -> None:
    preflight = {"origin": origin, "access-control-request-method": "POST", "access-control-request-headers": "x-a"}
    answer = httpx.options(f"{stack.url}/api/v1/auth/login", headers=preflight)
    assert answer.headers["access-control-allow-origin"] == origin
