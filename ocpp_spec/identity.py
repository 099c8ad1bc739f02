"""Charger identity (CBID) and subprotocol negotiation rules."""

from __future__ import annotations

import re

# OCPP 1.6 security whitepaper / 2.0.1 part 4: identity is 1-48 chars of this set.
CBID_RE = re.compile(r"^[A-Za-z0-9*\-_=:+|@.]{1,48}$")

# Subprotocol → OCPP version, newest first: a charger offering several gets the newest.
# Only versions the gateway has handlers for are listed.
SUBPROTOCOLS: dict[str, str] = {
    "ocpp2.1": "2.1",
    "ocpp2.0.1": "2.0.1",
    "ocpp1.6": "1.6",
}


class InvalidCbid(ValueError):
    pass


def validate_cbid(raw: str) -> str:
    """Return the CBID when `raw` (the percent-decoded path segment) is a valid identity."""
    if not raw:
        raise InvalidCbid("empty CBID")
    if len(raw) > 48:
        raise InvalidCbid(f"CBID longer than 48 characters ({len(raw)})")
    if not CBID_RE.fullmatch(raw):
        raise InvalidCbid(f"{_first_offence(raw)} (allowed: A-Z a-z 0-9 . * - _ = : + | @)")
    if raw in {".", ".."}:
        raise InvalidCbid("CBID may not be a path segment like '.' or '..'")
    return raw


def _first_offence(raw: str) -> str:
    """Say which character of `raw` a CBID may not have: "spaces are not allowed"."""
    bad = next(c for c in raw if not CBID_RE.fullmatch(c))
    if bad == " ":
        return "spaces are not allowed"
    if bad == "/":
        return "'/' is not allowed"
    if not bad.isprintable() or bad.isspace():
        return f"the character U+{ord(bad):04X} is not allowed"
    return f"'{bad}' is not allowed"


def negotiate_subprotocol(
    offered: list[str], supported: dict[str, str] | None = None
) -> tuple[str, str] | None:
    """Pick the newest supported subprotocol the charger offered: (subprotocol, version)."""
    supported = SUBPROTOCOLS if supported is None else supported
    offered_lower = {p.strip().lower(): p.strip() for p in offered}
    for subprotocol, version in supported.items():
        if subprotocol in offered_lower:
            # Echo the charger's own spelling: some compare it byte for byte.
            return offered_lower[subprotocol], version
    return None
