"""API Gateway HTTP API (payload 2.0) events, shaped as API Gateway sends them."""

import base64
import time
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

ACCOUNT_ID = "123456789012"
API_ID = "local"
REGION = "us-east-1"


def http_event(
    route_key: str,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    raw_query: str = "",
    body: str | bytes | None = None,
    path_parameters: dict[str, str] | None = None,
    source_ip: str = "127.0.0.1",
    scheme: str = "https",
) -> dict[str, Any]:
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    # API Gateway adds these itself; whatever a client sent in their place does not survive.
    forwarded = headers.get("x-forwarded-for")
    headers["x-forwarded-for"] = f"{forwarded}, {source_ip}" if forwarded else source_ip
    headers["x-forwarded-proto"] = scheme
    headers["x-forwarded-port"] = "443" if scheme == "https" else "80"
    cookies = [c.strip() for c in headers.pop("cookie", "").split(";") if c.strip()]
    now = datetime.now(UTC)
    is_binary = isinstance(body, bytes)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": {"host": f"{API_ID}.execute-api.{REGION}.amazonaws.com", **headers},
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": API_ID,
            "domainName": f"{API_ID}.execute-api.{REGION}.amazonaws.com",
            "domainPrefix": API_ID,
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": uuid.uuid4().hex[:20],
            "routeKey": route_key,
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(time.time() * 1000),
        },
        "isBase64Encoded": is_binary,
    }
    if cookies:
        event["cookies"] = cookies
    if raw_query:
        # API Gateway joins repeated parameters with commas.
        params: dict[str, list[str]] = {}
        for name, value in parse_qsl(raw_query, keep_blank_values=True):
            params.setdefault(name, []).append(value)
        event["queryStringParameters"] = {name: ",".join(values) for name, values in params.items()}
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    if body is not None:
        event["body"] = base64.b64encode(body).decode() if isinstance(body, bytes) else body
    return event


def authorizer_event(request: dict[str, Any], identity_source: list[str]) -> dict[str, Any]:
    """The REQUEST authorizer event (payload 2.0) for an HTTP request event."""
    context = request["requestContext"]
    method, _, path = request["routeKey"].partition(" ")
    return {
        "version": "2.0",
        "type": "REQUEST",
        "routeArn": f"arn:aws:execute-api:{REGION}:{ACCOUNT_ID}:{API_ID}/$default/{method}{path}",
        "identitySource": identity_source,
        "routeKey": request["routeKey"],
        "rawPath": request["rawPath"],
        "rawQueryString": request["rawQueryString"],
        "cookies": request.get("cookies", []),
        "headers": request["headers"],
        "queryStringParameters": request.get("queryStringParameters", {}),
        "requestContext": {k: v for k, v in context.items() if k != "authorizer"},
        "pathParameters": request.get("pathParameters", {}),
        "stageVariables": {},
    }
