"""HTTP API REQUEST authorizer (payload 2.0, simple responses): `authorizer_fn.handler.handler`.

Identity sources are the Authorization header and `$context.routeKey`, so a cached
decision is keyed by token *and* route and can never answer for another route.
"""

from typing import Any

from multidb import logs, runtime, snapstart
from multidb.authz import check, check_lapsed_now, check_now
from multidb.errors import AppError, Unauthorized
from multidb.rbac import code_from_route_key
from multidb.security.tokens import TokenType, bearer, verify, verify_lapsed
from multidb.settings import get_settings

log = logs.get_logger("authorizer")

DENY: dict[str, Any] = {"isAuthorized": False}
# A genuine token that has only expired, recently (`verify_lapsed`): let through with this
# context alone, so that every function answers it 401 `token_expired` before any route
# logic runs. An HTTP API answers a Deny 403, and a client must tell "refresh" from "no".
EXPIRED: dict[str, Any] = {"isAuthorized": True, "context": {"expired": True}}


def _header(event: dict[str, Any], name: str) -> str | None:
    for key, value in (event.get("headers") or {}).items():
        if key.lower() == name:
            return str(value)
    return None


def decide(event: dict[str, Any]) -> dict[str, Any]:
    route_key = event.get("routeKey") or (event.get("requestContext") or {}).get("routeKey")
    if not isinstance(route_key, str) or " " not in route_key:
        return DENY
    try:
        token = bearer(_header(event, "authorization"))
        try:
            claims = verify(token, TokenType.ACCESS)
        except Unauthorized as exc:
            if exc.error != "token_expired":
                raise
            check_lapsed_now(verify_lapsed(token))
            log.info("expired", extra={"fields": {"route": route_key}})
            return EXPIRED
        code = code_from_route_key(route_key)
        # cached grants: one blocking round trip; otherwise the database, on the loop
        principal = check_now(claims, code) or runtime.run(check(claims, code))
    except AppError as exc:
        log.info("deny", extra={"fields": {"route": route_key, "status": exc.status_code, "reason": exc.message}})
        return DENY
    return {"isAuthorized": True, "context": principal.context()}


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    rid = (event.get("requestContext") or {}).get("requestId")
    token = logs.request_id.set(str(rid) if rid else getattr(context, "aws_request_id", None))
    try:
        logs.configure(get_settings().log_level)  # settings may be unreadable: that is a Deny too
        return decide(event)
    except Exception as exc:  # fail closed, whatever went wrong
        logs.configure()
        log.error("authorizer failure: %s", type(exc).__name__, exc_info=not isinstance(exc, AppError))
        return DENY
    finally:
        logs.request_id.reset(token)


# Under SnapStart, what a first decision loads goes into the snapshot (nothing otherwise: the
# authorizer's cold start stays as lean as its imports).
snapstart.prime("redis.asyncio", "jwt", "cryptography.hazmat.primitives.asymmetric.rsa")
