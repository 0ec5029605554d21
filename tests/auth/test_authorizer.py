"""The Lambda authorizer, invoked with real HTTP API authorizer events from events/authorizer/."""

import base64
import contextlib
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from authorizer_fn.handler import handler
from infra.deploy.template import load
from infra.local.gateway.invoke import LambdaContext, LocalGateway
from multidb.security.keys import public_pem, signing_key
from tests.conftest import ADMIN_PASSWORD
from tests.helpers import Api, create_user, get_user_id, invalidate_cache, load_event, reset_clients, set_user


def authorize(token: str | None, route_key: str = "GET /api/v1/auth/user/info") -> dict[str, Any]:
    event = load_event("authorizer/user_info")
    method, _, path = route_key.partition(" ")
    event["routeKey"] = event["requestContext"]["routeKey"] = route_key
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    if token is None:
        del event["headers"]["authorization"]
        event["identitySource"] = [route_key]
    else:
        event["headers"]["authorization"] = f"Bearer {token}"
        event["identitySource"] = [f"Bearer {token}", route_key]
    return handler(event, LambdaContext("AuthorizerFunction"))


def b64(data: dict[str, Any] | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def claims(user_id: str, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "iss": "multidb",
        "aud": "multidb-api",
        "sub": user_id,
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
        "typ": "access",
        "fam": uuid.uuid4().hex,
    }
    return {**base, **overrides}


def signed(payload: dict[str, Any], key: rsa.RSAPrivateKey | None = None, kid: str | None = None) -> str:
    current = signing_key()
    return jwt.encode(payload, key or current.private_key, algorithm="RS256", headers={"kid": kid or current.kid})


@pytest.fixture
def user() -> str:
    return create_user("grace", "grace-password", codes=("GET:/api/v1/roles",))


def test_the_stored_event_is_allowed_with_a_real_token(api: Api, user: str) -> None:
    token = api.login("grace", "grace-password").access
    decision = authorize(token)
    assert decision["isAuthorized"] is True
    assert decision["context"]["userId"] == user
    assert decision["context"]["isAdmin"] is False
    assert set(decision["context"]) == {"userId", "name", "isAdmin", "jti", "fam", "iat", "exp", "kid"}
    assert decision["context"]["kid"] == signing_key().kid  # functions check it is still published
    assert all(isinstance(v, str | int | bool) for v in decision["context"].values())


def test_no_token_is_denied() -> None:
    assert handler(load_event("authorizer/no_token"), LambdaContext("AuthorizerFunction")) == {"isAuthorized": False}


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "Bearer", ""])
def test_garbage_is_denied(token: str) -> None:
    assert authorize(token)["isAuthorized"] is False


def test_alg_none_is_denied(user: str) -> None:
    token = f"{b64({'alg': 'none', 'typ': 'JWT', 'kid': signing_key().kid})}.{b64(claims(user))}."
    assert authorize(token)["isAuthorized"] is False


def test_hs256_signed_with_the_public_key_is_denied(user: str) -> None:
    """The classic key-confusion attack: HMAC keyed with the RSA public key's PEM."""
    secret = public_pem(signing_key().private_key.public_key()).encode()
    signing_input = f"{b64({'alg': 'HS256', 'typ': 'JWT', 'kid': signing_key().kid})}.{b64(claims(user))}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    assert authorize(f"{signing_input}.{b64(signature)}")["isAuthorized"] is False


def test_a_token_signed_with_another_key_is_denied(user: str) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert authorize(signed(claims(user), key=stranger))["isAuthorized"] is False
    assert authorize(signed(claims(user), key=stranger, kid="unknown-kid"))["isAuthorized"] is False


@pytest.mark.parametrize(
    "override",
    [
        # expired longer than the refresh-token lifetime after issue (recently expired: below)
        {"exp": int(time.time()) - 7 * 24 * 3600, "iat": int(time.time()) - 8 * 24 * 3600, "nbf": 0},
        {"aud": "someone-else"},
        {"iss": "https://evil.example"},
        {"typ": "refresh"},
        {"nbf": int(time.time()) + 600},
    ],
    ids=["expired-long-ago", "wrong-aud", "wrong-iss", "refresh-type", "not-yet-valid"],
)
def test_bad_claims_are_denied(user: str, override: dict[str, Any]) -> None:
    assert authorize(signed(claims(user, **override)))["isAuthorized"] is False


