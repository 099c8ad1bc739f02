"""HTTP Basic auth for chargers (OCPP security profiles 1 and 2)."""

from __future__ import annotations

import base64
import binascii
import secrets
import string

from django.contrib.auth.hashers import check_password, make_password

PASSWORD_MIN = 16
PASSWORD_MAX = 40


def parse_basic_auth(headers: list[tuple[bytes, bytes]]) -> tuple[str, str] | None:
    """(username, password) from an `Authorization: Basic …` header, or None."""
    for name, value in headers:
        if name.lower() != b"authorization":
            continue
        try:
            scheme, _, encoded = value.decode("latin-1").partition(" ")
            if scheme.lower() != "basic":
                return None
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (ValueError, binascii.Error, UnicodeDecodeError):
            return None
        username, sep, password = decoded.partition(":")
        if not sep:
            return None
        return username, password
    return None


def hash_password(password: str) -> str:
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise ValueError(f"A charger password has {PASSWORD_MIN} to {PASSWORD_MAX} characters.")
    return make_password(password)


def generate_password(length: int = 24) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


def verify_password(password: str, encoded: str, *, version: str) -> bool:
    """Check a charger's password against the stored hash.

    OCPP 1.6 chargers configure AuthorizationKey as hex and some send it hex-encoded:
    accept the hex form too when it decodes to text.
    """
    if check_password(password, encoded):
        return True
    if version == "1.6" and len(password) % 2 == 0:
        try:
            decoded = bytes.fromhex(password).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return False
        return check_password(decoded, encoded)
    return False
