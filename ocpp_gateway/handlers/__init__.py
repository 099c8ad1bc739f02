"""Per-version OCPP ChargePoint classes: payload → service call → answer."""

from __future__ import annotations


def charge_point_class(version: str) -> type:
    if version == "1.6":
        from ocpp_gateway.handlers.v16 import ChargePoint

        return ChargePoint
    if version == "2.0.1":
        from ocpp_gateway.handlers.v201 import ChargePoint

        return ChargePoint
    if version == "2.1":
        from ocpp_gateway.handlers.v21 import ChargePoint

        return ChargePoint
    raise LookupError(f"No handlers for OCPP {version}")
