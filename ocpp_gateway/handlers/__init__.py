"""Per-version OCPP ChargePoint classes: payload → service call → answer.

Imported with the consumer at start-up, not at the first connection: importing them (and
the ocpp library's classes) would block the event loop in the middle of a boot storm.
"""

from __future__ import annotations

from ocpp_gateway.handlers import v16, v21, v201

_CLASSES: dict[str, type] = {
    "1.6": v16.ChargePoint,
    "2.0.1": v201.ChargePoint,
    "2.1": v21.ChargePoint,
}


def charge_point_class(version: str) -> type:
    try:
        return _CLASSES[version]
    except KeyError:
        raise LookupError(f"No handlers for OCPP {version}") from None
