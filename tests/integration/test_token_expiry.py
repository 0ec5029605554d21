"""Behind a caching gateway (AuthorizerCacheTtl > 0, TRUST_GATEWAY_AUTHORIZER=true, as
deployed), API Gateway answers a repeated request from the authorizer's cached Allow; every
function still refuses a token once it has expired, or once its signing key is no longer
published, whatever the gateway cached."""

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from multidb.security import keys
from multidb.security.tokens import TokenType, issue
from tests.helpers import Api, get_user_id

# One read per function behind the authorizer.
ROUTES = [
    "/api/v1/auth/user/info",
    "/api/v1/roles",
    "/api/v1/users",
    "/api/v1/router/backend",
    "/api/v1/tasks/schedules",
    "/api/v1/files",
    "/api/v1/audit",
]
LEEWAY = 1


@pytest.fixture
def behind_the_gateway(caching_api: Api, configure: Callable[..., None], monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The deployed wiring; returns the functions the gateway invokes from now on."""
    configure(TRUST_GATEWAY_AUTHORIZER="true", JWT_LEEWAY=LEEWAY)
    invoked: list[str] = []
    invoke = caching_api.gateway.invoke
    monkeypatch.setattr(caching_api.gateway, "invoke", lambda name, event: invoked.append(name) or invoke(name, event))
    return invoked


def _admin_token(lifetime: int) -> tuple[str, int]:
    token, claims = issue(get_user_id("admin"), TokenType.ACCESS, uuid.uuid4().hex, lifetime)
    return token, claims.exp


def _all_served(api: Api, token: str) -> None:
    for path in ROUTES:
        response = api.get(path, token=token)
        assert response.status_code == 200, (path, response.body)


def _all_refused(api: Api, token: str, error: str, invoked: list[str]) -> None:
    invoked.clear()
    for path in ROUTES:
        response = api.get(path, token=token)
        assert response.status_code == 401, (path, response.body)
        assert response.json()["error"] == error, path
        assert response.headers["www-authenticate"] == "Bearer"
    # The gateway answered each from its cached Allow: the functions refused on their own.
    assert "AuthorizerFunction" not in invoked
    assert len(invoked) == len(ROUTES)


def test_an_expired_token_is_refused_by_every_function_whatever_the_gateway_cached(
    caching_api: Api, behind_the_gateway: list[str]
) -> None:
    api = caching_api
    token, exp = _admin_token(lifetime=2)
    _all_served(api, token)  # each route's Allow is now in the gateway's cache
    assert "AuthorizerFunction" in behind_the_gateway

    # Served until exp + leeway, refused from then on: poll one route until it refuses.
    deadline = exp + LEEWAY + 1.0
    while True:
        sent = time.time()
        answer = api.get("/api/v1/auth/user/info", token=token)
        if answer.status_code != 200:
            break
        assert time.time() < deadline, "an expired token was still served past its leeway"
        time.sleep(0.05)
    assert answer.status_code == 401
    assert time.time() >= exp + LEEWAY, "refused before its leeway ran out"
    assert sent < deadline
    _all_refused(api, token, "token_expired", behind_the_gateway)


def _published(*private: Any) -> str:
    return json.dumps(
        [{"kid": keys.kid_of(key.public_key()), "pem": keys.public_pem(key.public_key())} for key in private]
    )


def test_a_token_whose_key_is_no_longer_published_is_refused_by_every_function(
    caching_api: Api, behind_the_gateway: list[str], configure: Callable[..., None]
) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    api = caching_api
    current = keys.signing_key().private_key
    successor = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    configure(TRUST_GATEWAY_AUTHORIZER="true", JWT_LEEWAY=LEEWAY, JWT_PUBLIC_KEYS=_published(current))
    token, _ = _admin_token(lifetime=300)
    _all_served(api, token)

    # A rotation publishes the successor beside the current key: the token still counts.
    configure(JWT_PUBLIC_KEYS=_published(successor, current))
    _all_served(api, token)

    # The current key is retired: every cached Allow for its tokens is refused.
    configure(JWT_PUBLIC_KEYS=_published(successor))
    _all_refused(api, token, "invalid_token", behind_the_gateway)


def test_a_context_without_the_key_id_is_refused(caching_api: Api, behind_the_gateway: list[str]) -> None:
    """A context another authorizer wrote (or an older one, cached across a deploy) names no
    key: the function cannot tell that the key is still published, and refuses."""
    from tests.helpers import load_event

    token, exp = _admin_token(lifetime=300)
    event = json.loads(json.dumps(load_event("roles/list_roles")).replace("<access-token>", token))
    context = event["requestContext"]["authorizer"]["lambda"]
    context.update(userId=get_user_id("admin"), jti=uuid.uuid4().hex, exp=exp, iat=exp - 300)
    del context["kid"]
    response = caching_api.gateway.invoke("RolesFunction", event)
    assert response["statusCode"] == 401
    assert json.loads(response["body"])["error"] == "invalid_authorizer_context"
