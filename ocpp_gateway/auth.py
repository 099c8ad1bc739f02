"""The handshake's credentials: HTTP Basic auth (security profiles 1 and 2) and TLS detection.

Checking the password is the services' job (`ocpp_spec.passwords` hashes it).
"""

from __future__ import annotations

import base64
import binascii

from django.conf import settings


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


def connection_is_secure(scope: dict) -> bool:
    """Whether the charger reached us over TLS (wss).

    Daphne puts no `scheme` in a websocket scope (4.2), so: a scheme where the server
    gives one (uvicorn, tests); a port on which daphne terminates TLS itself
    (OCPP_TLS_PORTS); or the TLS proxy's X-Forwarded-Proto when it is trusted
    (OCPP_TRUST_X_FORWARDED_PROTO: only when daphne is reachable through that proxy alone,
    as a charger could send the header itself).
    """
    if scope.get("scheme") in ("wss", "https"):
        return True
    server = scope.get("server")
    if server and len(server) > 1 and server[1] in settings.OCPP_TLS_PORTS:
        return True
    if settings.OCPP_TRUST_X_FORWARDED_PROTO:
        for name, value in scope.get("headers") or []:
            if name.lower() == b"x-forwarded-proto":
                proto = value.decode("latin-1").split(",")[0].strip().lower()
                return proto in ("https", "wss")
    return False
