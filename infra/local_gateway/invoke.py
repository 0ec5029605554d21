"""Invoke the template's functions in this process the way API Gateway and Lambda would."""

import base64
import importlib
import json
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .events import authorizer_event, http_event
from .template import Function, Template, load

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


@dataclass
class LambdaContext:
    function_name: str
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    deadline: float = field(default_factory=lambda: time.monotonic() + 30)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


@dataclass
class GatewayResponse:
    status_code: int
    headers: dict[str, str]
    body: bytes
    cookies: list[str]

    def json(self) -> Any:
        return json.loads(self.body)

    @classmethod
    def from_lambda(cls, result: dict[str, Any]) -> "GatewayResponse":
        raw = result.get("body") or ""
        body = base64.b64decode(raw) if result.get("isBase64Encoded") else raw.encode()
        headers = {k.lower(): str(v) for k, v in (result.get("headers") or {}).items()}
        return cls(int(result.get("statusCode", 200)), headers, body, list(result.get("cookies") or []))

    @classmethod
    def gateway_error(cls, status: int, message: str) -> "GatewayResponse":
        return cls(status, {"content-type": "application/json"}, json.dumps({"message": message}).encode(), [])


def import_handler(function: Function) -> Handler:
    """Import a handler exactly as Lambda does: the function folder and its layers on sys.path."""
    for folder in (function.code_uri, *function.layers):
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
    module = importlib.import_module(function.module)
    handler: Handler = getattr(module, function.attribute)
    return handler


class LocalGateway:
    """Route a request as API Gateway does: match a route, run the authorizer, invoke the function."""

    def __init__(self, template: Template | None = None) -> None:
        self.template = template or load()
        self._handlers: dict[str, Handler] = {}
        self._decisions: dict[tuple[str, ...], tuple[float, dict[str, Any]]] = {}

    def handler(self, name: str) -> Handler:
        if name not in self._handlers:
            self._handlers[name] = import_handler(self.template.functions[name])
        return self._handlers[name]

    def invoke(self, name: str, event: dict[str, Any]) -> dict[str, Any]:
        return self.handler(name)(event, LambdaContext(name))

    def forget_decisions(self) -> None:
        self._decisions.clear()

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        query: dict[str, str] | None = None,
        body: str | bytes | None = None,
    ) -> GatewayResponse:
        method = method.upper()
        found = self.template.find(method, path)
        if found is None:
            return GatewayResponse.gateway_error(404, "Not Found")
        route, params = found
        event = http_event(
            route.route_key, method, path, headers=headers, query=query, body=body, path_parameters=params
        )
        if route.authorizer is not None:
            context = self._authorize(route.authorizer, event)
            if isinstance(context, GatewayResponse):
                return context
            event["requestContext"]["authorizer"] = {"lambda": context}
        return GatewayResponse.from_lambda(self.invoke(route.function, event))

    def _authorize(self, name: str, event: dict[str, Any]) -> dict[str, Any] | GatewayResponse:
        spec = self.template.authorizers[name]
        identity = [event["headers"].get(h.lower()) for h in spec.headers]
        identity += [event["requestContext"].get(c) for c in spec.context]
        if any(not value for value in identity):
            # API Gateway answers 401 itself when an identity source is missing.
            return GatewayResponse.gateway_error(401, "Unauthorized")
        key = tuple(str(v) for v in identity)
        cached = self._decisions.get(key)
        if cached is not None and cached[0] > time.monotonic():
            decision = cached[1]
        else:
            decision = self.invoke(spec.function, authorizer_event(event, [str(v) for v in identity]))
            if spec.ttl > 0:
                self._decisions[key] = (time.monotonic() + spec.ttl, decision)
        if not decision.get("isAuthorized"):
            return GatewayResponse.gateway_error(403, "Forbidden")
        return dict(decision.get("context") or {})