def lapsed(user_id: str, **overrides: Any) -> dict[str, Any]:
    """Claims of an access token that expired two minutes ago, issued ten minutes ago."""
    now = int(time.time())
    return claims(user_id, iat=now - 600, nbf=now - 600, exp=now - 120, **overrides)


def test_a_recently_expired_genuine_token_is_let_through_marked_expired_and_nothing_else(user: str) -> None:
    """So that the function answers 401 token_expired: a Deny could only be the gateway's 403."""
    decision = authorize(signed(lapsed(user)), "DELETE /api/v1/roles/{role_id}")
    assert decision == {"isAuthorized": True, "context": {"expired": True}}


@pytest.mark.parametrize(
    "override",
    [{"aud": "someone-else"}, {"iss": "https://evil.example"}, {"typ": "refresh"}],
    ids=["wrong-aud", "wrong-iss", "refresh-type"],
)
def test_an_expired_token_wrong_in_anything_else_is_denied(user: str, override: dict[str, Any]) -> None:
    assert authorize(signed(lapsed(user, **override)))["isAuthorized"] is False


def test_an_expired_token_signed_with_another_key_is_denied(user: str) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert authorize(signed(lapsed(user), key=stranger))["isAuthorized"] is False


def test_a_token_expired_within_the_leeway_is_still_current(api: Api, user: str) -> None:
    now = int(time.time())
    decision = authorize(signed(claims(user, iat=now - 600, nbf=now - 600, exp=now - 2)))
    assert decision["isAuthorized"] is True
    assert decision["context"]["userId"] == user


def test_an_expired_token_of_a_revoked_session_is_denied(api: Api, user: str) -> None:
    from multidb import runtime
    from multidb.redis import get_redis
    from multidb.security.sessions import revoked_family_key

    payload = lapsed(user)
    assert authorize(signed(payload))["isAuthorized"] is True
    runtime.run(get_redis().set(revoked_family_key(payload["fam"]), "1"))
    assert authorize(signed(payload))["isAuthorized"] is False


def test_an_expired_token_is_denied_when_redis_is_unreachable(user: str, outage: pytest.MonkeyPatch) -> None:
    token = signed(lapsed(user))
    outage.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    reset_clients()
    assert authorize(token)["isAuthorized"] is False


@pytest.mark.parametrize("missing", ["exp", "iat", "nbf", "iss", "aud", "sub", "jti", "typ", "fam"])
def test_a_token_missing_a_required_claim_is_denied(user: str, missing: str) -> None:
    payload = claims(user)
    del payload[missing]
    assert authorize(signed(payload))["isAuthorized"] is False


def test_a_real_refresh_token_is_not_an_access_token(api: Api, user: str) -> None:
    tokens = api.login("grace", "grace-password")
    assert authorize(tokens.refresh)["isAuthorized"] is False
    assert authorize(tokens.access)["isAuthorized"] is True


def test_a_revoked_token_is_denied(api: Api, user: str) -> None:
    tokens = api.login("grace", "grace-password")
    assert authorize(tokens.access)["isAuthorized"] is True
    assert api.post("/api/v1/auth/logout", token=tokens.access).status_code == 200
    assert authorize(tokens.access)["isAuthorized"] is False


def test_a_disabled_user_is_denied_on_the_next_request(api: Api, user: str) -> None:
    token = api.login("grace", "grace-password").access
    assert authorize(token)["isAuthorized"] is True
    set_user(user, status=False)
    invalidate_cache(user)
    assert authorize(token)["isAuthorized"] is False


def test_a_deleted_user_is_denied(user: str) -> None:
    assert authorize(signed(claims(str(uuid.uuid4()))))["isAuthorized"] is False


def test_allows_exactly_the_granted_routes(api: Api, user: str) -> None:
    token = api.login("grace", "grace-password").access
    assert authorize(token, "GET /api/v1/roles")["isAuthorized"] is True
    assert authorize(token, "POST /api/v1/roles")["isAuthorized"] is False
    assert authorize(token, "GET /api/v1/roles/{role_id}")["isAuthorized"] is False
    assert authorize(token, "DELETE /api/v1/users")["isAuthorized"] is False
    # Authenticated-only routes need no grant; a malformed route key is refused.
    assert authorize(token, "GET /api/v1/auth/user/info")["isAuthorized"] is True
    assert authorize(token, "nonsense")["isAuthorized"] is False


