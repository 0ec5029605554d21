"""The built TypeScript kit in a real Chromium page on another origin, against `make dev`.

The page is served from http://localhost:5173 (a free port when that one is busy) by a static server
in the test; the stack runs with 60-second access tokens so an expiry happens within the test.
"""

import hashlib
import http.server
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import httpx
import pytest

from tests.e2e import test_local_stack as local
from tests.processes import free_port
from tests.typescript_kit import KIT, build

ACCESS_TTL = 60  # the shortest ACCESS_TOKEN_TTL the settings accept
PAGE = """<!doctype html>
<meta charset="utf-8"><title>kit</title>
<script type="importmap">
{"imports": {"socket.io-client": "/node_modules/socket.io-client/dist/socket.io.esm.min.js"}}
</script>
<script type="module">
import * as kit from "/dist/index.js";
const params = new URLSearchParams(location.search);
window.calls = [];
const logged = async (input, init) => {
  const response = await fetch(input, init);
  window.calls.push(`${init?.method ?? "GET"} ${new URL(String(input)).pathname} ${response.status}`);
  return response;
};
window.kit = kit;
window.client = kit.createClient({
  baseUrl: params.get("api"), socketUrl: params.get("socket"), fetch: logged, autoRefresh: params.get("auto") !== "0",
});
window.ready = true;
</script>
"""


