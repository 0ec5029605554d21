"""One OpenAPI document for every function of the template, with a login the docs page can use."""

from importlib import import_module
from typing import Any

from ...deploy.template import Template, import_handler

SWAGGER_LOGIN = "/api/v1/auth/login/swagger"


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
                operation = dict(operation)
                if route.authorizer is None:
                    operation.pop("security", None)
                else:
                    operation["security"] = [{"BearerToken": []}, {"SwaggerLogin": []}]
                paths.setdefault(path, {})[method] = operation
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
            "schemas": schemas,
            "securitySchemes": {
                "BearerToken": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "SwaggerLogin": {
                    "type": "oauth2",
                    "flows": {"password": {"tokenUrl": SWAGGER_LOGIN, "scopes": {}}},  # required, even empty
                },
            },
        },
    }
