"""Charger passwords (OCPP security profiles 1 and 2): hashing, checking, generating, hiding."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import string

from django.contrib.auth.hashers import check_password

PASSWORD_MIN = 16
PASSWORD_MAX = 40

# Charger passwords are hashed with scrypt at modest cost, not with Django's PBKDF2: a
# fleet reconnecting after a restart checks every charger's password at once, and a slow
# hash would queue it for long (bench/RESULTS.md). A slow hash protects guessable human
# passwords; charger passwords are 16-40 characters the backend generates (24 random
# alphanumerics), which no offline attack enumerates whatever the hash cost. The salt
# stops precomputation; the comparison is constant-time. Online guessing is throttled
# apart (the services' brute-force limits). Old PBKDF2 hashes still verify and are
# replaced by this form on the next successful login.
SCRYPT_PREFIX = "ocpp_scrypt"
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**10, 8, 1
SCRYPT_DKLEN = 32


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt,
        n=n,
        r=r,
        p=p,
        maxmem=64 * 1024 * 1024,
        dklen=SCRYPT_DKLEN,
    )


def hash_password(password: str) -> str:
    """The stored form of a charger password (see SCRYPT_PREFIX for the choice of hash)."""
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise ValueError(f"A charger password has {PASSWORD_MIN} to {PASSWORD_MAX} characters.")
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return "$".join(
        [
            SCRYPT_PREFIX,
            str(SCRYPT_N),
            str(SCRYPT_R),
            str(SCRYPT_P),
            base64.b64encode(salt).decode("ascii"),
            base64.b64encode(digest).decode("ascii"),
        ]
    )


def needs_rehash(encoded: str) -> bool:
    """True for a hash of an older, slower form (PBKDF2) to be replaced after a login."""
    return bool(encoded) and not encoded.startswith(SCRYPT_PREFIX + "$")


def basic_auth_problem(cbid: str) -> str:
    """Why a charger with this CBID can never log in with HTTP Basic auth, or "" if it can.

    The Basic-auth username is the CBID, and RFC 7617 ends the username at the first
    colon: `CP:1` would arrive as user `CP`, password `1:…`, never matching.
    """
    if ":" in cbid:
        return (
            f"No password for {cbid}: its CBID contains “:”, which HTTP Basic auth cannot carry "
            "in a username (the first colon ends it), so the charger could never log in with "
            "it. Use TLS client certificates (security profile 3) or a CBID without “:”."
        )
    return ""


def generate_password(length: int = 24) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _check(password: str, encoded: str) -> bool:
    if encoded.startswith(SCRYPT_PREFIX + "$"):
        try:
            _prefix, n, r, p, salt, digest = encoded.split("$")
            expected = base64.b64decode(digest)
            actual = _scrypt(password, base64.b64decode(salt), int(n), int(r), int(p))
        except (ValueError, binascii.Error):
            return False
        return hmac.compare_digest(actual, expected)
    # Django's formats (PBKDF2 from before): constant-time inside check_password.
    return check_password(password, encoded)


def verify_password(password: str, encoded: str, *, version: str) -> bool:
    """Check a charger's password against the stored hash.

    OCPP 1.6 chargers configure AuthorizationKey as hex and some send it hex-encoded:
    accept the hex form too when it decodes to text.
    """
    if not encoded:
        return False
    if _check(password, encoded):
        return True
    if version == "1.6" and len(password) % 2 == 0:
        try:
            decoded = bytes.fromhex(password).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return False
        return _check(decoded, encoded)
    return False


# ---- the password on the wire: where a charger keeps it, and hiding it ------------------

# Where a charger keeps its Basic-auth password, per OCPP version.
PASSWORD_KEY_V16 = "AuthorizationKey"
PASSWORD_KEY_V2 = "SecurityCtrlr.BasicAuthPassword"
REDACTED = "********"


def password_setting(*, version: str, password: str) -> dict:
    """The change_configuration params that give a charger of `version` its password.

    OCPP 1.6 configures AuthorizationKey hex-encoded; 2.x sets the variable as it is.
    """
    if version == "1.6":
        return {"key": PASSWORD_KEY_V16, "value": password.encode("utf-8").hex()}
    return {"key": PASSWORD_KEY_V2, "value": password}


def password_in(action: str, payload: object) -> str | None:
    """The password a password-setting CALL carries, or None for any other CALL."""
    payload = payload if isinstance(payload, dict) else {}
    if action == "ChangeConfiguration" and payload.get("key") == PASSWORD_KEY_V16:
        try:
            return bytes.fromhex(str(payload.get("value", ""))).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return None
    if action == "SetVariables":
        for item in payload.get("setVariableData") or []:
            if (
                isinstance(item, dict)
                and (item.get("component") or {}).get("name") == "SecurityCtrlr"
                and (item.get("variable") or {}).get("name") == "BasicAuthPassword"
            ):
                return str(item.get("attributeValue", ""))
    return None


def redact_password(action: str, payload: object) -> object:
    """`payload` with a charger password it carries replaced by asterisks (logs, history)."""
    if not isinstance(payload, dict):
        return payload
    if action == "ChangeConfiguration" and payload.get("key") == PASSWORD_KEY_V16:
        return payload | {"value": REDACTED}
    if action == "SetVariables" and isinstance(payload.get("setVariableData"), list):
        items = []
        for item in payload["setVariableData"]:
            if (
                isinstance(item, dict)
                and (item.get("variable") or {}).get("name") == "BasicAuthPassword"
            ):
                item = item | {"attributeValue": REDACTED}
            items.append(item)
        return payload | {"setVariableData": items}
    return payload


# ---- charger passwords anywhere in a frame: configuration reads and reports too ----------

# Variables (2.x) and configuration keys (1.6) that hold a charger's Basic-auth password.
SECRET_KEYS_V16 = frozenset({PASSWORD_KEY_V16.lower()})
SECRET_VARIABLES_V2 = frozenset({("securityctrlr", "basicauthpassword")})
# Cheap pre-check before parsing: a frame without these words carries no password.
SECRET_MARKERS = ("authorizationkey", "basicauthpassword")


def is_secret_setting(component: str, variable: str) -> bool:
    """True for where a charger keeps its password: 1.6 AuthorizationKey (no component),
    2.x SecurityCtrlr.BasicAuthPassword. Case-insensitive, as chargers spell them loosely."""
    component, variable = (component or "").lower(), (variable or "").lower()
    if not component:
        return variable in SECRET_KEYS_V16
    return (component, variable) in SECRET_VARIABLES_V2


def may_hold_secret(text: str) -> bool:
    lowered = text.lower()
    return any(marker in lowered for marker in SECRET_MARKERS)


def _name(value: object) -> str:
    return str(value.get("name", "")) if isinstance(value, dict) else ""


def redact_secrets(value: object) -> object:
    """`value` (a frame's payload, a Command's payload or response, camelCase or snake_case)
    with every charger password blanked out: ChangeConfiguration / GetConfiguration's
    AuthorizationKey, SetVariables / GetVariables / NotifyReport's
    SecurityCtrlr.BasicAuthPassword. Everything else is returned as it is."""
    if isinstance(value, list):
        return [redact_secrets(item) for item in value]
    if not isinstance(value, dict):
        return value
    result = {key: redact_secrets(item) for key, item in value.items()}
    key = result.get("key")
    if isinstance(key, str) and is_secret_setting("", key) and result.get("value") is not None:
        result["value"] = REDACTED
    component, variable = _name(result.get("component")), _name(result.get("variable"))
    if component and is_secret_setting(component, variable):
        for field in ("attributeValue", "attribute_value", "actualValue", "actual_value"):
            if result.get(field) is not None:
                result[field] = REDACTED
        for field in ("variableAttribute", "variable_attribute"):
            attributes = result.get(field)
            if isinstance(attributes, list):
                result[field] = [
                    item | {"value": REDACTED}
                    if isinstance(item, dict) and item.get("value") is not None
                    else item
                    for item in attributes
                ]
    return result
