"""Generate the route catalogue from every function's FastAPI routes (a build step).

    python -m infra.catalogue          write shared/multidb/catalogue.json
    python -m infra.catalogue --check  exit 1 if the file is stale

One entry per method and path template, so GET and POST on one path are two permission
codes. The authorizer reads the file to tell public and authenticated-only routes from
those that need a grant; initdb syncs it into the `interface_routes` table.
"""

import argparse
import json
import sys
from importlib import import_module
from pathlib import Path
from typing import Any

from .local_gateway.invoke import import_handler
from .local_gateway.template import ROOT, Template, load

OUTPUT = ROOT / "shared" / "multidb" / "catalogue.json"


def entries(template: Template) -> list[dict[str, Any]]:
    for function in template.functions.values():
        import_handler(function)  # puts the shared layer on sys.path, as in Lambda
    from multidb.rbac import Access, permission_code

    found = []
    for function in template.functions.values():
        app = getattr(import_module(function.module), "app", None)
        if app is None:  # the authorizer: a plain handler, no routes of its own
            continue
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


def render(template: Template) -> str:
    return json.dumps({"routes": entries(template)}, indent=2) + "\n"


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