class Site(http.server.SimpleHTTPRequestHandler):
    """The kit's folder (dist/ and socket.io-client's browser build) and the test page."""

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        if path == "/index.html":
            body = PAGE.encode()
            self.send_response(200)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif path.startswith(("/dist/", "/node_modules/socket.io-client/dist/")):
            super().do_GET()
        else:
            self.send_error(404)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def origin() -> Iterator[str]:
    build()
    port = free_port(5173)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), partial(Site, directory=str(KIT)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://localhost:{port}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, origin: str) -> Iterator[local.Stack]:
    state = tmp_path_factory.mktemp("kit-dev")
    ports = {"gateway": free_port(), **{name: free_port() for name in ("redis", "mongo", "s3", "realtime")}}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(local, "ORIGIN", origin)  # the Socket.IO origin start() allows
        patch.setenv("PARAMETER_OVERRIDES", f"CorsAllowOrigins={origin}")
        patch.setenv("ACCESS_TOKEN_TTL", str(ACCESS_TTL))
        patch.setenv("REALTIME_SWEEP_INTERVAL", "2")
        running = local.start(state, ports, state / "dev.log")
    yield running
    if running.process.poll() is None:
        local.stop(running)


@pytest.fixture
def browser() -> Iterator[Any]:
    """Per test: sync Playwright runs an event loop, which the suite's per-test reset must not meet."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=local.CHROMIUM, args=["--headless", *local.CHROMIUM_ARGS])
        yield chromium
        chromium.close()


@pytest.fixture
def open_page(browser: Any, origin: str, stack: local.Stack) -> Iterator[Callable[..., Any]]:
    contexts: list[Any] = []

    def open_(context: Any = None, *, auto: bool = True) -> Any:
        if context is None:
            context = browser.new_context()
            contexts.append(context)
        page = context.new_page()
        query = f"api={stack.url}&socket=http://127.0.0.1:{stack.ports['realtime']}&auto={int(auto)}"
        page.goto(f"{origin}/index.html?{query}")
        page.wait_for_function("window.ready === true")
        return page

    yield open_
    for context in contexts:
        context.close()


def poll(condition: Callable[[], bool], timeout: float, what: str, detail: Callable[[], Any] = str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}: {detail()}"
        time.sleep(0.5)


def test_log_in_call_hear_a_task_and_log_out(open_page: Callable[..., Any], stack: local.Stack) -> None:
    page = open_page()
    result = page.evaluate(
        """async (api) => {
        const c = window.client;
        let refused;
        try { await c.login("admin", "wrong password"); } catch (e) { refused = [e.name, e.status, e.error]; }
        const session = await c.login("admin", "123456");
        const me = await c.get("/api/v1/auth/user/info");
        let missing;
        try { await c.get("/api/v1/files/{file_id}", {path: {file_id: "000000000000000000000000"}}); }
        catch (e) { missing = [e.status, e.error]; }
        const rt = c.socket();
        await rt.once("connect");
        const pong = await rt.emitWithAck("ping", null, {timeout: 5000});
        const finished = rt.once("task:finished", 30000);
        const run = await c.post("/api/v1/tasks/runs", {body: {task: "multidb.add", args: [2, 40]}});
        const heard = await finished;
        await c.logout();
        let after;
        try { await c.get("/api/v1/auth/user/info"); } catch (e) { after = [e.status, e.error]; }
        const bearer = {authorization: `Bearer ${session.accessToken}`};
        const old = await fetch(api + "/api/v1/auth/user/info", {headers: bearer});
        return {
          refused, missing, username: me.username, pong, runId: run.taskId, heard, connected: rt.connected,
          after, oldStatus: old.status, device: localStorage.getItem("multidb:device:admin") !== null,
          stored: localStorage.getItem("multidb:session"),
        };
    }""",
        stack.url,
    )
    assert result["refused"] == ["ApiError", 401, "bad_credentials"]
    assert result["missing"][0] == 404
    assert result["username"] == "admin"
    assert result["pong"] == "pong"
    assert result["heard"] == {"taskId": result["runId"], "task": "multidb.add", "state": "SUCCESS"}
    assert result["device"] is True  # kept for the next login of this user
    assert result["connected"] is False  # logout ended the socket
    assert result["after"] == [401, "gateway_unauthorized"]  # no session: no token sent
    assert result["oldStatus"] in (401, 403)  # the logged-out token is refused
    assert result["stored"] is None


def session_token(page: Any) -> str | None:
    return page.evaluate("async () => (await window.client.current())?.accessToken ?? null")  # type: ignore[no-any-return]


def test_two_tabs_refresh_at_once_and_a_token_expires_mid_session(
    open_page: Callable[..., Any], browser: Any, stack: local.Stack
) -> None:
    # two tabs of one browser profile: they share localStorage, Web Locks and BroadcastChannel
    tab_a = open_page()
    tab_b = open_page(tab_a.context)
    first = tab_a.evaluate('async () => (await window.client.login("admin", "123456")).accessToken')
    poll(lambda: session_token(tab_b) == first, 10, "tab B to share the session")
    # two more profiles that never refresh ahead: only an expiry signal can tell them
    late = open_page(auto=False)  # HTTP only: the gateway's denial
    stale = late.evaluate('async () => (await window.client.login("admin", "123456")).accessToken')
    listening = open_page(auto=False)  # a socket only: the server's sweep ends it at exp
    listening.evaluate(
        """async () => {
        await window.client.login("admin", "123456");
        window.rt = window.client.socket();
        window.heard = [];
        for (const name of ["connect", "disconnect", "connect_error", "session:revoked"]) {
          window.rt.on(name, (payload) => window.heard.push([name, payload]));
        }
        await window.rt.once("connect");
    }"""
    )

    # both tabs refresh at the same instant
    at = time.time() * 1000 + 700
    script = """async (at) => {
        const stale = (await window.client.current()).accessToken;  // both tabs hold the same one
        window.race = new Promise((ok) => setTimeout(() => ok(window.client.refresh(stale)), at - Date.now()));
    }"""
    tab_a.evaluate(script, at)
    tab_b.evaluate(script, at)
    raced = [tab.evaluate("async () => (await window.race)?.accessToken ?? null") for tab in (tab_a, tab_b)]
    assert raced[0] is not None
    assert raced[0] != first
    assert raced[0] == raced[1]
    calls = tab_a.evaluate("window.calls") + tab_b.evaluate("window.calls")
    assert [c for c in calls if "/token/refresh" in c] == ["POST /api/v1/auth/token/refresh 200"]  # one refresh

    # the tabs' timers come due together (a fifth of 60 s before exp): still one refresh, session kept
    poll(lambda: session_token(tab_a) not in (None, raced[0]), ACCESS_TTL + 15, "the timer's refresh")
    poll(lambda: session_token(tab_b) == session_token(tab_a), 10, "tab B to adopt tab A's pair")
    calls = tab_a.evaluate("window.calls") + tab_b.evaluate("window.calls")
    assert [c for c in calls if "/token/refresh" in c] == ["POST /api/v1/auth/token/refresh 200"] * 2
    for tab in (tab_a, tab_b):
        assert tab.evaluate('async () => (await window.client.get("/api/v1/auth/user/info")).username') == "admin"

    # the third page's token expires; the gateway refuses it; the kit refreshes and retries once
    def refused() -> bool:
        answer = httpx.get(f"{stack.url}/api/v1/auth/user/info", headers={"authorization": f"Bearer {stale}"})
        return answer.status_code != 200

    poll(refused, ACCESS_TTL + 30, "the gateway to refuse the expired token")
    result = late.evaluate(
        """async () => {
        window.calls.length = 0;
        const me = await window.client.get("/api/v1/auth/user/info");
        return {username: me.username, calls: window.calls};
    }"""
    )
    assert result["username"] == "admin"
    denial, *rest = result["calls"]
    assert denial in ("GET /api/v1/auth/user/info 403", "GET /api/v1/auth/user/info 401")
    assert rest == ["POST /api/v1/auth/token/refresh 200", "GET /api/v1/auth/user/info 200"]

    # the socket's token expired too: the sweep ended it, the kit refreshed and connected again
    def reconnected() -> bool:
        heard = listening.evaluate("window.heard.map(([name]) => name)")
        return "session:revoked" in heard and heard[-1] == "connect"

    poll(reconnected, 20, "the socket to reconnect", lambda: listening.evaluate("window.heard"))
    result = listening.evaluate(
        """async () => ({
        pong: await window.rt.emitWithAck("ping", null, {timeout: 10000}),
        heard: window.heard,
        refreshes: window.calls.filter((c) => c.includes("/token/refresh")),
    })"""
    )
    assert result["pong"] == "pong"
    assert ["session:revoked", {"reason": "token expired"}] in result["heard"], result["heard"]
    assert result["refreshes"] == ["POST /api/v1/auth/token/refresh 200"]


def test_an_upload_in_parts_resumes_after_a_reload(open_page: Callable[..., Any], stack: local.Stack) -> None:
    page = open_page()
    make_file = """const size = 11 * 2 ** 20;
        const bytes = new Uint8Array(size);
        for (let i = 0; i < size; i++) bytes[i] = (i * 31 + 7) % 251;
        const file = new File([bytes], "big.bin", {type: "application/octet-stream", lastModified: 1});"""
    # Part 1 lands; every later part is held unanswered, and the upload is stopped once the
    # server lists part 1 (stopping on the progress of part 1's bytes raced its answer).
    pattern = f"http://127.0.0.1:{stack.ports['s3']}/**"

    def hold(route: Any) -> None:
        if route.request.method != "PUT" or "partNumber=1&" in route.request.url + "&":
            route.continue_()  # else never answered: the abort ends it

    page.route(pattern, hold)
    first = page.evaluate(
        """async () => {
        await window.client.login("admin", "123456");
        """
        + make_file
        + """
        const stop = new AbortController();
        let fileId, error;
        const partsOf = () => window.client.get("/api/v1/files/{file_id}/parts", {path: {file_id: fileId}});
        const sending = window.client.upload(file, {
          threshold: 0, partSize: 5 * 2 ** 20, concurrency: 1, signal: stop.signal,
          onStart: (id) => { fileId = id; },
        }).catch((e) => { error = e.error; });
        for (let i = 0; i < 600; i++) {
          if (fileId && (await partsOf()).uploaded.length) break;
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        stop.abort();
        await sending;
        const parts = await partsOf();
        return {fileId, error, uploaded: parts.uploaded.map((p) => p.partNumber), missing: parts.missing.length};
    }"""
    )
    page.unroute(pattern)
    assert first["error"] == "aborted"
    assert first["uploaded"] == [1]
    assert first["missing"] == 2

    page.reload()  # the session and the upload's id survive in localStorage
    page.wait_for_function("window.ready === true")
    second = page.evaluate(
        """async () => {
        """
        + make_file
        + """
        const done = await window.client.upload(file, {threshold: 0, partSize: 5 * 2 ** 20});
        const link = await window.client.get("/api/v1/files/{file_id}/download", {path: {file_id: done.id}});
        const digest = await crypto.subtle.digest("SHA-256", bytes);
        const hex = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
        return {id: done.id, status: done.status, url: link.url, hex, calls: window.calls};
    }"""
    )
    assert second["id"] == first["fileId"]  # the same upload, resumed
    assert second["status"] == "ready"
    assert not [c for c in second["calls"] if c.startswith("POST /api/v1/files/uploads")]
    downloaded = httpx.get(second["url"], timeout=30).content
    assert len(downloaded) == 11 * 2**20
    assert hashlib.sha256(downloaded).hexdigest() == second["hex"]
