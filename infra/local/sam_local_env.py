"""Write the --env-vars file for `sam local start-api` / `sam local invoke` (where Docker exists).

    python -m infra.local.sam_local_env > .local/sam-env.json
    sam local start-api --env-vars .local/sam-env.json

The functions run in containers, so they get the local keys as PEM text (every container
must share them) and reach the compose datastores through host.docker.internal.

    python -m infra.local.sam_local_env --from-env --host 172.17.0.1 > .local/sam-env.json

takes the datastores' URLs from DATABASE_URL, REDIS_URL, BROKER_URL, MONGO_URL and
S3_ENDPOINT_URL instead (those `make dev` runs on), a loopback host in them replaced by --host:
from a container, 127.0.0.1 is the container itself. Either way the functions get the settings
`make dev` runs with where the template gives a deployed stage's (the JWT issuer and audience,
the service name, the files bucket), so a token from one is a token for the other.

    python -m infra.local.sam_local_env --template .aws-sam/build-x86_64   # prints the file's path

writes template.sam-local.yaml beside a built template, the one file `sam local start-api`
needs changed: the SAM CLI reads an authorizer's FunctionArn only as an ARN string or a
`Fn::Sub` of `${Function.Arn}`, so our `!Ref AuthorizerFunction.Alias` (the alias, as deployed)
makes it skip the authorizer, with a warning, on every route: each route would reach its
function with no gateway check at all. The copy names the same function by its ARN. It also
gives each function with a timeout of its own (the authorizer's 5 s) Lambda's init phase on
top: Lambda runs a cold start's imports in an init phase of up to 10 s outside the function's
timeout, where the SAM CLI's emulator counts them inside it.
"""

import argparse
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml

from multidb.security.keys import kid_of, login_key, private_pem, public_pem, signing_key
from multidb.settings import Settings

HOST = os.environ.get("SAM_LOCAL_HOST", "host.docker.internal")


URL_VARIABLES = ("DATABASE_URL", "REDIS_URL", "BROKER_URL", "MONGO_URL", "S3_ENDPOINT_URL")
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def reachable_from_containers(url: str, host: str) -> str:
    """The URL with a loopback host replaced by the host containers reach this machine at."""
    parts = urlsplit(url)
    if parts.hostname not in LOOPBACK:
        return url
    credentials, _, _ = parts.netloc.rpartition("@")
    netloc = (f"{credentials}@" if credentials else "") + host + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def variables(environ: Mapping[str, str] | None = None, host: str = HOST) -> dict[str, str]:
    """The functions' variables; with environ, its datastore URLs instead of compose's."""
    signing = signing_key()
    defaults = Settings()
    urls = {
        "DATABASE_URL": f"postgresql+asyncpg://postgres:postgres@{host}:5432/multidb",
        "REDIS_URL": f"redis://{host}:6379/0",
        "MONGO_URL": f"mongodb://{host}:27017",
        # MinIO from compose; sam local passes your AWS_ACCESS_KEY_ID/SECRET (minioadmin) on.
        "S3_ENDPOINT_URL": f"http://{host}:9000",
    }
    if environ is not None:
        urls = {name: reachable_from_containers(environ[name], host) for name in URL_VARIABLES if environ.get(name)}
    return {
        "APP_ENV": "LOCAL",
        # The template gives each function its stage's; make dev's functions run with the defaults.
        "SERVICE_NAME": defaults.service_name,
        "JWT_ISSUER": defaults.jwt_issuer,
        "JWT_AUDIENCE": defaults.jwt_audience,
        "FILES_BUCKET": (environ or {}).get("FILES_BUCKET", defaults.files_bucket),
        "TRUST_GATEWAY_AUTHORIZER": "true",
        "CONNECTIONS_SECRET_ID": "",
        "KEYS_SECRET_ID": "",
        "LOGIN_KEY_SECRET_ID": "",
        "PUBLIC_KEYS_PARAMETER": "",
        **urls,
        "JWT_PRIVATE_KEY": private_pem(signing.private_key),
        "JWT_KEY_ID": signing.kid,
        "JWT_PUBLIC_KEYS": json.dumps(
            [{"kid": kid_of(signing.private_key.public_key()), "pem": public_pem(signing.private_key.public_key())}]
        ),
        "LOGIN_PRIVATE_KEY": private_pem(login_key()),
    }


def env_vars_file(environ: Mapping[str, str] | None = None, host: str = HOST) -> dict[str, dict[str, str]]:
    """`Parameters` applies to every function; sam local passes only variables the template declares."""
    return {"Parameters": variables(environ, host)}


INIT_PHASE_SECONDS = 10  # Lambda's, outside the timeout (docs.aws.amazon.com/lambda: the execution environment)


def sam_local_template(build_dir: Path) -> Path:
    """The built template with each Lambda authorizer's `Ref: <Function>.Alias` as `${<Function>.Arn}`."""
    template: dict[str, Any] = yaml.safe_load((build_dir / "template.yaml").read_text())
    for resource in template["Resources"].values():
        properties = resource.get("Properties", {})
        if resource.get("Type") == "AWS::Serverless::Function" and isinstance(properties.get("Timeout"), int):
            properties["Timeout"] += INIT_PHASE_SECONDS
        if resource.get("Type") not in ("AWS::Serverless::HttpApi", "AWS::Serverless::Api"):
            continue
        for authorizer in resource.get("Properties", {}).get("Auth", {}).get("Authorizers", {}).values():
            arn = authorizer.get("FunctionArn")
            if isinstance(arn, dict) and str(arn.get("Ref", "")).endswith(".Alias"):
                authorizer["FunctionArn"] = {"Fn::Sub": "${" + arn["Ref"].removesuffix(".Alias") + ".Arn}"}
    target = build_dir / "template.sam-local.yaml"
    target.write_text(yaml.safe_dump(template, sort_keys=False))
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--from-env", action="store_true", help="the datastores' URLs from this environment")
    parser.add_argument("--host", default=HOST, help="how containers reach this machine (default: %(default)s)")
    parser.add_argument("--template", type=Path, metavar="BUILD_DIR", help="write the sam local template instead")
    args = parser.parse_args(argv)
    if args.template is not None:
        print(sam_local_template(args.template))
        return 0
    json.dump(env_vars_file(os.environ if args.from_env else None, args.host), sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
