"""The admin console (console/), built, in headless Chromium against `make dev`.

One browser session walks what issue 23 asks the console to show: the admin creates a role from
the picker and a user with it; the user sees only the menus and buttons the role grants; a run
started from the form typed by the task's parameters (the server's 422 for a missing argument shown
beside its field) turns to success live (the list is never polled: only `task:finished` refreshes
it); a 12 MiB file goes up in parts, survives a reload mid-upload, resumes and downloads identical;
an upload the admin cancels leaves nothing in MongoDB, the bucket or the browser's store; schedules
made from the form show the fire times the stored schedules give, and a bad crontab is refused
beside its field; the user changes the password from the profile page (a wrong current one refused)
and only the new one signs in; signing out in another tab, and the server revoking the session (an
admin resets the password), end the console's session. Every page is checked with axe-core (no
serious or critical violation) and photographed in English and Chinese: into a temporary folder, or
into docs/console/ with CONSOLE_SCREENSHOTS=1 (`make console-screenshots`).
"""

import hashlib
import http.server
import itertools
import json
import os
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from multidb.security.login_crypto import encrypt_password
from tests.e2e import test_local_stack as local
from tests.helpers import ROOT
from tests.processes import free_port
from tests.typescript_kit import CONSOLE, build_console

PAGES = ("profile", "users", "roles", "routes", "runs", "schedules", "files", "audit", "status")
LANGUAGES = ("en", "zh-CN")
AXE = CONSOLE / "node_modules" / "axe-core" / "axe.min.js"
MIB = 2**20
PASSWORD = "Viewer-Pass-2026"
NEW_PASSWORD = "Viewer-New-Pass-2026"

# What the role grants: two menus, three buttons, and the routes and task behind them.
ROUTERS = ("/files", "/tasks/runs")
BUTTONS = ("file:upload", "file:download", "task:run")
INTERFACE = (
    "GET:/api/v1/files",
    "POST:/api/v1/files/uploads",
    "GET:/api/v1/files/{file_id}",
    "GET:/api/v1/files/{file_id}/parts",
    "POST:/api/v1/files/{file_id}/complete",
    "GET:/api/v1/files/{file_id}/download",
    "GET:/api/v1/tasks",
    "GET:/api/v1/tasks/runs",
    "POST:/api/v1/tasks/runs",
    "GET:/api/v1/tasks/runs/{task_id}",
    "TASK:multidb.add",
)


def content_security_policy(stack: local.Stack) -> str:
    """The Content-Security-Policy the console's stack sends (infra/deploy/stacks/console.yaml),
    with make dev's origins for the API, Socket.IO and the files bucket."""
    from infra.deploy.template import _CfnLoader

    template = yaml.load((ROOT / "infra" / "deploy" / "stacks" / "console.yaml").read_text(), Loader=_CfnLoader)
    config = template["Resources"]["SecurityHeaders"]["Properties"]["ResponseHeadersPolicyConfig"]
    text, _ = config["SecurityHeadersConfig"]["ContentSecurityPolicy"]["ContentSecurityPolicy"]["Fn::Sub"]
    realtime = f"127.0.0.1:{stack.ports['realtime']}"
    values = {
        "ApiOrigin": stack.url,
        "RealtimeUrl": f"http://{realtime}",
        "Socket": f"ws://{realtime}",
        "FilesOrigins": f"http://127.0.0.1:{stack.ports['s3']}",
    }
    return re.sub(r"\$\{(\w+)\}", lambda m: values[m.group(1)], str(text))


def site(dist: Path, config: dict[str, str], policy: str) -> type[http.server.SimpleHTTPRequestHandler]:
    class Site(http.server.SimpleHTTPRequestHandler):
        """The built console as its CDN serves it: under the stack's Content-Security-Policy, with
        config.json, the files, index.html for any other path, and axe-core (a test's script)."""

        def end_headers(self) -> None:
            self.send_header("content-security-policy", policy)
            super().end_headers()

        def do_GET(self) -> None:
            path = self.path.split("?")[0]
            if path == "/axe.min.js":
                body = AXE.read_bytes()
                self.send_response(200)
                self.send_header("content-type", "text/javascript")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            if path == "/config.json":
                body = json.dumps(config).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            if not (dist / path.lstrip("/")).is_file():
                self.path = "/index.html"
            super().do_GET()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Site


