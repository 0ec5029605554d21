"""Custom::Keys: fill the stack's empty key secrets once and publish the public key.

CloudFormation owns the two secrets (their names, their deletion) and creates them empty;
this step gives each its key material the first time, through `infra.deploy.keys.init`, and
never again: a secret that holds a value is never written here. `python -m infra.deploy.keys
rotate` rotates the signing key. The public-key parameter belongs to this resource (a
CloudFormation-managed value could be reset by a template change): created here, put
back from the secret if it lost the current key, deleted with the stack.
"""

import contextlib
import json
from typing import Any

from infra.deploy import keys
from multidb.security.keys import kid_of, load_private, public_pem

from .cfn import Outcome, Request


class ExistingSecrets:
    """A Secrets Manager client for secrets that already exist: creating one puts its first value."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.exceptions = client.exceptions

    def get_secret_value(self, **kwargs: Any) -> dict[str, Any]:
        return dict(self.client.get_secret_value(**kwargs))

    def create_secret(self, *, Name: str, SecretString: str) -> dict[str, Any]:
        return dict(self.client.put_secret_value(SecretId=Name, SecretString=SecretString))


def republish(secrets: Any, ssm: Any, secret_id: str, parameter: str) -> bool:
    """Publish the current signing key's public half if the parameter lacks it; True if it did."""
    current = json.loads(secrets.get_secret_value(SecretId=secret_id)["SecretString"])
    try:
        published = json.loads(ssm.get_parameter(Name=parameter)["Parameter"]["Value"])
    except ssm.exceptions.ParameterNotFound:
        published = []
    if any(entry.get("kid") == current["jwt_key_id"] for entry in published):
        return False
    public = load_private(current["jwt_private_key"], check=True).public_key()
    entries = [{"kid": kid_of(public), "pem": public_pem(public)}, *published][: keys.KEEP_PUBLISHED]
    ssm.put_parameter(Name=parameter, Value=json.dumps(entries), Type="String", Overwrite=True)
    return True


def run(request: Request, secrets: Any, ssm: Any) -> Outcome:
    parameter = str(request.properties["PublicKeysParameter"])
    if request.type == "Delete":
        # Sent when the stack goes (or a new parameter name replaced this one). The
        # secrets are CloudFormation's to delete; the parameter is this resource's.
        with contextlib.suppress(ssm.exceptions.ParameterNotFound):
            ssm.delete_parameter(Name=parameter)
        return Outcome(request.physical_id or parameter, reason=f"deleted {parameter}")
    signing_secret = str(request.properties["SigningKeySecret"])
    kid = keys.init(ExistingSecrets(secrets), ssm, signing_secret, str(request.properties["LoginKeySecret"]), parameter)
    restored = republish(secrets, ssm, signing_secret, parameter)
    note = f"signing key {kid}" + (" (public key published again)" if restored else "")
    return Outcome(parameter, {"KeyId": kid}, note)
