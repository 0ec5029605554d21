"""Permission codes come from method + path template; grants decide."""

import json

import pytest

from multidb.rbac import Access, Grants, access_of, catalogue, code_from_route_key, permission_code


def test_codes_are_method_and_template() -> None:
    assert permission_code("get", "/api/v1/roles/{role_id}") == "GET:/api/v1/roles/{role_id}"
    assert code_from_route_key("GET /api/v1/roles/{role_id}") == "GET:/api/v1/roles/{role_id}"


def test_the_catalogue_keeps_one_code_per_method() -> None:
    codes = catalogue()
    assert "GET:/api/v1/auth/user/info" in codes
    assert len({(e["method"], e["path"]) for e in codes.values()}) == len(codes)


def test_access_levels() -> None:
    assert access_of("POST:/api/v1/auth/login") is Access.PUBLIC
    assert access_of("GET:/api/v1/auth/user/info") is Access.AUTHENTICATED
    assert access_of("GET:/api/v1/not-in-the-catalogue") is Access.PERMISSION  # fail closed


def test_grants() -> None:
    user = Grants("u", "U", active=True, admin=False, codes=frozenset({"GET:/api/v1/roles"}))
    assert user.allows("GET:/api/v1/roles")
    assert not user.allows("POST:/api/v1/roles")
    assert user.allows("GET:/api/v1/auth/user/info")
    admin = Grants("a", "A", active=True, admin=True)
    assert admin.allows("DELETE:/api/v1/roles/{role_id}")
    disabled_admin = Grants("a", "A", active=False, admin=True)
    assert not disabled_admin.allows("DELETE:/api/v1/roles/{role_id}")
    assert not disabled_admin.allows("GET:/api/v1/auth/user/info")
    assert Grants.from_json(user.to_json()) == user


def test_a_cached_text_is_parsed_once_and_the_parsed_ones_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from multidb import rbac

    monkeypatch.setattr(rbac, "_parsed", {})
    monkeypatch.setattr(rbac, "MAX_PARSED", 3)
    texts = [Grants(f"u{n}", "U", active=True, admin=False).to_json() for n in range(4)]
    first = Grants.from_json(texts[0])
    assert Grants.from_json(texts[0]) is first  # a repeat is a lookup
    changed = Grants.from_json(texts[0].replace('"active": true', '"active": false'))
    assert changed.active is False  # another text, other grants
    assert first.active is True
    for text in texts[1:]:
        Grants.from_json(text)
    assert len(rbac._parsed) == 3
    assert texts[0] not in rbac._parsed  # the oldest went first
    with pytest.raises(json.JSONDecodeError, match="Expecting value"):
        Grants.from_json("nonsense")
    assert "nonsense" not in rbac._parsed


def test_cached_grants_of_the_wrong_shape_are_refused_not_coerced() -> None:
    text = Grants("u", "U", active=True, admin=False, codes=frozenset({"GET:/api/v1/roles"})).to_json()
    for wrong in ('"admin": 0', '"admin": "no"', '"admin": null'):
        with pytest.raises(ValueError, match="wrong shape"):
            Grants.from_json(text.replace('"admin": false', wrong))
    with pytest.raises(ValueError, match="wrong shape"):
        Grants.from_json(text.replace('["GET:/api/v1/roles"]', '"GET:/api/v1/roles"'))