@pytest.fixture(scope="module")
def console(stack: local.Stack) -> Iterator[str]:
    dist = build_console()
    config = {"apiUrl": stack.url, "socketUrl": f"http://127.0.0.1:{stack.ports['realtime']}"}
    handler = site(dist, config, content_security_policy(stack))
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", free_port(5173)), lambda *a: handler(*a, directory=str(dist))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://localhost:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = ROOT / "docs" / "console" if os.environ.get("CONSOLE_SCREENSHOTS") == "1" else tmp_path / "shots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class Console:
    """One tab of the console, with the checks every page gets."""

    def __init__(self, page: Any, origin: str, shots: Path, findings: dict[str, list[str]], refused: list[str]) -> None:
        self.page, self.origin, self.shots, self.findings = page, origin, shots, findings
        page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)

    def open(self, name: str = "") -> None:
        self.page.goto(f"{self.origin}/#/{name}")
        self.settle()

    def settle(self) -> None:
        self.page.wait_for_selector("h1")
        self.page.wait_for_load_state("networkidle")

    def go(self, name: str) -> None:
        self.page.click(f"nav a[data-page={name}]")
        self.page.wait_for_selector(f'nav a[data-page={name}][aria-current="page"]')
        self.page.wait_for_load_state("networkidle")

    def language(self, locale: str) -> None:
        self.page.select_option("[data-testid=language]", locale)
        self.page.wait_for_function("(l) => document.documentElement.lang === l", arg=locale)

    def login(self, username: str, password: str) -> None:
        self.page.fill("input[name=username]", username)
        self.page.fill("input[name=password]", password)
        self.page.click("button[type=submit]")
        self.page.wait_for_selector("[data-testid=who]")
        self.settle()

    def check(self, name: str) -> None:
        """axe-core on the page as it is; a screenshot of it."""
        if not self.page.evaluate("typeof window.axe !== 'undefined'"):
            self.page.add_script_tag(url=f"{self.origin}/axe.min.js")  # the CSP refuses inline scripts
        found = self.page.evaluate(
            """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations
                .map((v) => ({id: v.id, impact: v.impact, nodes: v.nodes.length}))"""
        )
        self.findings[name] = [f"{v['id']} ({v['impact']}, {v['nodes']})" for v in found]
        self.page.evaluate("window.scrollTo(0, 0)")
        self.page.screenshot(path=str(self.shots / f"{name}.png"))

    def menu(self) -> list[str]:
        return self.page.eval_on_selector_all("nav a", "(links) => links.map((a) => a.dataset.page)")  # type: ignore[no-any-return]


def api_token(stack: local.Stack) -> dict[str, str]:
    """The admin's bearer header, from a login of its own through the API."""
    with stack.client() as client:
        return {"authorization": f"Bearer {local.login(client)['accessToken']}"}


def signs_in(stack: local.Stack, username: str, password: str) -> int:
    """The status of a login through the API (RSA-OAEP, as the console sends it)."""
    with stack.client() as client:
        pem = client.get("/api/v1/auth/keys/public").json()["data"]["publicKey"]
        body = {"username": username, "password": encrypt_password(password, pem)}
        return client.post("/api/v1/auth/login", json=body).status_code


def upload_records(page: Any) -> dict[str, str]:
    """What the kit keeps in the page's localStorage about uploads in parts (to resume them)."""
    return page.evaluate(  # type: ignore[no-any-return]
        """() => Object.fromEntries(Object.keys(localStorage)
            .filter((k) => k.includes(":upload")).map((k) => [k, localStorage.getItem(k)]))"""
    )


