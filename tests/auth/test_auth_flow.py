"""The seed's login flow end to end: gateway routing, the authorizer, the auth function's handler."""

import json
from typing import Any

import jwt
import pytest

from tests.conftest import ADMIN_PASSWORD
from tests.helpers import UA, Api, create_user, load_event, production_settings

OTHER_UA = "curl/8.5.0"


def test_public_key_is_a_pem_rsa_key(api: Api) -> None:
    response = api.get("/api/v1/auth/keys/public")
    assert response.status_code == 200
    body = response.json()
    assert body["code"] == 200
    assert body["data"]["publicKey"].startswith("-----BEGIN PUBLIC KEY-----")
    assert body["data"]["algorithm"] == "RSA-OAEP-256"
    assert isinstance(body["ts"], int)


def test_login_flow_info_refresh_reuse_logout(api: Api) -> None:
    tokens = api.login("admin", ADMIN_PASSWORD)

    info = api.get("/api/v1/auth/user/info", token=tokens.access)
    assert info.status_code == 200
    assert info.json()["data"]["username"] == "admin"
    assert info.json()["data"]["isAdmin"] is True
    assert "passwordHash" not in info.json()["data"]

    # Refresh rotates: a new pair, and the old refresh token is spent.
    refreshed = api.post("/api/v1/auth/token/refresh", headers={"x-refresh-token": tokens.refresh})
    assert refreshed.status_code == 200
    new = refreshed.json()["data"]
    assert new["refreshToken"] != tokens.refresh
    assert new["accessToken"] != tokens.access
    assert api.get("/api/v1/auth/user/info", token=new["accessToken"]).status_code == 200

    # The new refresh token is bound to the User-Agent that obtained it.
    wrong_ua = api.post(
        "/api/v1/auth/token/refresh", headers={"x-refresh-token": new["refreshToken"]}, user_agent=OTHER_UA
    )
    assert wrong_ua.status_code == 401
    assert wrong_ua.json()["code"] == 401

    # Replaying the spent token revokes the whole family: the live refresh and access tokens die too.
    replay = api.post("/api/v1/auth/token/refresh", headers={"x-refresh-token": tokens.refresh})
    assert replay.status_code == 401
    assert api.post("/api/v1/auth/token/refresh", headers={"x-refresh-token": new["refreshToken"]}).status_code == 401
    api.gateway.forget_decisions()  # API Gateway's cache aside, the function itself refuses
    assert api.get("/api/v1/auth/user/info", token=new["accessToken"]).status_code == 403
    assert api.get("/api/v1/auth/user/info", token=tokens.access).status_code == 403


