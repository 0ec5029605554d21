"""Upload the built admin console to its stack, and put its origin in CORS (`make deploy`).

    python -m infra.deploy.console_site upload --stack multidb-dev --region us-east-1
    python -m infra.deploy.console_site cors --stage dev --origin https://d1.cloudfront.net [--parameters "K=V …"]

`cors` prints the CorsAllowOrigins parameter sam deploy gets: the stage's origins
(samconfig.toml, or PARAMETERS when they set it) and the console's, so the API, the files
bucket and Socket.IO admit the console. The console's address exists only once its
distribution does: a first deploy has none, and make deploy then deploys once more.

`upload` reads the stack's outputs (ConsoleBucketName, ConsoleDistributionId, ConsoleUrl, ApiUrl,
RealtimeUrl), writes `config.json` (where the console finds the API and Socket.IO), uploads
console/dist — hashed assets cached for a year, index.html and config.json never — deletes what
the build no longer has, invalidates the two uncached paths, and prints the console's URL. A
stack deployed with Console=false has no such outputs: nothing is done.
"""

import argparse
import json
import mimetypes
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .template import ROOT

DIST = ROOT / "console" / "dist"
IMMUTABLE = "public, max-age=31536000, immutable"
FRESH = "no-cache"


@dataclass(frozen=True)
class Upload:
    key: str
    body: bytes
    content_type: str
    cache_control: str


def plan(dist: Path, api_url: str, socket_url: str) -> list[Upload]:
    """What goes into the bucket: every file of the build, and config.json (pure)."""
    if not (dist / "index.html").is_file():
        raise FileNotFoundError(f"{dist}/index.html is missing: run make console first")
    uploads = []
    for path in sorted(p for p in dist.rglob("*") if p.is_file()):
        key = path.relative_to(dist).as_posix()
        content_type = mimetypes.guess_type(key)[0] or "application/octet-stream"
        if content_type.startswith("text/") or content_type == "application/javascript":
            content_type += "; charset=utf-8"
        cache = IMMUTABLE if key.startswith("assets/") else FRESH  # Vite names assets by their hash
        uploads.append(Upload(key, path.read_bytes(), content_type, cache))
    config = json.dumps({"apiUrl": api_url, "socketUrl": socket_url}).encode()
    uploads.append(Upload("config.json", config, "application/json", FRESH))
    return uploads


def publish(cloudformation: Any, s3: Any, cloudfront: Any, stack: str, dist: Path = DIST) -> str | None:
    """Upload the build to the stack's console bucket; its URL, or None without a console."""
    (description,) = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    outputs = {item["OutputKey"]: item.get("OutputValue") for item in description.get("Outputs", [])}
    bucket = outputs.get("ConsoleBucketName")
    if not bucket:
        return None
    uploads = plan(dist, outputs["ApiUrl"], outputs["RealtimeUrl"])
    for upload in uploads:
        s3.put_object(
            Bucket=bucket, Key=upload.key, Body=upload.body, ContentType=upload.content_type,
            CacheControl=upload.cache_control,
        )  # fmt: skip
    keep = {upload.key for upload in uploads}
    stale = [
        item["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for item in page.get("Contents", [])
        if item["Key"] not in keep
    ]
    for start in range(0, len(stale), 1000):
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": key} for key in stale[start : start + 1000]]})
    cloudfront.create_invalidation(
        DistributionId=outputs["ConsoleDistributionId"],
        InvalidationBatch={
            "Paths": {"Quantity": 2, "Items": ["/index.html", "/config.json"]},
            "CallerReference": f"{stack}-{time.time_ns()}",  # a new invalidation each upload
        },
    )
    return str(outputs["ConsoleUrl"])


def stage_origins(stage: str, parameters: str = "") -> list[str]:
    """The stage's CorsAllowOrigins: from PARAMETERS, else samconfig.toml, else the template's default."""
    import tomllib

    with (ROOT / "samconfig.toml").open("rb") as file:
        overrides = tomllib.load(file)[stage]["deploy"]["parameters"].get("parameter_overrides", [])
    if isinstance(overrides, str):
        overrides = overrides.split()
    value = None
    for item in [*overrides, *parameters.split()]:  # PARAMETERS come last on sam's command line
        key, _, given = item.partition("=")
        if key == "CorsAllowOrigins":
            value = given
    if value is None:
        from .template import load

        value = str(load().parameters["CorsAllowOrigins"].get("Default", ""))
    return [origin.strip() for origin in value.split(",") if origin.strip()]


def cors_parameter(origins: list[str], console: str) -> str:
    """`CorsAllowOrigins=…` with the console's origin added (once)."""
    merged = [*origins, *([console] if console and console not in origins else [])]
    return "CorsAllowOrigins=" + ",".join(merged)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    upload = commands.add_parser("upload", help="upload console/dist to the stack's console bucket")
    upload.add_argument("--stack", required=True)
    upload.add_argument("--region", required=True)
    cors = commands.add_parser("cors", help="print CorsAllowOrigins=… with the console's origin")
    cors.add_argument("--stage", required=True)
    cors.add_argument("--origin", default="", help="the ConsoleUrl output (empty: none yet)")
    cors.add_argument("--parameters", default="", help="as make deploy PARAMETERS")
    args = parser.parse_args(argv)
    if args.command == "cors":
        if args.origin:
            print(cors_parameter(stage_origins(args.stage, args.parameters), args.origin))
        return 0

    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    def client(service: str) -> Any:
        return boto3.client(service, region_name=args.region)  # type: ignore[call-overload]

    try:
        url = publish(client("cloudformation"), client("s3"), client("cloudfront"), args.stack)
    except (BotoCoreError, ClientError, FileNotFoundError) as exc:
        print(f"could not upload the console of {args.stack}: {exc}", file=sys.stderr)
        return 1
    print(f"Console: {url}" if url else f"{args.stack} has no console (Console=false): nothing uploaded")
    return 0


if __name__ == "__main__":
    sys.exit(main())