def test_a_disabled_role_grants_nothing(api: Api) -> None:
    create_user("heidi", "heidi-password", codes=("GET:/api/v1/roles",), role_status=False)
    token = api.login("heidi", "heidi-password").access
    assert authorize(token, "GET /api/v1/roles")["isAuthorized"] is False


def test_admin_bypasses_permission_checks(api: Api) -> None:
    token = api.login("admin", ADMIN_PASSWORD).access
    assert authorize(token, "DELETE /api/v1/roles/{role_id}")["isAuthorized"] is True


def test_the_permission_cache_is_rebuilt_from_the_database_on_a_miss(api: Api, user: str) -> None:
    token = api.login("grace", "grace-password").access
    invalidate_cache(user)
    assert authorize(token, "GET /api/v1/roles")["isAuthorized"] is True
    from multidb import runtime
    from multidb.redis import get_redis

    cached = json.loads(runtime.run(get_redis().get(f"auth:permission:{user}")))
    assert cached["codes"] == ["GET:/api/v1/roles"]


@pytest.fixture
def outage(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    yield monkeypatch
    monkeypatch.undo()
    reset_clients()


def test_denies_when_redis_is_unreachable(api: Api, user: str, outage: pytest.MonkeyPatch) -> None:
    token = api.login("grace", "grace-password").access
    outage.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    reset_clients()
    assert authorize(token)["isAuthorized"] is False


def test_denies_when_the_database_is_unreachable_on_a_cache_miss(
    api: Api, user: str, outage: pytest.MonkeyPatch
) -> None:
    token = api.login("grace", "grace-password").access
    invalidate_cache(user)
    outage.setenv("DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:1/none")
    reset_clients()
    assert authorize(token)["isAuthorized"] is False


def count_authorizer_calls(gateway: LocalGateway) -> list[str]:
    calls: list[str] = []
    original = gateway.handler("AuthorizerFunction")

    def counting(event: dict[str, Any], context: Any) -> dict[str, Any]:
        calls.append(event["routeKey"])
        return original(event, context)

    gateway._handlers["AuthorizerFunction"] = counting
    return calls


def test_a_cached_decision_is_never_reused_for_another_route(api: Api, user: str) -> None:
    """With caching on, the gateway keys decisions by (Authorization, routeKey)."""
    gateway = LocalGateway(load(overrides=(("AuthorizerCacheTtl", "300"),)))
    token = api.login("grace", "grace-password").access
    calls = count_authorizer_calls(gateway)
    headers = {"authorization": f"Bearer {token}", "user-agent": "t"}
    assert gateway.request("GET", "/api/v1/auth/user/info", headers=headers).status_code == 200
    assert gateway.request("GET", "/api/v1/auth/user/info", headers=headers).status_code == 200
    assert gateway.request("POST", "/api/v1/auth/logout", headers=headers).status_code == 200
    assert calls == ["GET /api/v1/auth/user/info", "POST /api/v1/auth/logout"]


def test_by_default_every_request_asks_the_authorizer(api: Api, user: str) -> None:
    """API Gateway caches Deny too: without caching a new grant counts on the next request."""
    gateway = LocalGateway()
    assert gateway.template.authorizers["LambdaAuthorizer"].ttl == 0
    token = api.login("grace", "grace-password").access
    calls = count_authorizer_calls(gateway)
    headers = {"authorization": f"Bearer {token}"}
    for _ in range(3):
        assert gateway.request("GET", "/api/v1/auth/user/info", headers=headers).status_code == 200
    assert len(calls) == 3


def test_the_forged_tokens_control_a_correctly_signed_token_is_allowed(user: str) -> None:
    """Each denial above differs from this allowed token in exactly one respect."""
    assert authorize(signed(claims(user)))["isAuthorized"] is True


def test_grants_read_before_an_invalidation_are_not_cached(
    api: Api, user: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A role change committed while the authorizer reads the old rows must not linger in the cache."""
    from multidb import rbac, runtime
    from multidb.redis import get_redis

    token = api.login("grace", "grace-password").access
    invalidate_cache(user)
    real = rbac.load_views

    async def slow_read(session: Any, user_id: str) -> Any:
        views = await real(session, user_id)  # the old rows...
        await rbac.invalidate(get_redis(), user_id)  # ...while an admin's change commits
        return views

    monkeypatch.setattr(rbac, "load_views", slow_read)
    assert authorize(token, "GET /api/v1/roles")["isAuthorized"] is True  # answered from what it read
    assert runtime.run(get_redis().get(f"auth:permission:{user}")) is None  # but not cached
    assert runtime.run(get_redis().get(f"auth:profile:v1:{user}")) is None
    monkeypatch.undo()
    authorize(token, "GET /api/v1/roles")
    assert runtime.run(get_redis().get(f"auth:permission:{user}")) is not None  # an undisturbed read is


def test_a_decision_on_cached_grants_never_runs_the_event_loop(
    api: Api, user: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Warm, a decision is one blocking `MGET`; only a cache miss reads on the loop."""
    from multidb import runtime

    token = api.login("grace", "grace-password").access
    invalidate_cache(user)
    runs: list[str] = []
    real = runtime.run

    def counted(coro: Any) -> Any:
        runs.append(coro.__qualname__)
        return real(coro)

    monkeypatch.setattr(runtime, "run", counted)
    assert authorize(token, "GET /api/v1/roles")["isAuthorized"] is True
    assert runs == ["check"]  # the miss: the database, on the loop
    assert authorize(token, "GET /api/v1/roles")["isAuthorized"] is True
    assert authorize(token, "POST /api/v1/roles")["isAuthorized"] is False
    assert runs == ["check"]


def _outcome(decide: Any) -> tuple[str, str]:
    from multidb.errors import AppError

    try:
        principal = decide()
    except AppError as exc:
        return type(exc).__name__, exc.error
    return "allowed", repr(principal)


@pytest.mark.parametrize("state", ["granted", "not granted", "any user", "revoked", "family revoked", "disabled"])
def test_the_blocking_check_answers_as_the_awaited_one(api: Api, user: str, state: str) -> None:
    from multidb import runtime
    from multidb.authz import check, check_now
    from multidb.errors import Forbidden
    from multidb.redis import get_redis
    from multidb.security.sessions import revoked_family_key, revoked_key
    from multidb.security.tokens import TokenType, verify

    claims = verify(api.login("grace", "grace-password").access, TokenType.ACCESS)
    code = {"not granted": "POST:/api/v1/roles", "any user": None}.get(state, "GET:/api/v1/roles")
    if state == "disabled":
        set_user(user, status=False)
        invalidate_cache(user)
    with pytest.raises(Forbidden, match="disabled") if state == "disabled" else contextlib.nullcontext():
        runtime.run(check(claims, None))  # fills the cache, a disabled user's grants too
    if state in ("revoked", "family revoked"):
        key = revoked_key(claims.jti) if state == "revoked" else revoked_family_key(claims.fam)
        runtime.run(get_redis().set(key, "1", ex=60))
    blocking = _outcome(lambda: check_now(claims, code))
    assert blocking == _outcome(lambda: runtime.run(check(claims, code)))
    expected = {"not granted": "Forbidden", "revoked": "TokenRevoked", "family revoked": "TokenRevoked"}
    assert blocking[0] == {**expected, "disabled": "UserDisabled"}.get(state, "allowed")


@pytest.mark.parametrize(
    "tampered",
    [
        lambda grants, admin: admin,  # another user's grants, an admin's, under this user's key
        lambda grants, admin: grants.replace('"admin": false', '"admin": "no"'),  # bool("no") is True
    ],
    ids=["another user's", "a string for a flag"],
)
def test_cached_grants_of_another_user_or_shape_are_refused(api: Api, user: str, tampered: Any) -> None:
    """Only Redis's writers can put them there; the decision still fails closed."""
    from multidb import runtime
    from multidb.redis import get_redis

    token = api.login("grace", "grace-password").access
    admin = api.login("admin", ADMIN_PASSWORD).access
    assert authorize(token, "GET /api/v1/roles")["isAuthorized"] is True
    assert authorize(admin, "GET /api/v1/roles")["isAuthorized"] is True
    redis = get_redis()
    grants = runtime.run(redis.get(f"auth:permission:{user}"))
    admins = runtime.run(redis.get(f"auth:permission:{get_user_id('admin')}"))
    runtime.run(redis.set(f"auth:permission:{user}", tampered(grants, admins), ex=60))
    assert authorize(token, "GET /api/v1/roles")["isAuthorized"] is False
    assert authorize(token, "POST /api/v1/roles")["isAuthorized"] is False
