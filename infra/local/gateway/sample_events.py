"""Write a stored API Gateway event for every template route that has none yet.

    python -m infra.local.gateway.sample_events

Files go to events/<function>/<event_name>.json, shaped as API Gateway sends them, with
`<access-token>` and `<...>` placeholders; existing files are left alone (edit the bodies
by hand to make them realistic).
"""

import json
import re
import sys

from ...deploy.template import ROOT, load
from .events import authorizer_event, http_event

UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
API_ID = "a1b2c3d4e5"


def _stable(event: dict[str, object]) -> dict[str, object]:
    """Fixed ids and times, so regenerating changes nothing."""
    text = json.dumps(event).replace('"local.execute-api', f'"{API_ID}.execute-api')
    stable = json.loads(text)
    context = stable["requestContext"]
    context.update(
        {
            "requestId": "Hx3kQjE1oAMEbQw=",
            "time": "28/Nov/2026:04:30:00 +0000",
            "timeEpoch": 1795840200000,
            "apiId": API_ID,
            "domainPrefix": API_ID,
        }
    )
    context["http"]["sourceIp"] = "203.0.113.10"
    return stable  # type: ignore[no-any-return]


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def event_names() -> dict[tuple[str, str], str]:
    """(function, routeKey) -> the template's event name."""
    import yaml

    from ...deploy.template import _CfnLoader

    doc = yaml.load((ROOT / "template.yaml").read_text(), Loader=_CfnLoader)  # noqa: S506
    names = {}
    for function, resource in doc["Resources"].items():
        for name, event in (resource.get("Properties", {}).get("Events") or {}).items():
            if event["Type"] == "HttpApi":
                props = event["Properties"]
                names[(function, f"{props['Method'].upper()} {props['Path']}")] = name
    return names


def main() -> int:
    template = load()
    names = event_names()
    written = 0
    for route in template.routes:
        folder = ROOT / "events" / route.function.removesuffix("Function").lower()
        path = folder / f"{_snake(names[(route.function, route.route_key)])}.json"
        if path.exists():
            continue
        headers = {
            "accept": "application/json",
            "user-agent": UA,
            "x-forwarded-for": "203.0.113.10",
            "x-forwarded-port": "443",
            "x-forwarded-proto": "https",
        }
        body = None
        if route.method in ("POST", "PUT", "PATCH") or (route.method == "DELETE" and "{" not in route.path):
            headers["content-type"] = "application/json"
            body = "{}"
        if route.authorizer is not None:
            headers["authorization"] = "Bearer <access-token>"
        params = {name: f"<{name}>" for name in re.findall(r"\{(\w+)\}", route.path)}
        raw_path = route.path.format(**params)
        event = _stable(
            http_event(
                route.route_key, route.method, raw_path, headers=headers, body=body, path_parameters=params or None
            )
        )
        if route.authorizer is not None:
            event["requestContext"]["authorizer"] = {  # type: ignore[index]
                "lambda": {
                    "userId": "<user-id>",
                    "name": "Administrator",
                    "isAdmin": True,
                    "jti": "<jti>",
                    "fam": "<family>",
                    "iat": 1795840200,
                    "exp": 1795841100,
                    "kid": "<kid>",
                }
            }
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(event, indent=2) + "\n")
        written += 1
        print(path.relative_to(ROOT))
    authorizer = ROOT / "events" / "authorizer" / "user_info.json"
    if not authorizer.exists():
        base = _stable(http_event("GET /api/v1/auth/user/info", "GET", "/api/v1/auth/user/info", headers={}))
        identity = ["Bearer <access-token>", "GET /api/v1/auth/user/info"]
        authorizer.write_text(json.dumps(authorizer_event(base, identity), indent=2) + "\n")
    print(f"{written} events written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
