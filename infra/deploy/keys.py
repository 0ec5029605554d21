"""Create and rotate the deployed keys (run from a deploy machine with AWS credentials).

    python -m infra.deploy.keys init   --secret multidb/dev/jwt-key --login-secret multidb/dev/login-key \
                                --parameter /multidb/dev/jwt-public-keys
    python -m infra.deploy.keys rotate --secret multidb/dev/jwt-key --parameter /multidb/dev/jwt-public-keys

The JWT signing key goes to a Secrets Manager secret only the auth function may read, the
login key to another (auth and users functions); the signing key's public halves go to an
SSM parameter, all the authorizer ever sees. `rotate` publishes the new public key next to
the previous one, so tokens signed before the rotation keep verifying until they expire;
the key before that is dropped.
"""

import argparse
import json
import sys
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from multidb.security.keys import kid_of, load_private, private_pem, public_pem

KEEP_PUBLISHED = 2


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _signing_entry(key: rsa.RSAPrivateKey) -> dict[str, str]:
    return {"kid": kid_of(key.public_key()), "pem": public_pem(key.public_key())}


def _read(secrets: Any, secret_id: str) -> dict[str, Any] | None:
    try:
        return dict(json.loads(secrets.get_secret_value(SecretId=secret_id)["SecretString"]))
    except secrets.exceptions.ResourceNotFoundException:
        return None


def init(secrets: Any, ssm: Any, secret_id: str, login_secret_id: str, parameter: str) -> str:
    """Create whichever key does not exist yet; returns the signing key's kid."""
    if _read(secrets, login_secret_id) is None:
        secrets.create_secret(
            Name=login_secret_id, SecretString=json.dumps({"login_private_key": private_pem(_new_key())})
        )
    current = _read(secrets, secret_id)
    if current is not None:
        return str(current["jwt_key_id"])
    signing = _new_key()
    kid = kid_of(signing.public_key())
    ssm.put_parameter(Name=parameter, Value=json.dumps([_signing_entry(signing)]), Type="String", Overwrite=True)
    secrets.create_secret(
        Name=secret_id, SecretString=json.dumps({"jwt_private_key": private_pem(signing), "jwt_key_id": kid})
    )
    return kid


def rotate(secrets: Any, ssm: Any, secret_id: str, parameter: str) -> str:
    """Replace the signing key. The login key stays: browsers may hold its public half."""
    current = json.loads(secrets.get_secret_value(SecretId=secret_id)["SecretString"])
    signing = _new_key()
    published = json.loads(ssm.get_parameter(Name=parameter)["Parameter"]["Value"])
    previous = [e for e in published if e["kid"] == current["jwt_key_id"]]
    if not previous:  # the parameter lost the current key: publish it again from the secret
        previous = [_signing_entry(load_private(current["jwt_private_key"], check=True))]
    entries = [_signing_entry(signing), *previous][:KEEP_PUBLISHED]
    # Publish first: an authorizer must know the new kid before any token carries it.
    ssm.put_parameter(Name=parameter, Value=json.dumps(entries), Type="String", Overwrite=True)
    kid = kid_of(signing.public_key())
    secrets.put_secret_value(
        SecretId=secret_id,
        SecretString=json.dumps({**current, "jwt_private_key": private_pem(signing), "jwt_key_id": kid}),
    )
    return kid


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["init", "rotate"])
    parser.add_argument("--secret", required=True, help="Secrets Manager name or ARN of the JWT signing key")
    parser.add_argument("--login-secret", help="Secrets Manager name or ARN of the login key (init)")
    parser.add_argument("--parameter", required=True, help="SSM parameter name of the public keys (leading slash)")
    args = parser.parse_args(argv)
    import boto3

    secrets, ssm = boto3.client("secretsmanager"), boto3.client("ssm")
    if args.action == "init":
        if not args.login_secret:
            parser.error("init needs --login-secret")
        kid = init(secrets, ssm, args.secret, args.login_secret, args.parameter)
    else:
        kid = rotate(secrets, ssm, args.secret, args.parameter)
    print(f"{args.action}: signing key {kid}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
