"""Logs are JSON, carry the request id, and never carry a token or a key."""

import json
import logging

import pytest

from multidb import logs
from multidb.security.keys import private_pem, signing_key


def test_tokens_and_keys_are_scrubbed() -> None:
    token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
    text = logs.scrub(f"header Authorization: Bearer abc.def and {token} and {private_pem(signing_key().private_key)}")
    assert "abc.def" not in text
    assert token not in text
    assert "PRIVATE KEY-----\nMII" not in text
    assert text.count("[redacted]") == 3


def test_records_are_json_with_the_request_id(capsys: pytest.CaptureFixture[str]) -> None:
    logger = logging.getLogger("multidb.test")
    formatter = logs.JsonFormatter()
    handle = logs.request_id.set("req-123")
    try:
        record = logger.makeRecord("multidb.test", logging.INFO, __file__, 1, "user %s", ("x",), None)
        record.fields = {"token": "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.x"}
        entry = json.loads(formatter.format(record))
    finally:
        logs.request_id.reset(handle)
    assert entry["request_id"] == "req-123"
    assert entry["message"] == "user x"
    assert entry["token"] == "[redacted]"
