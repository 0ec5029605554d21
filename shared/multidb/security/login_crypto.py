"""RSA-OAEP (SHA-256) decryption of passwords encrypted in the browser with the login key."""

import base64
import binascii

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from ..errors import InvalidInput
from .keys import login_key, public_pem

_OAEP = padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


class PasswordNotEncrypted(
    InvalidInput,
    error="password_not_encrypted",
    message="password must be RSA-OAEP (SHA-256) encrypted with the login public key, base64",
):
    """A password that is not RSA-OAEP (SHA-256) ciphertext of the login key, base64."""


def login_public_key_pem() -> str:
    return public_pem(login_key().public_key())


def encrypt_password(password: str, public_key_pem: str) -> str:
    """What a client does: encrypt with the published key, base64 the result."""
    from .keys import load_public

    return base64.b64encode(load_public(public_key_pem).encrypt(password.encode(), _OAEP)).decode()


def decrypt_password(ciphertext_b64: str) -> str:
    try:
        ciphertext = base64.b64decode(ciphertext_b64, validate=True)
        return login_key().decrypt(ciphertext, _OAEP).decode()
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise PasswordNotEncrypted() from exc