def cancel_an_upload(admin: Console, stack: local.Stack, source: Path) -> None:
    """Part 1 of the file lands, part 2 is held, Cancel: the upload is gone from the files
    collection, from the bucket (no multipart upload, no object) and from the browser's store."""
    import boto3
    from bson import ObjectId
    from pymongo import MongoClient

    admin.go("files")
    pattern = f"http://127.0.0.1:{stack.ports['s3']}/**"

    def hold(route: Any) -> None:
        if route.request.method != "PUT" or "partNumber=1&" in route.request.url + "&":
            route.continue_()  # else never answered: Cancel aborts it

    admin.page.route(pattern, hold)
    with admin.page.expect_response(lambda r: r.request.method == "PUT" and "partNumber=1&" in r.url + "&") as first:
        admin.page.set_input_files("[data-testid=upload] input", str(source))
    assert first.value.status == 200
    file_id = admin.page.get_attribute("[data-testid=progress]", "data-file")
    assert file_id

    mongo: MongoClient[dict[str, Any]] = MongoClient(
        f"mongodb://127.0.0.1:{stack.ports['mongo']}", serverSelectionTimeoutMS=5000
    )
    files = mongo["multidb"]["files"]
    s3 = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{stack.ports['s3']}",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        region_name="us-east-1",
    )

    def open_uploads(key: str) -> list[Any]:
        return list(s3.list_multipart_uploads(Bucket="multidb-files", Prefix=key).get("Uploads", []))

    try:
        doc = files.find_one({"_id": ObjectId(file_id)})
        assert doc is not None
        assert doc["status"] == "pending"
        assert open_uploads(doc["key"])  # the bucket holds the upload, part 1 in it
        assert file_id in upload_records(admin.page).values()  # remembered, to resume

        admin.page.locator("[data-testid=progress] button", has_text="Cancel upload").click()
        admin.page.wait_for_selector(f"[data-testid=upload-cancelled][data-file='{file_id}']")
        assert admin.page.locator("[data-testid=progress]").count() == 0
        assert files.find_one({"_id": ObjectId(file_id)}) is None
        assert open_uploads(doc["key"]) == []
        assert "Contents" not in s3.list_objects_v2(Bucket="multidb-files", Prefix=doc["key"])
        assert upload_records(admin.page) == {}
    finally:
        mongo.close()
    admin.page.unroute(pattern)
    admin.page.reload()  # nothing to resume: no row, no offer
    admin.settle()
    assert admin.page.locator(f"tr[data-file='{file_id}']").count() == 0
    assert admin.page.locator("[data-testid=resume-offer]").count() == 0


def fire_times(locator: Any) -> list[datetime]:
    """The fire times a schedule's cell or the form's preview shows (<time datetime>)."""
    stamps = locator.locator("time").evaluate_all("(times) => times.map((t) => t.dateTime)")
    return [datetime.fromisoformat(stamp) for stamp in stamps]


