"""Behind a caching gateway (AuthorizerCacheTtl > 0, TRUST_GATEWAY_AUTHORIZER=true, as
deployed), API Gateway answers a repeated request from the authorizer's cached Allow; every
function still refuses a token once it has expired, or once its signing key is no longer
published, whatever the gateway cached."""

import json
import math
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from multidb.security import keys
from multidb.security.tokens import TokenType, issue, token_payload
from tests.conftest import ADMIN_PASSWORD
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
    # A first pass with a long-lived token loads every function; the short-lived token must
    # outlive a second pass, which takes longer on a busy machine: its lifetime is a few times
    # the first pass's (2 s at least).
    started = time.monotonic()
    _all_served(api, _admin_token(lifetime=300)[0])
    token, exp = _admin_token(lifetime=max(2, math.ceil(3 * (time.monotonic() - started))))
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


# Expiry as a client sees it through the gateway (docs/api.md, "Expiry"): API Gateway answers
# a Deny 403 {"message": "Forbidden"} and cannot be made to say more, so the authorizer lets a
# genuine, recently expired token through marked `expired`, and every function answers it
# 401 token_expired before any route logic; anything else the authorizer refuses stays 403.


def _signed(user_id: str, *, issued_ago: int, expired_ago: int, key: Any = None, **overrides: Any) -> str:
    import jwt

    issued = int(time.time()) - issued_ago
    payload = token_payload(user_id, TokenType.ACCESS, uuid.uuid4().hex, issued_ago - expired_ago, issued) | overrides
    current = keys.signing_key()
    return jwt.encode(payload, key or current.private_key, algorithm="RS256", headers={"kid": current.kid})


def _recently_expired() -> str:
    return _signed(get_user_id("admin"), issued_ago=600, expired_ago=60)


def _gateway_denial(response: Any, status: int, message: str) -> None:
    assert response.status_code == status, response.body
    assert response.json() == {"message": message}


@pytest.mark.parametrize("trusted", [True, False], ids=["trusting-the-context", "verifying-itself"])
def test_a_recently_expired_genuine_token_gets_401_token_expired_from_every_function(
    api: Api, configure: Callable[..., None], trusted: bool
) -> None:
    configure(TRUST_GATEWAY_AUTHORIZER=str(trusted).lower())
    token = _recently_expired()
    for path in ROUTES:
        response = api.get(path, token=token)
        assert response.status_code == 401, (path, response.body)
        body = response.json()
        assert (body["code"], body["error"]) == (401, "token_expired"), path
        assert response.headers["www-authenticate"] == "Bearer"


def test_an_expired_token_never_reaches_a_route(api: Api, configure: Callable[..., None]) -> None:
    """A delete with an expired admin token changes nothing."""
    configure(TRUST_GATEWAY_AUTHORIZER="true")
    admin = api.login("admin", ADMIN_PASSWORD).access
    created = api.post("/api/v1/roles", token=admin, json_body={"name": "kept", "code": "kept", "status": True})
    assert created.status_code == 201, created.body
    role = created.json()["data"]["id"]
    refused = api.delete(f"/api/v1/roles/{role}", token=_recently_expired())
    assert refused.status_code == 401
    assert refused.json()["error"] == "token_expired"
    listed = api.get("/api/v1/roles?keyword=kept", token=admin).json()["data"]["records"]
    assert [r["id"] for r in listed] == [role]


def test_the_gateways_cached_allow_for_an_expired_token_still_gets_401(
    caching_api: Api, behind_the_gateway: list[str]
) -> None:
    token = _recently_expired()
    for _ in range(2):
        response = caching_api.get("/api/v1/roles", token=token)
        assert response.status_code == 401
        assert response.json()["error"] == "token_expired"
    assert behind_the_gateway == ["AuthorizerFunction", "RolesFunction", "RolesFunction"]


REFUSED = ["forged", "expired-too-long-ago", "wrong-audience", "logged-out", "expired-in-a-revoked-session", "garbage"]


@pytest.mark.parametrize("kind", REFUSED)
def test_any_other_refused_token_gets_the_gateways_403(api: Api, kind: str) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    admin = get_user_id("admin")
    if kind == "forged":
        stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        token = _signed(admin, issued_ago=600, expired_ago=60, key=stranger)
    elif kind == "expired-too-long-ago":  # past the refresh-token lifetime after issue
        token = _signed(admin, issued_ago=7 * 24 * 3600 + 60, expired_ago=7 * 24 * 3600)
    elif kind == "wrong-audience":
        token = _signed(admin, issued_ago=600, expired_ago=60, aud="someone-else")
    elif kind == "logged-out":
        token = api.login("admin", ADMIN_PASSWORD).access
        assert api.post("/api/v1/auth/logout", token=token).status_code == 200
    elif kind == "expired-in-a-revoked-session":
        from multidb import runtime
        from multidb.redis import get_redis
        from multidb.security.sessions import revoked_family_key

        family = uuid.uuid4().hex
        runtime.run(get_redis().set(revoked_family_key(family), "1"))
        token = _signed(admin, issued_ago=600, expired_ago=60, fam=family)
    else:
        token = "garbage"
    for path in ROUTES:
        _gateway_denial(api.get(path, token=token), 403, "Forbidden")


def test_a_missing_token_gets_the_gateways_401_before_the_authorizer_runs(api: Api) -> None:
    invoked: list[str] = []
    invoke = api.gateway.invoke
    api.gateway.invoke = lambda name, event: invoked.append(name) or invoke(name, event)  # type: ignore[method-assign]
    try:
        for path in ROUTES:
            _gateway_denial(api.get(path), 401, "Unauthorized")
    finally:
        del api.gateway.invoke
    assert invoked == []
