"""The stored API Gateway events: one per template route, and the handlers answer them."""

import json
from pathlib import Path

import pytest

from infra.deploy.template import load
from infra.local.gateway.invoke import GatewayResponse
from tests.conftest import ADMIN_PASSWORD
from tests.helpers import EVENTS, Api, load_event

AUTH_EVENTS = sorted(p.stem for p in (EVENTS / "auth").glob("*.json"))
API_EVENTS = sorted(f"{p.parent.name}/{p.stem}" for p in EVENTS.glob("*/*.json") if p.parent.name != "authorizer")


def test_every_template_route_has_a_stored_event() -> None:
    stored = {json.loads(p.read_text())["routeKey"] for p in EVENTS.glob("*/*.json") if "authorizer" not in p.parts}
    assert stored == {route.route_key for route in load().routes}


@pytest.mark.parametrize("name", API_EVENTS)
def test_stored_events_match_their_route(name: str) -> None:
    event = load_event(name)
    found = load().find(event["requestContext"]["http"]["method"], event["rawPath"])
    assert found is not None
    route, _ = found
    assert route.route_key == event["routeKey"] == event["requestContext"]["routeKey"]
    assert event["version"] == "2.0"
    assert ("authorization" in event["headers"]) == (route.authorizer is not None)
    assert name.split("/")[0] == route.function.removesuffix("Function").lower()


def invoke(api: Api, name: str, replace: dict[str, str] | None = None) -> GatewayResponse:
    text = (EVENTS / "auth" / f"{name}.json").read_text()
    for placeholder, value in (replace or {}).items():
        text = text.replace(placeholder, value)
    return GatewayResponse.from_lambda(api.gateway.invoke("AuthFunction", json.loads(text)))


def test_stored_events_answer(api: Api) -> None:
    assert invoke(api, "get_public_key").status_code == 200
    assert invoke(api, "get_jwks").json()["keys"]
    ciphertext = api.encrypt(ADMIN_PASSWORD)
    login = invoke(api, "login", {"<base64 RSA-OAEP-SHA256 ciphertext>": ciphertext})
    assert login.status_code == 200
    tokens = login.json()["data"]
    swagger = invoke(api, "login_swagger", {"password=123456": f"password={ADMIN_PASSWORD}"})
    assert swagger.status_code == 200
    assert invoke(api, "user_info", {"<access-token>": tokens["accessToken"]}).status_code == 200
    refreshed = invoke(api, "refresh_token", {"<refresh-token>": tokens["refreshToken"]})
    assert refreshed.status_code == 200
    access = refreshed.json()["data"]["accessToken"]
    assert invoke(api, "logout", {"<access-token>": access}).status_code == 200


def test_authorizer_events_are_http_api_request_events() -> None:
    for path in Path(EVENTS / "authorizer").glob("*.json"):
        event = json.loads(path.read_text())
        assert event["type"] == "REQUEST"
        assert event["version"] == "2.0"
        assert event["routeKey"] in event["identitySource"]