def test_user_info_comes_from_the_cache_once_warm_and_follows_every_change(
    api: Api, statements: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A miss reads the user and their roles in one joined SELECT; a hit reads no SQL at all
    and makes one Redis round trip, the caller check's. A change to the user or to a role of
    theirs is in the very next answer."""
    from multidb.redis import get_redis

    user_id = create_user("reader", "reader-password", codes=("GET:/api/v1/roles",))
    token = api.login("reader", "reader-password").access
    admin = api.login("admin", ADMIN_PASSWORD).access
    statements.clear()
    assert api.get("/api/v1/auth/user/info", token=token).status_code == 200  # fills the caches
    queries = [s for s in statements if s.startswith(("SELECT", "INSERT", "UPDATE", "DELETE"))]
    assert len(queries) == 1, queries  # the caller check reads the user once, for its grants and the profile
    assert "FROM users LEFT OUTER JOIN" in queries[0]
    statements.clear()
    client, sent = get_redis(), []
    send = client.execute_command

    async def counted(*command: Any, **options: Any) -> Any:
        sent.append(command)
        return await send(*command, **options)

    monkeypatch.setattr(client, "execute_command", counted)  # the function's client (the authorizer's blocks)
    info = api.get("/api/v1/auth/user/info", token=token).json()["data"]
    monkeypatch.undo()
    assert statements == []
    assert [(command[0], len(command) - 1) for command in sent] == [("MGET", 5)]  # revocations, grants, profile
    assert info["permissions"]["interface"] == ["GET:/api/v1/roles"]
    assert (info["id"], info["username"], info["isAdmin"]) == (user_id, "reader", False)

    assert api.put(f"/api/v1/users/{user_id}", token=admin, json_body={"email": "new@example.com"}).status_code == 200
    assert api.get("/api/v1/auth/user/info", token=token).json()["data"]["email"] == "new@example.com"
    (role,) = info["roles"]
    role_id = next(
        r["id"]
        for r in api.get("/api/v1/roles?pageSize=100", token=admin).json()["data"]["records"]
        if r["code"] == role
    )
    changed = {"interfacePermissions": ["GET:/api/v1/roles", "GET:/api/v1/users"]}
    assert api.put(f"/api/v1/roles/{role_id}", token=admin, json_body=changed).status_code == 200
    permissions = api.get("/api/v1/auth/user/info", token=token).json()["data"]["permissions"]
    assert permissions["interface"] == ["GET:/api/v1/roles", "GET:/api/v1/users"]


def test_user_info_after_a_grants_miss_answers_what_the_database_holds(api: Api) -> None:
    """Grants evicted while the profile stays (LRU eviction can split them), and the profile
    stale (a change lands between the caller check's read and its database read): the
    function checks the caller against the database, then answers from it, not from the
    text it read first. Invoked directly: through the gateway the authorizer refills both."""
    from multidb import runtime
    from multidb.rbac import permission_key, profile_key
    from multidb.redis import get_redis

    user_id = create_user("reader", "reader-password", codes=("GET:/api/v1/roles",))
    token = api.login("reader", "reader-password").access
    assert api.get("/api/v1/auth/user/info", token=token).status_code == 200  # caches both
    redis = get_redis()
    profile = json.loads(runtime.run(redis.get(profile_key(user_id))))
    stale = {**profile, "email": "before-the-change@example.com"}
    runtime.run(redis.set(profile_key(user_id), json.dumps(stale)))
    runtime.run(redis.delete(permission_key(user_id)))
    event = load_event("auth/user_info")
    event["headers"]["authorization"] = f"Bearer {token}"
    del event["requestContext"]["authorizer"]  # the function verifies the token itself
    answer = api.gateway.invoke("AuthFunction", event)
    assert answer["statusCode"] == 200, answer
    assert json.loads(answer["body"])["data"]["email"] == profile["email"]


def test_logout_revokes_access_and_refresh_token(api: Api) -> None:
    tokens = api.login("admin", ADMIN_PASSWORD)
    other_session = api.login("admin", ADMIN_PASSWORD)
    assert api.get("/api/v1/auth/user/info", token=tokens.access).status_code == 200

    logout = api.post("/api/v1/auth/logout", token=tokens.access)
    assert logout.status_code == 200
    assert logout.json()["message"] == "Logged out"

    assert api.get("/api/v1/auth/user/info", token=tokens.access).status_code in (401, 403)
    assert api.post("/api/v1/auth/token/refresh", headers={"x-refresh-token": tokens.refresh}).status_code == 401
    # Another login session of the same user is untouched.
    assert api.get("/api/v1/auth/user/info", token=other_session.access).status_code == 200


def test_logout_counts_even_when_the_gateway_cached_the_allow(caching_api: Api) -> None:
    """API Gateway may answer from its authorizer cache: the function re-checks revocation."""
    api = caching_api
    tokens = api.login("admin", ADMIN_PASSWORD)
    assert api.get("/api/v1/auth/user/info", token=tokens.access).status_code == 200  # Allow now cached
    assert api.post("/api/v1/auth/logout", token=tokens.access).status_code == 200
    after = api.get("/api/v1/auth/user/info", token=tokens.access)
    assert after.status_code == 401
    assert after.json()["message"] == "token revoked"


def test_unknown_user_and_wrong_password_answer_alike(api: Api) -> None:
    create_user("carol", "carol-password")
    wrong_password = api.post("/api/v1/auth/login", json_body={"username": "carol", "password": api.encrypt("nope")})
    unknown_user = api.post("/api/v1/auth/login", json_body={"username": "nobody", "password": api.encrypt("nope")})
    assert wrong_password.status_code == unknown_user.status_code == 401
    assert wrong_password.json()["message"] == unknown_user.json()["message"]


def test_disabled_user_cannot_log_in_and_learns_nothing_from_the_answer(api: Api) -> None:
    create_user("dave", "dave-password", status=False)
    right = api.post("/api/v1/auth/login", json_body={"username": "dave", "password": api.encrypt("dave-password")})
    wrong = api.post("/api/v1/auth/login", json_body={"username": "dave", "password": api.encrypt("guess")})
    unknown = api.post("/api/v1/auth/login", json_body={"username": "nobody", "password": api.encrypt("guess")})
    # A right password must not tell a disabled account from a wrong guess or a missing user.
    assert right.status_code == wrong.status_code == unknown.status_code == 401
    assert right.json()["message"] == wrong.json()["message"] == unknown.json()["message"]


def test_access_token_claims_are_complete_and_signed_with_a_published_key(api: Api) -> None:
    tokens = api.login("admin", ADMIN_PASSWORD)
    jwks = api.get("/api/v1/auth/.well-known/jwks.json").json()
    header = jwt.get_unverified_header(tokens.access)
    key = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    claims = jwt.decode(
        tokens.access,
        jwt.PyJWK(key).key,
        algorithms=["RS256"],
        audience="multidb-api",
        issuer="multidb",
    )
    assert claims["typ"] == "access"
    assert {"exp", "iat", "nbf", "jti", "sub", "fam"} <= claims.keys()
    assert set(key) == {"kty", "e", "n", "kid", "alg", "use"}  # public parts only: no d, p, q


def test_swagger_login_checks_the_password(api: Api) -> None:
    form = {"content-type": "application/x-www-form-urlencoded"}
    good = api.post("/api/v1/auth/login/swagger", body=f"username=admin&password={ADMIN_PASSWORD}", headers=form)
    assert good.status_code == 200
    assert good.json()["token_type"] == "bearer"
    assert api.get("/api/v1/auth/user/info", token=good.json()["access_token"]).status_code == 200
    bad = api.post("/api/v1/auth/login/swagger", body="username=admin&password=wrong", headers=form)
    assert bad.status_code == 401


def test_refresh_keeps_the_user_agent_binding(api: Api) -> None:
    tokens = api.login("admin", ADMIN_PASSWORD, user_agent=UA)
    refused = api.post("/api/v1/auth/token/refresh", headers={"x-refresh-token": tokens.refresh}, user_agent=OTHER_UA)
    assert refused.status_code == 401
    # A refusal for the wrong client does not spend the owner's token.
    assert api.post("/api/v1/auth/token/refresh", headers={"x-refresh-token": tokens.refresh}).status_code == 200


def test_behind_the_gateway_the_function_trusts_the_context_but_still_checks_revocation(
    caching_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = caching_api
    from tests.helpers import reset_clients

    monkeypatch.setenv("TRUST_GATEWAY_AUTHORIZER", "true")
    reset_clients()
    try:
        tokens = api.login("admin", ADMIN_PASSWORD)
        assert api.get("/api/v1/auth/user/info", token=tokens.access).status_code == 200
        assert api.post("/api/v1/auth/logout", token=tokens.access).status_code == 200
        after = api.get("/api/v1/auth/user/info", token=tokens.access)  # Allow cached by the gateway
        assert after.status_code == 401
        assert after.json()["message"] == "token revoked"
    finally:
        monkeypatch.undo()
        reset_clients()


def test_swagger_login_does_not_exist_in_production(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    production = production_settings()
    monkeypatch.setattr("auth_fn.routes.get_settings", lambda: production)
    form = {"content-type": "application/x-www-form-urlencoded"}
    response = api.post("/api/v1/auth/login/swagger", body=f"username=admin&password={ADMIN_PASSWORD}", headers=form)
    assert response.status_code == 404
    assert response.json()["code"] == 404


def test_a_malformed_gateway_context_is_401_not_500(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.helpers import load_event, reset_clients

    monkeypatch.setenv("TRUST_GATEWAY_AUTHORIZER", "true")
    reset_clients()
    try:
        event = load_event("auth/user_info")
        event["requestContext"]["authorizer"]["lambda"] = {"userId": "x"}  # no jti, fam, iat, exp
        response = api.gateway.invoke("AuthFunction", event)
    finally:
        monkeypatch.undo()
        reset_clients()
    assert response["statusCode"] == 401
