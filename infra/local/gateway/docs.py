"""One OpenAPI document for every function of the template, with a login the docs page can use."""

import copy
from importlib import import_module
from typing import Any

from ...deploy.template import Route, Template, import_handler

SWAGGER_LOGIN = "/api/v1/auth/login/swagger"
ENVELOPE = {"$ref": "#/components/schemas/ErrorResponse"}
DENIAL = {"$ref": "#/components/schemas/GatewayDenial"}
GATEWAY_DENIAL = {
    "title": "GatewayDenial",
    "description": "API Gateway's own answer, written before or instead of any function: "
    "`Unauthorized` (401, no Authorization header), `Forbidden` (403, the authorizer said no), "
    "`Too Many Requests` (429, the stage's throttle), `Request Entity Too Large` (413), "
    "`Internal Server Error` (500, a function failed) or `Service Unavailable` (503, it timed out). "
    "It has no `code` and no `error`: read the HTTP status.",
    "type": "object",
    "properties": {"message": {"type": "string"}},
    "required": ["message"],
    "additionalProperties": False,
}
# What API Gateway itself may answer on a route, whatever the function does.
GATEWAY_ANSWERS = {
    401: "No Authorization header (API Gateway, before the authorizer runs), or the function's "
    "own refusal: `token_expired` (refresh once and retry), `invalid_token`, `token_revoked`...",
    403: "The authorizer said no (API Gateway: `Forbidden`), or the function's own refusal "
    "(`permission_denied`, `user_disabled`...).",
    413: "The body is over API Gateway's 10 MB payload limit.",
    429: "The stage's throttle (API Gateway: `Too Many Requests`) or the function's own limit.",
    500: "The function failed (API Gateway: `Internal Server Error`), or answered its own 500.",
    503: "The function timed out (API Gateway: `Service Unavailable`), or a datastore is out of reach.",
}


def merged_openapi(template: Template) -> dict[str, Any]:
    """The template's routes, each documented by the function that serves it."""
    served = {(route.method.lower(), route.path): route for route in template.routes}
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {}
    for function in template.functions.values():
        import_handler(function)
        app = getattr(import_module(function.module), "app", None)
        if app is None:
            continue
        document = app.openapi()
        schemas.update(document.get("components", {}).get("schemas", {}))
        for path, operations in document["paths"].items():
            for method, operation in operations.items():
                route = served.get((method, path))
                if route is None or route.function != function.name:
                    continue  # only what API Gateway would route to this function
                operation = copy.deepcopy(operation)  # the app keeps its document: links go on a copy
                if route.authorizer is None:
                    operation.pop("security", None)
                else:
                    operation["security"] = [{"BearerToken": []}, {"SwaggerLogin": []}]
                operation["responses"] = _with_gateway_answers(operation, route, template)
                paths.setdefault(path, {})[method] = operation
    _link_resources(paths)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Async-FastAPI-MultiDB (serverless)",
            "version": "1.0.0",
            "description": "Every function behind the local gateway. Log in with **Authorize** "
            "(username and password; the Swagger login works in LOCAL and TESTING only).",
        },
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": {**schemas, "GatewayDenial": GATEWAY_DENIAL},
            "securitySchemes": {
                "BearerToken": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "SwaggerLogin": {
                    "type": "oauth2",
                    "flows": {"password": {"tokenUrl": SWAGGER_LOGIN, "scopes": {}}},  # required, even empty
                },
            },
        },
    }


def _with_gateway_answers(operation: dict[str, Any], route: Route, template: Template) -> dict[str, Any]:
    """The operation's responses, with what API Gateway itself may answer on this route: where
    the function answers the same status, the body is one of its envelope (with the error names
    it lists) or the gateway's."""
    statuses = {500, 503}
    if route.authorizer is not None:
        statuses |= {401, 403}
    if template.throttle(route.route_key) is not None:
        statuses.add(429)
    if "requestBody" in operation:
        statuses.add(413)
    responses = dict(operation["responses"])
    for status in sorted(statuses):
        own = responses.get(str(status))
        schema: dict[str, Any] = {"oneOf": [_schema(own), DENIAL]} if own is not None else DENIAL
        responses[str(status)] = {
            "description": GATEWAY_ANSWERS[status],
            "content": {"application/json": {"schema": schema}},
        }
    return responses


def _schema(response: dict[str, Any]) -> dict[str, Any]:
    return dict(response.get("content", {}).get("application/json", {}).get("schema") or ENVELOPE)


def _link_resources(paths: dict[str, dict[str, Any]]) -> None:
    """OpenAPI links for create → read → update → delete chains: a 201 that notes where its
    resource lives (`x-created`, from `responses.Created`) links to every operation on that
    resource (its path and the paths under it) with the new id; and each of those operations
    links to the others with the id it was called with."""
    for operations in list(paths.values()):
        for operation in operations.values():
            created = operation["responses"].get("201", {}).pop("x-created", None)
            if created is None:
                continue
            resource, param = created["path"], created["path"].rsplit("{", 1)[1].rstrip("}")
            targets = [
                (path, method, target)
                for path, methods in paths.items()
                if path == resource or path.startswith(f"{resource}/")
                for method, target in methods.items()
            ]
            operation["responses"]["201"]["links"] = {
                target["operationId"]: {
                    "operationId": target["operationId"],
                    "parameters": {param: f"$response.body#{created['id']}"},
                    "description": f"{method.upper()} {path} on the resource just created",
                }
                for path, method, target in targets
            }
            for _, method, source in targets:
                success = next((s for s in ("200", "202") if s in source["responses"]), None)
                if method == "delete" or success is None:
                    continue
                source["responses"][success]["links"] = {
                    target["operationId"]: {
                        "operationId": target["operationId"],
                        "parameters": {param: f"$request.path.{param}"},
                        "description": f"{other_method.upper()} {other_path} on the same resource",
                    }
                    for other_path, other_method, target in targets
                    if target is not source
                }
