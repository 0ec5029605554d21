"""Generate the route catalogue from every function's FastAPI routes (a build step).

    python -m infra.deploy.catalogue          write shared/multidb/catalogue.json
    python -m infra.deploy.catalogue --check  exit 1 if the file is stale

One entry per method and path template, so GET and POST on one path are two permission
codes; one per Celery task (`TASK:<name>`), which running or scheduling it needs too; one
per Socket.IO client event (`SOCKET:<event>`); and the console's pages and buttons,
declared below: the only codes a role's `routerPermissions` and `buttonPermissions` may name.
The authorizer reads the file to tell public and authenticated-only routes from those
that need a grant; initdb syncs it into the `interface_routes` table, which
`GET /router/backend` serves.
"""

import argparse
import json
import sys
from importlib import import_module
from pathlib import Path
from typing import Any

from .template import ROOT, Template, import_handler, load

OUTPUT = ROOT / "shared" / "multidb" / "catalogue.json"


def entries(template: Template) -> list[dict[str, Any]]:
    # Only functions that serve routes: the authorizer and deploy-time functions have none.
    served = [template.functions[name] for name in sorted({route.function for route in template.routes})]
    for function in served:
        import_handler(function)  # puts the shared layer on sys.path, as in Lambda
    from multidb.rbac import Access, permission_code

    found = []
    for function in served:
        app = import_module(function.module).app
        # The OpenAPI document is FastAPI's public, stable view of every route.
        for path, operations in app.openapi()["paths"].items():
            for method, operation in operations.items():
                found.append(
                    {
                        "code": permission_code(method, path),
                        "method": method.upper(),
                        "path": path,
                        "name": operation.get("summary", ""),
                        "description": operation.get("description", "").strip().split("\n")[0],
                        "function": function.name,
                        "access": Access(operation.get("x-access", Access.PERMISSION)).value,
                    }
                )
    return sorted(found, key=lambda e: (e["path"], e["method"]))


def task_entries() -> list[dict[str, Any]]:
    """One code per registered task: running or scheduling it needs that code too."""
    import inspect

    from multidb.queue import tasks  # noqa: F401  (registers them)
    from multidb.queue.app import app
    from multidb.rbac import Access, task_code

    return [
        {
            "code": task_code(name),
            "method": "TASK",
            "path": name,
            "name": name,
            "description": (inspect.getdoc(task.run) or "").strip().split("\n")[0],
            "function": "worker",
            "access": Access.PERMISSION.value,
        }
        for name, task in sorted(app.tasks.items())
        if not name.startswith("celery.")
    ]


def event_entries() -> list[dict[str, Any]]:
    """One code per Socket.IO client event (`SOCKET:<event>`), which sending it needs."""
    from infra.services.realtime.handlers import events
    from multidb.rbac import Access

    return [
        {
            "code": event.code,
            "method": "SOCKET",
            "path": name,
            "name": name,
            "description": event.description,
            "function": "realtime",
            "access": Access.PERMISSION.value,
        }
        for name, event in sorted(events.events.items())
    ]


# The console's pages (router permissions: the menu entries a role shows) and buttons (button
# permissions: the actions it offers), written here because no route declares them. A page or
# button only shows what its routes allow: the routes' own codes still decide every request.
PAGES = {
    "/system/users": "Users: list, create, change, reset passwords, delete",
    "/system/roles": "Roles and what they grant",
    "/system/routes": "The route catalogue: every permission code",
    "/system/audit": "The audit log",
    "/tasks/runs": "Task runs: start one, follow it",
    "/tasks/schedules": "Schedules of tasks",
    "/files": "Files: upload, download, delete",
}
BUTTONS = {
    "user:create": "Create a user",
    "user:update": "Change a user",
    "user:reset-password": "Reset a user's password",
    "user:delete": "Delete users",
    "role:view": "Open a role",
    "role:create": "Create a role",
    "role:update": "Change a role",
    "role:delete": "Delete roles",
    "task:run": "Run a task",
    "schedule:create": "Create a schedule",
    "schedule:update": "Change a schedule",
    "schedule:delete": "Delete a schedule",
    "file:upload": "Upload a file",
    "file:download": "Download a file",
    "file:delete": "Delete a file",
}


def console_entries(kind: str, declared: dict[str, str]) -> list[dict[str, Any]]:
    """One entry per page (method ROUTER) or button (method BUTTON): its code is the code itself."""
    from multidb.rbac import Access

    return [
        {
            "code": code,
            "method": kind,
            "path": code,
            "name": code,
            "description": description,
            "function": "console",
            "access": Access.PERMISSION.value,
        }
        for code, description in sorted(declared.items())
    ]


def render(template: Template) -> str:
    catalogue = {
        "routes": entries(template),
        "tasks": task_entries(),
        "events": event_entries(),
        "routers": console_entries("ROUTER", PAGES),
        "buttons": console_entries("BUTTON", BUTTONS),
    }
    return json.dumps(catalogue, indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the checked-in catalogue is stale")
    args = parser.parse_args(argv)
    text = render(load())
    if args.check:
        current = OUTPUT.read_text() if OUTPUT.exists() else ""
        if current != text:
            print(f"{OUTPUT.relative_to(ROOT)} is stale: run `make catalogue`", file=sys.stderr)
            return 1
        return 0
    Path(OUTPUT).write_text(text)
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
