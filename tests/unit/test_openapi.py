"""Every route documents the error envelope for each status it can answer."""

from auth_fn.app import app


def test_every_route_documents_the_error_envelope() -> None:
    schema = app.openapi()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            documented = set(operation["responses"])
            assert {"400", "401", "403", "404", "409", "422", "429", "500", "503"} <= documented, (method, path)
            assert operation["responses"]["401"]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/ErrorResponse"
            }


def test_responses_use_camel_case() -> None:
    schema = app.openapi()["components"]["schemas"]
    assert "accessToken" in schema["TokenPairPublic"]["properties"]
    assert "isAdmin" in schema["UserInfo"]["properties"]
    assert "passwordHash" not in schema["UserInfo"]["properties"]
