"""Presigned URLs, checked where the embedded S3 server cannot: it verifies no signature."""

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest

from multidb.files import storage
from tests.helpers import reset_clients

# The unit tier (make test-fast), though outside tests/unit: no datastore, no request.
pytestmark = [pytest.mark.unit, pytest.mark.first_pass_only("the URLs are signed locally: no datastore")]


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("S3_ENDPOINT_URL", "")  # AWS itself
    monkeypatch.setenv("S3_REGION", "eu-central-1")
    monkeypatch.setenv("FILES_BUCKET", "acme-files")
    monkeypatch.setenv("FILES_URL_TTL", "300")
    reset_clients()
    storage.get_s3.cache_clear()
    yield
    monkeypatch.undo()
    reset_clients()
    storage.get_s3.cache_clear()


def query(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def test_an_upload_url_binds_the_type_the_length_and_a_short_life(s3: None) -> None:
    url = storage.upload_url("u1/abc/report.pdf", "application/pdf", 48213)
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "acme-files.s3.amazonaws.com", "/u1/abc/report.pdf")
    signed = query(url)
    assert signed["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert signed["X-Amz-Expires"] == "300"
    # S3 refuses any other type or length, and any PUT once the object exists
    assert signed["X-Amz-SignedHeaders"] == "content-length;content-type;host;if-none-match"
    assert "/eu-central-1/s3/aws4_request" in signed["X-Amz-Credential"]
    assert storage.upload_url("u1/abc/report.pdf", "application/pdf", 48214) != url


def test_a_download_url_saves_the_file_under_its_name(s3: None) -> None:
    signed = query(storage.download_url("u1/abc/r.pdf", "Bericht (ä).pdf", "application/pdf"))
    assert signed["response-content-disposition"] == "attachment; filename*=UTF-8''Bericht%20%28%C3%A4%29.pdf"
    assert signed["response-content-type"] == "application/pdf"
    assert signed["X-Amz-Expires"] == "300"
    assert signed["X-Amz-SignedHeaders"] == "host"
