"""Every route documents the error envelope for each status it can answer, and no other; each
lists the `error` names it can answer with that status."""

from typing import Any

import pytest
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

from auth_fn.app import app


def test_each_route_documents_only_the_errors_it_can_answer() -> None:
    """The public key routes cannot answer 409 or 429; login can answer 429; each in the envelope."""
    operations = {
        f"{method.upper()} {path}": operation
        for path, methods in app.openapi()["paths"].items()
        for method, operation in methods.items()
    }
    documented = {key: {s for s in op["responses"] if s >= "400"} for key, op in operations.items()}
    assert documented["GET /api/v1/auth/keys/public"] == {"500", "503"}
    assert documented["GET /api/v1/auth/.well-known/jwks.json"] == {"500", "503"}
    assert documented["POST /api/v1/auth/login"] == {"400", "401", "422", "429", "500", "503"}
    assert documented["GET /api/v1/auth/user/info"] == {"401", "403", "500", "503"}
    assert documented["PUT /api/v1/auth/user/password"] == {"400", "401", "403", "422", "429", "500", "503"}
    for key, operation in operations.items():
        for status in documented[key]:
            schema = operation["responses"][status]["content"]["application/json"]["schema"]
            assert schema["allOf"][0] == {"$ref": "#/components/schemas/ErrorResponse"}, (key, status)
    login = {
        status: names(operations["POST /api/v1/auth/login"], status) for status in documented["POST /api/v1/auth/login"]
    }
    assert login == {
        "400": ["bad_request"],
        "401": ["bad_credentials", "sessions_ended"],
        "422": ["invalid_input", "password_not_encrypted"],
        "429": ["too_many_failed_logins"],
        "500": ["internal_error"],
        "503": ["backend_unavailable", "configuration_unavailable", "database_unavailable", "service_unavailable"],
    }
    # The caller check's errors and the route's own, in one list per status.
    password = operations["PUT /api/v1/auth/user/password"]
    assert names(password, "401") == [
        "invalid_authorizer_context",
        "invalid_token",
        "missing_bearer_token",
        "token_expired",
        "token_revoked",
        "user_gone",
    ]
    assert names(password, "403") == ["permission_denied", "user_disabled"]
    assert names(password, "422") == [
        "invalid_input",
        "password_not_encrypted",
        "weak_password",
        "wrong_current_password",
    ]
    assert "authorization_unavailable" in names(password, "503")


def names(operation: dict[str, Any], status: str) -> list[str]:
    """The `error` names an operation's response lists."""
    schema = operation["responses"][status]["content"]["application/json"]["schema"]
    listed: list[str] = schema["allOf"][1]["properties"]["error"]["enum"]
    return listed


def test_responses_use_camel_case() -> None:
    schema = app.openapi()["components"]["schemas"]
    assert "accessToken" in schema["TokenPairPublic"]["properties"]
    assert "isAdmin" in schema["UserInfo"]["properties"]
    assert "passwordHash" not in schema["UserInfo"]["properties"]


def test_the_merged_document_is_valid_openapi_3_1() -> None:
    """What generators read (openapi-python-client refused a password flow without `scopes`)."""
    from openapi_spec_validator import validate

    from infra.deploy.template import load
    from infra.local.gateway.docs import merged_openapi

    document = merged_openapi(load())
    validate(document)
    flow = document["components"]["securitySchemes"]["SwaggerLogin"]["flows"]["password"]
    broken = {
        **document,
        "components": {
            **document["components"],
            "securitySchemes": {
                "SwaggerLogin": {"type": "oauth2", "flows": {"password": {"tokenUrl": flow["tokenUrl"]}}}
            },
        },
    }
    with pytest.raises(OpenAPIValidationError, match='"scopes" is a required property'):
        validate(broken)


def test_every_protected_operation_documents_the_gateways_denials() -> None:
    """API Gateway answers `{"message": "Unauthorized"}` (no token) and `{"message": "Forbidden"}`
    (the authorizer's No) itself: a 401 or 403 is one of that or the function's envelope."""
    from infra.deploy.template import load
    from infra.local.gateway.docs import merged_openapi

    document = merged_openapi(load())
    assert document["components"]["schemas"]["GatewayDenial"]["required"] == ["message"]
    assert "code" not in document["components"]["schemas"]["GatewayDenial"]["properties"]
    protected = 0
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            responses = operation["responses"]
            if "security" in operation:
                protected += 1
                listed = {}
                for status in ("401", "403"):
                    envelope, denial = responses[status]["content"]["application/json"]["schema"]["oneOf"]
                    assert envelope["allOf"][0] == {"$ref": "#/components/schemas/ErrorResponse"}, (method, path)
                    assert denial == {"$ref": "#/components/schemas/GatewayDenial"}, (method, path)
                    listed[status] = envelope["allOf"][1]["properties"]["error"]["enum"]
                assert {"missing_bearer_token", "token_expired", "token_revoked"} <= set(listed["401"]), (method, path)
                assert {"permission_denied", "user_disabled"} <= set(listed["403"]), (method, path)
            else:
                assert "403" not in responses, (method, path)
    assert protected > 30


@pytest.mark.parametrize("name", ["RoleUpdate", "UserUpdate", "ScheduleUpdate"])
def test_update_bodies_document_optional_fields_that_refuse_null(name: str) -> None:
    """Each field may be left out, and may not be null: the server answers `status: null` 422."""
    import json

    from pydantic import ValidationError

    from infra.deploy.template import load
    from infra.local.gateway.docs import merged_openapi
    from roles_fn.schemas import RoleUpdate
    from tasks_fn.schemas import ScheduleUpdate
    from users_fn.schemas import UserUpdate

    schema = merged_openapi(load())["components"]["schemas"][name]
    assert "required" not in schema
    assert schema["properties"]
    for field, spec in schema["properties"].items():
        assert '"null"' not in json.dumps(spec), (name, field, spec)
        assert "default" not in spec, (name, field, spec)
    model = {"RoleUpdate": RoleUpdate, "UserUpdate": UserUpdate, "ScheduleUpdate": ScheduleUpdate}[name]
    field = next(iter(schema["properties"]))
    with pytest.raises(ValidationError, match="cannot be null"):
        model.model_validate({field: None})