def schedule_from_the_form(admin: Console, stack: local.Stack) -> None:
    """An interval and a crontab schedule from the form, with the fire times the page shows;
    a crontab the scheduler cannot read is refused beside its field."""
    admin.go("schedules")
    form = admin.page.locator("[data-testid=schedule-form]")
    preview = form.locator("[data-testid=schedule-preview]")

    def fill(name: str, every: str = "", crontab: str = "") -> None:
        admin.page.get_by_role("button", name="New schedule").click()
        form.locator("input[name=name]").fill(name)
        form.locator("select[name=task]").select_option("multidb.add")
        form.locator("input[name=args]").fill("[1, 2]")
        form.locator("input[name=crontab]").fill(crontab)
        if every:
            form.locator("input[name=every]").fill(every)

    fill("hourly-add", every="3600")
    assert len(fire_times(preview)) == 3
    form.locator("button[type=submit]").click()
    hourly = admin.page.locator("tr[data-schedule=hourly-add] [data-testid=next-runs]")
    hourly.locator("time").nth(2).wait_for()

    fill("monday-add", crontab="30 4 * * 1")
    shown = fire_times(preview)
    form.locator("button[type=submit]").click()
    monday = admin.page.locator("tr[data-schedule=monday-add] [data-testid=next-runs]")
    monday.locator("time").nth(2).wait_for()
    assert fire_times(monday) == shown  # what the form promised is what the row shows
    assert all((t.weekday(), t.hour, t.minute, t.utcoffset()) == (0, 4, 30, timedelta(0)) for t in shown)
    assert [b - a for a, b in itertools.pairwise(shown)] == [timedelta(days=7)] * 2
    assert shown[0] > datetime.now(UTC)

    fill("bad-cron", crontab="61 * * * *")
    form.locator("button[type=submit]").click()
    problem = form.locator("[data-field=crontab] [data-testid=field-error]")
    problem.wait_for()
    assert "invalid crontab" in problem.inner_text()
    assert "61" in problem.inner_text()  # which value
    assert form.locator("input[name=crontab]").get_attribute("aria-invalid") == "true"
    admin.check("schedules-form-en")
    form.get_by_role("button", name="Cancel").click()

    with stack.client() as client:
        stored = client.get("/api/v1/tasks/schedules", headers=api_token(stack)).json()["data"]["records"]
    by_name = {s["name"]: s for s in stored}
    assert set(by_name) == {"hourly-add", "monday-add"}
    assert (by_name["hourly-add"]["intervalSeconds"], by_name["hourly-add"]["crontab"]) == (3600, None)
    assert (by_name["monday-add"]["intervalSeconds"], by_name["monday-add"]["crontab"]) == (None, "30 4 * * 1")
    assert all(s["task"] == "multidb.add" and s["args"] == [1, 2] and s["enabled"] for s in stored)
    created = datetime.fromisoformat(by_name["hourly-add"]["createdAt"])
    expected = [created + timedelta(hours=k) for k in (1, 2, 3)]  # never run yet: from its creation
    assert all(abs(a - b) < timedelta(milliseconds=1) for a, b in zip(fire_times(hourly), expected, strict=True))


def change_the_password(user: Console, stack: local.Stack, current: str, new: str) -> None:
    """From the profile page: a wrong current password is refused with the envelope's message;
    the right one changes it; then only the new one signs in."""
    user.go("profile")
    form = user.page.locator("form:has(input[autocomplete=current-password])")
    form.locator("input[autocomplete=current-password]").fill("Not-The-Password-1")
    form.locator("input[autocomplete=new-password]").fill(new)
    form.locator("button[type=submit]").click()
    user.page.locator(".error[role=alert]", has_text="the current password is incorrect").wait_for()
    form.locator("input[autocomplete=current-password]").fill(current)
    form.locator("button[type=submit]").click()
    user.page.locator(".notice[role=status]", has_text="Password changed").wait_for()
    assert user.page.locator(".error[role=alert]").count() == 0
    assert user.page.locator("[data-testid=who]").count() == 1  # this session stays
    assert signs_in(stack, "viewer1", current) == 401
    assert signs_in(stack, "viewer1", new) == 200


