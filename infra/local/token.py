"""`make token`: log in to the running `make dev` and print an access token.

    make token                                  # admin / the local seed's password
    make token USERNAME=alice PASSWORD=secret   # any user
    curl -H "Authorization: Bearer $(make -s token)" http://127.0.0.1:3000/api/v1/auth/user/info

Does what a frontend does (docs/api.md): fetches the login public key, encrypts the password
with RSA-OAEP (SHA-256), posts the login. The access token alone goes to standard output;
anything else to standard error.
"""

import argparse
import os
import sys

import httpx

from multidb.security.login_crypto import encrypt_password
from multidb.settings import DEFAULT_ADMIN_PASSWORD

USER_AGENT = "make token"  # a refresh token is bound to the User-Agent that logged in


def access_token(base_url: str, username: str, password: str) -> str:
    """The access token of a login, or SystemExit with the gateway's reason."""
    try:
        with httpx.Client(base_url=base_url, headers={"user-agent": USER_AGENT}, timeout=30) as client:
            key = client.get("/api/v1/auth/keys/public")
            key.raise_for_status()
            encrypted = encrypt_password(password, key.json()["data"]["publicKey"])
            login = client.post("/api/v1/auth/login", json={"username": username, "password": encrypted})
    except httpx.TransportError as exc:
        raise SystemExit(f"make token: no gateway answers on {base_url} ({exc}): start `make dev` first") from exc
    if login.status_code != 200:
        body = login.json() if login.headers.get("content-type", "").startswith("application/json") else {}
        raise SystemExit(f"make token: login refused: {login.status_code} {body.get('message', login.text)}")
    return str(login.json()["data"]["accessToken"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.local.token", description=__doc__.splitlines()[0])
    parser.add_argument("--username", default="admin")
    parser.add_argument("--password", default=os.environ.get("ADMIN_PASSWORD") or DEFAULT_ADMIN_PASSWORD)
    parser.add_argument("--url", default=f"http://127.0.0.1:{os.environ.get('GATEWAY_PORT', '3000')}")
    args = parser.parse_args(argv)
    print(access_token(args.url, args.username, args.password))
    return 0


if __name__ == "__main__":
    sys.exit(main())
