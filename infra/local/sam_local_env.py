"""Write the --env-vars file for `sam local start-api` / `sam local invoke` (where Docker exists).

    python -m infra.local.sam_local_env > .local/sam-env.json
    sam local start-api --env-vars .local/sam-env.json

The functions run in containers, so they get the local keys as PEM text (every container
must share them) and reach the compose datastores through host.docker.internal.
"""

import json
import os
import sys

from multidb.security.keys import kid_of, login_key, private_pem, public_pem, signing_key

HOST = os.environ.get("SAM_LOCAL_HOST", "host.docker.internal")


def variables() -> dict[str, str]:
    signing = signing_key()
    return {
        "APP_ENV": "LOCAL",
        "TRUST_GATEWAY_AUTHORIZER": "true",
        "CONNECTIONS_SECRET_ID": "",
        "KEYS_SECRET_ID": "",
        "LOGIN_KEY_SECRET_ID": "",
        "PUBLIC_KEYS_PARAMETER": "",
        "DATABASE_URL": f"postgresql+asyncpg://postgres:postgres@{HOST}:5432/multidb",
        "REDIS_URL": f"redis://{HOST}:6379/0",
        "MONGO_URL": f"mongodb://{HOST}:27017",
        # MinIO from compose; sam local passes your AWS_ACCESS_KEY_ID/SECRET (minioadmin) on.
        "S3_ENDPOINT_URL": f"http://{HOST}:9000",
        "JWT_PRIVATE_KEY": private_pem(signing.private_key),
        "JWT_KEY_ID": signing.kid,
        "JWT_PUBLIC_KEYS": json.dumps(
            [{"kid": kid_of(signing.private_key.public_key()), "pem": public_pem(signing.private_key.public_key())}]
        ),
        "LOGIN_PRIVATE_KEY": private_pem(login_key()),
    }


def env_vars_file() -> dict[str, dict[str, str]]:
    """`Parameters` applies to every function; sam local passes only variables the template declares."""
    return {"Parameters": variables()}


def main() -> int:
    json.dump(env_vars_file(), sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