def test_the_console_from_role_to_live_run_to_resumed_upload_to_ended_session(
    stack: local.Stack, console: str, shots: Path, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    findings: dict[str, list[str]] = {}
    refused: list[str] = []  # what the Content-Security-Policy blocked, as Chromium reports it
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=local.CHROMIUM, args=["--headless", *local.CHROMIUM_ARGS])
        try:
            admin_context = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
            admin = Console(admin_context.new_page(), console, shots, findings, refused)

            # the sign-in page and every page of the admin's console, in both languages
            admin.open()
            for locale in LANGUAGES:
                admin.language(locale)
                admin.check(f"login-{locale}")
            admin.language("en")
            admin.login("admin", "123456")
            assert admin.menu() == list(PAGES)  # an admin sees every page
            for locale in LANGUAGES:
                admin.language(locale)
                for name in PAGES:
                    admin.go(name)
                    admin.check(f"{name}-{locale}")
            admin.language("en")

            # the status page: the queue's depth and beat's heartbeat, for a holder of their code
            admin.go("status")
            assert "waiting" in admin.page.locator("[data-testid=status-queue]").inner_text()
            admin.page.locator("[data-testid=status-beat]").wait_for()

            # a role from the picker: only grantable codes, grouped by function
            admin.go("roles")
            admin.page.click("[data-testid=new-role]")
            form = admin.page.locator("[data-testid=role-form]")
            form.locator("fieldset[data-group=worker]").wait_for()  # the catalogue has come
            groups = form.locator("fieldset[data-group]").evaluate_all("(sets) => sets.map((s) => s.dataset.group)")
            assert {"FilesFunction", "TasksFunction", "UsersFunction", "worker"} <= set(groups)
            assert form.locator('[data-code="POST:/api/v1/auth/login"]').count() == 0  # public: nothing to grant
            form.locator("input[name=code]").fill("viewer")
            form.locator("input[name=name]").fill("Viewer")
            for code in (*ROUTERS, *BUTTONS, *INTERFACE):
                form.locator(f'input[data-code="{code}"]').check()
            admin.check("roles-form-en")
            form.locator("button[type=submit]").click()
            admin.page.wait_for_selector("tr[data-role=viewer]")

            # a user with it
            admin.go("users")
            admin.page.click("[data-testid=new-user]")
            form = admin.page.locator("[data-testid=user-form]")
            form.locator("input[name=username]").fill("viewer1")
            form.locator("input[name=name]").fill("Vera Viewer")
            form.locator("input[name=email]").fill("vera@example.com")
            form.locator("input[name=password]").fill(PASSWORD)
            form.locator("label", has_text="Viewer").locator("input").check()
            form.locator("button[type=submit]").click()
            admin.page.wait_for_selector("tr[data-user=viewer1]")
            assert "Viewer" in admin.page.locator("tr[data-user=viewer1]").inner_text()

            # the user sees only what the role grants
            user_context = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
            user = Console(user_context.new_page(), console, shots, findings, refused)
            user.open()
            user.login("viewer1", PASSWORD)
            assert user.menu() == ["profile", "runs", "files", "status"]
            user.page.goto(f"{console}/#/users")  # a page it lacks: the first it may see instead
            user.page.wait_for_selector('nav a[data-page=profile][aria-current="page"]')

            # a run from the form typed by the task's parameters turns to success live
            user.go("runs")
            form = user.page.locator("[data-testid=run-form]")
            form.locator("select[name=task]").select_option("multidb.add")
            x, y = form.locator("input[name=x]"), form.locator("input[name=y]")
            assert [x.get_attribute("type"), y.get_attribute("type")] == ["number", "number"]  # x: float, y: float
            assert form.locator("textarea").count() == 0  # JSON only for arrays and objects
            x.fill("2")
            form.locator("button[type=submit]").click()  # y left out: the server's 422, shown beside y
            form.locator("[data-param=y] [data-testid=param-error]").filter(has_text="'y'").wait_for()
            assert form.locator("[data-param=x] [data-testid=param-error]").count() == 0
            y.fill("40")
            form.locator("button[type=submit]").click()
            started = user.page.locator("[data-testid=run-started]").inner_text()
            run_id = started.split()[1]
            state = user.page.locator(f"tr[data-run='{run_id}'] [data-testid=run-state]")
            state.filter(has_text="SUCCESS").wait_for(timeout=30_000)
            user.page.locator(f"tr[data-run='{run_id}'] td").get_by_text("42", exact=True).wait_for()
            assert "42" in user.page.locator(f"tr[data-run='{run_id}']").inner_text()
            user.check("runs-limited-en")

            # no GET:/api/v1/tasks/status: the status page does not ask for the queue's figures
            user.go("status")
            assert user.page.locator("[data-testid=status-queue]").count() == 0
            assert "GET:/api/v1/tasks/status" in user.page.locator("p.muted").inner_text()

            # 12 MiB in parts of 5 MiB: part 1 lands, parts 2 and 3 are held, the page reloads
            user.go("files")
            user.page.locator("[data-testid=upload]").wait_for()  # the file:upload button
            source = tmp_path / "twelve.bin"
            source.write_bytes(bytes((i * 31 + 7) % 251 for i in range(12 * MIB)))
            held: list[Any] = []
            pattern = f"http://127.0.0.1:{stack.ports['s3']}/**"

            def hold(route: Any) -> None:
                if route.request.method == "PUT" and "partNumber=1&" not in route.request.url + "&":
                    held.append(route)  # never answered: the reload drops it
                else:
                    route.continue_()

            user.page.route(pattern, hold)
            is_part_1 = "partNumber=1"
            with user.page.expect_response(lambda r: r.request.method == "PUT" and is_part_1 in r.url) as first:
                user.page.set_input_files("[data-testid=upload] input", str(source))
            assert first.value.status == 200
            file_id = user.page.get_attribute("[data-testid=progress]", "data-file")
            assert file_id
            user.page.reload()
            user.settle()
            user.page.unroute(pattern)
            assert held  # part 2 (at least) was under way when the page went
            user.page.wait_for_selector(f"tr[data-file='{file_id}'] [data-testid=resume-offer]")  # pending, resumable

            # the same file again: only the missing parts go up, then it completes
            puts: list[str] = []
            user.page.on("request", lambda r: puts.append(r.url) if r.method == "PUT" else None)
            user.page.set_input_files("[data-testid=upload] input", str(source))
            done = user.page.locator(f"[data-testid=uploaded][data-file='{file_id}']")
            done.wait_for(timeout=60_000)
            assert puts
            assert not [url for url in puts if "partNumber=1&" in url + "&"]  # part 1 was kept
            row = user.page.locator(f"tr[data-file='{file_id}']")
            row.filter(has_text="ready").wait_for()
            assert row.locator("[data-testid=resume-offer]").count() == 0
            assert row.locator("button.danger").count() == 0  # no file:delete button
            with user.page.expect_download() as download:
                row.locator("button", has_text="Download").click()
            downloaded = Path(download.value.path()).read_bytes()
            assert hashlib.sha256(downloaded).hexdigest() == hashlib.sha256(source.read_bytes()).hexdigest()
            user.check("files-limited-en")

            # the user changes the password from the profile page
            change_the_password(user, stack, PASSWORD, NEW_PASSWORD)

            # an upload the admin cancels leaves nothing behind; schedules from the form
            cancel_an_upload(admin, stack, source)
            schedule_from_the_form(admin, stack)

            # signing out in another tab ends this one's session too
            other = Console(user_context.new_page(), console, shots, findings, refused)
            other.open()
            other.page.click("[data-testid=sign-out]")
            user.page.wait_for_selector("[data-testid=ended]")
            assert user.page.locator("nav").count() == 0

            # the server ending the session (an admin resets the password) signs the console out
            user.login("viewer1", NEW_PASSWORD)
            user.page.wait_for_selector('[data-testid=live]:has-text("Live")')
            admin.go("users")
            admin.page.locator("tr[data-user=viewer1] button", has_text="Reset password").click()
            admin.page.fill("input[autocomplete=new-password]", "Another-Pass-2026")
            admin.page.click("button[type=submit]:has-text('Reset password')")
            admin.page.wait_for_selector(".notice")
            ended = user.page.locator("[data-testid=ended]")
            ended.wait_for(timeout=15_000)
            assert "password_reset" in ended.inner_text()
        finally:
            browser.close()

    if os.environ.get("CONSOLE_SCREENSHOTS") == "1":
        (shots / "axe.json").write_text(json.dumps(findings, indent=1, sort_keys=True) + "\n")
    assert refused == []  # the console runs under the stack's CSP
    serious = {name: [f for f in found if "(serious" in f or "(critical" in f] for name, found in findings.items()}
    assert not any(serious.values()), serious
    assert len(findings) == 2 * (len(PAGES) + 1) + 4


def test_the_initial_javascript_is_at_most_200_kb_gzipped() -> None:
    import gzip
    import re

    dist = build_console()
    index = (dist / "index.html").read_text()
    # what the page loads before any page of the console: its entry and the chunks it preloads
    initial = re.findall(r'(?:src|href)="/(assets/[^"]+\.js)"', index)
    assert initial
    size = sum(len(gzip.compress((dist / name).read_bytes(), 9)) for name in initial)
    assert size <= 200 * 1024, f"{size / 1024:.1f} kB gzipped"
