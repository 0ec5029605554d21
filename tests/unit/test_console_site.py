"""`make deploy`'s upload of the console: what goes into the bucket, with which headers, and what is removed."""

import json
from pathlib import Path
from typing import Any

import pytest

from infra.deploy.console_site import FRESH, IMMUTABLE, plan, publish

pytestmark = pytest.mark.unit


def built(tmp_path: Path) -> Path:
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<!doctype html>")
    (dist / "assets" / "index-abc123.js").write_text("export {}")
    (dist / "assets" / "index-abc123.css").write_text("body{}")
    return dist


def test_hashed_assets_are_cached_for_a_year_and_the_entry_and_its_config_never(tmp_path: Path) -> None:
    uploads = {u.key: u for u in plan(built(tmp_path), "https://api.example", "https://rt.example")}
    assert set(uploads) == {"index.html", "assets/index-abc123.js", "assets/index-abc123.css", "config.json"}
    assert uploads["assets/index-abc123.js"].cache_control == IMMUTABLE
    assert uploads["assets/index-abc123.js"].content_type.startswith(("text/javascript", "application/javascript"))
    assert uploads["index.html"].cache_control == FRESH
    assert uploads["index.html"].content_type == "text/html; charset=utf-8"
    assert json.loads(uploads["config.json"].body) == {
        "apiUrl": "https://api.example",
        "socketUrl": "https://rt.example",
    }


def test_a_missing_build_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="make console"):
        plan(tmp_path, "a", "b")


class Fake:
    """Records every call; answers the few reads `publish` makes."""

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers, self.calls = answers, []

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append((name, kwargs))
            return self.answers.get(name)

        return call


def test_publish_uploads_removes_what_the_build_dropped_and_invalidates(tmp_path: Path) -> None:
    outputs = {
        "ConsoleBucketName": "site", "ConsoleDistributionId": "E1", "ConsoleUrl": "https://d1.cloudfront.net",
        "ApiUrl": "https://api.example", "RealtimeUrl": "https://rt.example",
    }  # fmt: skip
    stack = {"Stacks": [{"Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in outputs.items()]}]}
    old = [{"Contents": [{"Key": "assets/index-old.js"}, {"Key": "index.html"}]}]
    paginator = Fake({"paginate": old})
    s3, cloudfront = Fake({"get_paginator": paginator}), Fake({})
    url = publish(Fake({"describe_stacks": stack}), s3, cloudfront, "multidb-dev", built(tmp_path))
    assert url == "https://d1.cloudfront.net"
    assert sorted(kw["Key"] for name, kw in s3.calls if name == "put_object") == [
        "assets/index-abc123.css", "assets/index-abc123.js", "config.json", "index.html",
    ]  # fmt: skip
    deleted = [kw["Delete"]["Objects"] for name, kw in s3.calls if name == "delete_objects"]
    assert deleted == [[{"Key": "assets/index-old.js"}]]
    ((_, invalidation),) = cloudfront.calls
    assert invalidation["InvalidationBatch"]["Paths"]["Items"] == ["/index.html", "/config.json"]


def test_a_stack_without_a_console_gets_nothing(tmp_path: Path) -> None:
    s3 = Fake({})
    stack = {"Stacks": [{"Outputs": [{"OutputKey": "ApiUrl", "OutputValue": "https://api.example"}]}]}
    assert publish(Fake({"describe_stacks": stack}), s3, Fake({}), "multidb-dev", built(tmp_path)) is None
    assert s3.calls == []


def test_the_consoles_origin_joins_the_stages_cors_once() -> None:
    from infra.deploy.console_site import cors_parameter, stage_origins

    assert stage_origins("prod") == ["https://app.example.com"]  # samconfig.toml's
    given = "Other=1 CorsAllowOrigins=https://a.example,https://b.example"
    assert stage_origins("prod", given) == ["https://a.example", "https://b.example"]  # PARAMETERS win, as in sam
    assert cors_parameter(["https://a.example"], "https://d1.cloudfront.net") == (
        "CorsAllowOrigins=https://a.example,https://d1.cloudfront.net"
    )
    assert cors_parameter(["https://d1.cloudfront.net"], "https://d1.cloudfront.net") == (
        "CorsAllowOrigins=https://d1.cloudfront.net"
    )
