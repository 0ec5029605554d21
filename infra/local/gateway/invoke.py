"""Invoke the template's functions in this process the way API Gateway and Lambda would."""

import base64
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ...deploy.template import ROOT, Handler, Template, Throttle, import_handler, load
from .events import authorizer_event, http_event


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
        """API Gateway's own answer: compact JSON, byte for byte as AWS (and sam local) sends it."""
        body = json.dumps({"message": message}, separators=(",", ":")).encode()
        return cls(status, {"content-type": "application/json"}, body, [])


class FunctionError(RuntimeError):
    """The function raised or its process died: API Gateway answers 500."""


class FunctionProcess:
    """One function in its own interpreter, like a Lambda container: cold on first use, then warm."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.process = subprocess.Popen(  # noqa: S603  (our own interpreter and module)
            [sys.executable, "-m", "infra.local.gateway", "worker", name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        self.cold = True

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        started = time.perf_counter()
        self.process.stdin.write(json.dumps(event) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise FunctionError(f"{self.name} exited with {self.process.wait()}")
        reply = json.loads(line)
        if self.cold:
            self.cold = False
            print(
                f"{self.name}: cold start, first invocation {(time.perf_counter() - started) * 1000:.0f} ms",
                file=sys.stderr,
            )
        if "error" in reply:
            raise FunctionError(reply["error"])
        result: dict[str, Any] = reply["result"]
        return result

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


def serve_worker(name: str) -> None:
    """The worker side of FunctionProcess: one JSON event per line in, one reply per line out."""
    handler = import_handler(load().functions[name])
    out = sys.stdout
    sys.stdout = sys.stderr  # the function's own prints and logs must not corrupt the protocol
    for line in sys.stdin:
        try:
            reply: dict[str, Any] = {"result": handler(json.loads(line), LambdaContext(name))}
        except Exception as exc:  # the gateway turns this into a 500, as API Gateway does
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        out.write(json.dumps(reply) + "\n")
        out.flush()


class TokenBucket:
    """API Gateway's throttle for one route: full at `burst`, refilled at `rate` tokens per second."""

    def __init__(self, limit: Throttle, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.clock = clock
        self.tokens = float(limit.burst)
        self.updated = clock()
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            now = self.clock()
            self.tokens = min(float(self.limit.burst), self.tokens + (now - self.updated) * self.limit.rate)
            self.updated = now
            if self.tokens < 1:
                return False
            self.tokens -= 1
            return True


class LocalGateway:
    """Route a request as API Gateway does: match a route, run the authorizer, invoke the function.

    Functions run in this process and stay warm (like reused Lambda containers), or with
    `isolate=True` each in its own process, which shows each function's cold start.

    With `throttle=True` (or LOCAL_GATEWAY_THROTTLE=1) each route gets the stage's limits
    from the template and answers API Gateway's own 429 before the authorizer or the
    function runs. Off by default: those limits are per route across all clients, and a
    test suite or a developer would hit them by being fast, not abusive.
    """

    def __init__(
        self,
        template: Template | None = None,
        *,
        isolate: bool = False,
        throttle: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.template = template or load()
        self.isolate = isolate
        self.throttle = os.environ.get("LOCAL_GATEWAY_THROTTLE") == "1" if throttle is None else throttle
        self._clock = clock
        self._buckets: dict[str, TokenBucket | None] = {}
        self._handlers: dict[str, Handler] = {}
        self._processes: dict[str, FunctionProcess] = {}
        self._decisions: dict[tuple[str, ...], tuple[float, dict[str, Any]]] = {}

    def handler(self, name: str) -> Handler:
        if name not in self._handlers:
            self._handlers[name] = import_handler(self.template.functions[name])
        return self._handlers[name]

    def invoke(self, name: str, event: dict[str, Any]) -> dict[str, Any]:
        if not self.isolate:
            return self.handler(name)(event, LambdaContext(name))
        if name not in self._processes:
            self._processes[name] = FunctionProcess(name)
        return self._processes[name].invoke(event)

    def close(self) -> None:
        for process in self._processes.values():
            process.close()
        self._processes.clear()

    def forget_decisions(self) -> None:
        self._decisions.clear()

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        query: str = "",
        body: str | bytes | None = None,
        source_ip: str = "127.0.0.1",
        scheme: str = "https",
    ) -> GatewayResponse:
        """`source_ip` is the client's address and `scheme` how it reached us (API Gateway: always https)."""
        method = method.upper()
        found = self.template.find(method, path)
        if found is None:
            return GatewayResponse.gateway_error(404, "Not Found")
        route, params = found
        if self.throttle and not self._admit(route.route_key):
            return GatewayResponse.gateway_error(429, "Too Many Requests")
        event = http_event(
            route.route_key,
            method,
            path,
            headers=headers,
            raw_query=query,
            body=body,
            path_parameters=params,
            source_ip=source_ip,
            scheme=scheme,
        )
        if route.authorizer is not None:
            context = self._authorize(route.authorizer, event)
            if isinstance(context, GatewayResponse):
                return context
            event["requestContext"]["authorizer"] = {"lambda": context}
        try:
            return GatewayResponse.from_lambda(self.invoke(route.function, event))
        except Exception as exc:
            print(f"{route.function} failed: {exc}", file=sys.stderr)
            return GatewayResponse.gateway_error(500, "Internal Server Error")

    def _admit(self, route_key: str) -> bool:
        """Take a token from the route's bucket (API Gateway throttles before it authorizes)."""
        if route_key not in self._buckets:
            limit = self.template.throttle(route_key)
            self._buckets[route_key] = None if limit is None else TokenBucket(limit, self._clock)
        bucket = self._buckets[route_key]
        return bucket is None or bucket.take()

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
            try:
                decision = self.invoke(spec.function, authorizer_event(event, [str(v) for v in identity]))
            except Exception as exc:
                print(f"{spec.function} failed: {exc}", file=sys.stderr)
                return GatewayResponse.gateway_error(500, "Internal Server Error")
            if spec.ttl > 0:
                self._decisions[key] = (time.monotonic() + spec.ttl, decision)
        if not decision.get("isAuthorized"):
            return GatewayResponse.gateway_error(403, "Forbidden")
        return dict(decision.get("context") or {})
