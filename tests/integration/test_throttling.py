"""Stage throttling: the template's limits, as API Gateway applies them and the local gateway too.

The clock is the test's: buckets refill only when the test moves time on, so nothing
depends on how fast this machine is.
"""

from collections.abc import Callable
from typing import Any

import pytest

from infra.deploy.template import Throttle, load
from infra.local.gateway.invoke import GatewayResponse, LocalGateway
from tests.integration.test_template import translated

pytestmark = pytest.mark.first_pass_only("the gateway, whatever the datastores")

PASSWORD_ROUTES = {
    "POST /api/v1/auth/login",
    "POST /api/v1/auth/login/swagger",
    "PUT /api/v1/auth/user/password",
}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def stage() -> dict[str, Any]:
    resources = translated()["template"]["Resources"]
    return next(r for r in resources.values() if r["Type"] == "AWS::ApiGatewayV2::Stage")["Properties"]


def test_the_stage_throttles_every_route_and_the_password_routes_tighter() -> None:
    settings = stage()
    assert settings["DefaultRouteSettings"] == {
        "ThrottlingRateLimit": {"Ref": "ThrottlingRateLimit"},
        "ThrottlingBurstLimit": {"Ref": "ThrottlingBurstLimit"},
    }
    assert set(settings["RouteSettings"]) == PASSWORD_ROUTES
    assert set(translated()["routes"]) >= PASSWORD_ROUTES  # each names a route that exists
    for route_key, limits in settings["RouteSettings"].items():
        assert limits == {
            "ThrottlingRateLimit": {"Ref": "PasswordThrottlingRateLimit"},
            "ThrottlingBurstLimit": {"Ref": "PasswordThrottlingBurstLimit"},
        }, route_key


def test_the_local_gateway_reads_the_same_limits() -> None:
    template = load()
    assert template.default_throttle == Throttle(100, 200)
    assert set(template.route_throttles) == PASSWORD_ROUTES
    assert template.throttle("POST /api/v1/auth/login") == Throttle(10, 20)
    assert template.throttle("GET /api/v1/roles") == Throttle(100, 200)
    tight = load(overrides=(("PasswordThrottlingBurstLimit", "3"), ("PasswordThrottlingRateLimit", "0.5")))
    assert tight.throttle("PUT /api/v1/auth/user/password") == Throttle(0.5, 3)


def test_auth_reserved_concurrency_is_a_parameter_off_by_default() -> None:
    auth = translated()["template"]["Resources"]["AuthFunction"]["Properties"]
    assert auth["ReservedConcurrentExecutions"] == {
        "Fn::If": ["ReserveAuthConcurrency", {"Ref": "AuthReservedConcurrency"}, {"Ref": "AWS::NoValue"}]
    }
    assert translated()["template"]["Parameters"]["AuthReservedConcurrency"]["Default"] == 0


@pytest.fixture
def throttled() -> tuple[LocalGateway, Clock, list[str]]:
    """A throttling gateway with tiny limits; it records which functions it invoked."""
    clock = Clock()
    template = load(
        overrides=(
            ("PasswordThrottlingBurstLimit", "2"),
            ("PasswordThrottlingRateLimit", "1"),
            ("ThrottlingBurstLimit", "3"),
            ("ThrottlingRateLimit", "1"),
        )
    )
    gateway = LocalGateway(template, throttle=True, clock=clock)
    invoked: list[str] = []
    real: Callable[[str, dict[str, Any]], dict[str, Any]] = gateway.invoke

    def invoke(name: str, event: dict[str, Any]) -> dict[str, Any]:
        invoked.append(name)
        return real(name, event)

    gateway.invoke = invoke  # type: ignore[method-assign]
    return gateway, clock, invoked


def login(gateway: LocalGateway) -> GatewayResponse:
    body = '{"username": "nobody", "password": "not-encrypted"}'
    return gateway.request("POST", "/api/v1/auth/login", headers={"content-type": "application/json"}, body=body)


def test_a_route_over_its_burst_answers_api_gateways_429_without_invoking_the_function(
    throttled: tuple[LocalGateway, Clock, list[str]],
) -> None:
    gateway, clock, invoked = throttled
    assert [login(gateway).status_code for _ in range(2)] == [422, 422]  # reached the function
    assert invoked == ["AuthFunction", "AuthFunction"]
    refused = login(gateway)
    assert refused.status_code == 429
    assert refused.json() == {"message": "Too Many Requests"}
    assert invoked == ["AuthFunction", "AuthFunction"]  # the function never saw it
    clock.now += 1.0  # one token back at 1 request per second
    assert login(gateway).status_code == 422
    assert login(gateway).status_code == 429


def test_each_route_has_its_own_bucket(throttled: tuple[LocalGateway, Clock, list[str]]) -> None:
    gateway, _, _ = throttled
    while login(gateway).status_code != 429:
        pass
    statuses = [gateway.request("GET", "/api/v1/auth/keys/public").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]  # the default limit, burst 3


def test_throttling_comes_before_the_authorizer(throttled: tuple[LocalGateway, Clock, list[str]]) -> None:
    gateway, _, invoked = throttled
    headers = {"authorization": "Bearer not-a-token", "content-type": "application/json"}
    answers = [gateway.request("PUT", "/api/v1/auth/user/password", headers=headers, body="{}") for _ in range(3)]
    assert [a.status_code for a in answers] == [403, 403, 429]
    assert invoked == ["AuthorizerFunction", "AuthorizerFunction"]


def test_the_default_gateway_does_not_throttle() -> None:
    """Limits are per route across all clients: a fast test suite is not an attack."""
    template = load(overrides=(("PasswordThrottlingBurstLimit", "1"), ("ThrottlingBurstLimit", "1")))
    gateway = LocalGateway(template)
    assert not gateway.throttle
    assert {gateway.request("GET", "/api/v1/auth/keys/public").status_code for _ in range(5)} == {200}
