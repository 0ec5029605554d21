"""A repeated access token skips its signature check, and only while nothing it was checked
against has changed: its expiry, the key it names, the audience and issuer expected."""

import time
import uuid
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest

from multidb.errors import Unauthorized
from multidb.security import keys, tokens
from multidb.security.tokens import TokenType, issue, verify
from multidb.settings import get_settings


@pytest.fixture(autouse=True)
def empty() -> Iterator[None]:
    tokens.forget_verified()
    yield
    tokens.forget_verified()


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every full verification (PyJWT's decode) from here on."""
    import jwt

    seen: list[str] = []
    decode = jwt.decode

    def counting(token: str, *args: Any, **kwargs: Any) -> Any:
        seen.append(token)
        return decode(token, *args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counting)
    return seen


def access(ttl: int = 300) -> str:
    return issue(str(uuid.uuid4()), TokenType.ACCESS, "family", ttl)[0]


def test_a_repeat_costs_no_second_verification_and_gives_the_same_claims(decodes: list[str]) -> None:
    token = access()
    first = verify(token, TokenType.ACCESS)
    assert verify(token, TokenType.ACCESS) == first
    assert decodes == [token]


def test_a_token_expired_since_it_was_verified_is_refused_and_forgotten(
    decodes: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    token = access(ttl=60)
    claims = verify(token, TokenType.ACCESS)
    leeway = get_settings().jwt_leeway
    monkeypatch.setattr(tokens.time, "time", lambda: claims.exp + leeway - 1.0)
    assert verify(token, TokenType.ACCESS) == claims  # within the leeway, as PyJWT counts it
    monkeypatch.setattr(tokens.time, "time", lambda: claims.exp + leeway + 0.0)
    with pytest.raises(Unauthorized) as refused:
        verify(token, TokenType.ACCESS)
    assert refused.value.error == "token_expired"
    assert token not in tokens._verified
    assert decodes == [token]


def test_a_key_no_longer_published_sends_the_token_back_to_a_full_check(
    decodes: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    token = access()
    verify(token, TokenType.ACCESS)
    monkeypatch.setattr(keys, "verification_keys", lambda refresh=False: {})  # rotated away
    with pytest.raises(Unauthorized) as refused:
        verify(token, TokenType.ACCESS)
    assert refused.value.error == "invalid_token"
    assert token not in tokens._verified


def test_another_audience_sends_the_token_back_to_a_full_check(
    decodes: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    token = access()
    verify(token, TokenType.ACCESS)
    settings = msgspec.structs.replace(get_settings(), jwt_audience="another-api")
    monkeypatch.setattr(tokens, "get_settings", lambda: settings)
    with pytest.raises(Unauthorized):
        verify(token, TokenType.ACCESS)
    assert decodes == [token, token]


def test_only_genuine_access_tokens_are_kept(decodes: list[str]) -> None:
    token = access()
    head, payload, signature = token.split(".")
    forged = f"{head}.{payload}.{signature[:-4]}{'AAAA' if signature[-4:] != 'AAAA' else 'BBBB'}"
    for _ in range(2):
        with pytest.raises(Unauthorized):
            verify(forged, TokenType.ACCESS)
    refresh = issue(str(uuid.uuid4()), TokenType.REFRESH, "family", 300)[0]
    verify(refresh, TokenType.REFRESH)
    with pytest.raises(Unauthorized):
        verify(refresh, TokenType.ACCESS)  # the right signature, the wrong type
    assert tokens._verified == {}
    assert decodes == [forged, forged, refresh, refresh]


def test_the_cache_is_bounded_and_the_oldest_go_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tokens, "MAX_VERIFIED", 2)
    first, second, third = access(), access(), access()
    for token in (first, second, third):
        verify(token, TokenType.ACCESS)
    assert list(tokens._verified) == [second, third]
    assert verify(first, TokenType.ACCESS).exp > time.time()  # still valid: verified again in full


def test_another_leeway_sends_the_token_back_to_a_full_check(
    decodes: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    token = access()
    claims = verify(token, TokenType.ACCESS)
    settings = msgspec.structs.replace(get_settings(), jwt_leeway=0)
    monkeypatch.setattr(tokens, "get_settings", lambda: settings)
    assert verify(token, TokenType.ACCESS) == claims  # still valid under the new rule, checked in full
    assert decodes == [token, token]
