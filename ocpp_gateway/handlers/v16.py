"""OCPP 1.6J: what a charger sends, answered through the services."""

from __future__ import annotations

from channels.db import database_sync_to_async
from ocpp.routing import on
from ocpp.v16 import ChargePoint as LibraryChargePoint
from ocpp.v16 import call_result
from ocpp.v16.enums import Action

from ocpp_gateway.protocol import OcppProtocol
from ocpp_gateway.timeutil import utc_now_iso
from stations.services.registration import BootInfo, station_boot


class ChargePoint(OcppProtocol, LibraryChargePoint):
    actions = frozenset(a.value for a in Action)
    COSMETIC_FIELDS = {
        "BootNotification": frozenset(
            {
                "chargePointVendor",
                "chargePointModel",
                "chargePointSerialNumber",
                "chargeBoxSerialNumber",
                "firmwareVersion",
                "iccid",
                "imsi",
                "meterType",
                "meterSerialNumber",
            }
        ),
        "StatusNotification": frozenset({"info", "vendorId", "vendorErrorCode"}),
    }

    @on(Action.boot_notification)
    async def on_boot_notification(
        self, charge_point_vendor: str, charge_point_model: str, **kwargs
    ) -> call_result.BootNotification:
        """Store the boot facts; Pending in the pool, Accepted with a CPO."""
        info = BootInfo(
            vendor=charge_point_vendor,
            model=charge_point_model,
            serial_number=kwargs.get("charge_point_serial_number", ""),
            charge_box_serial_number=kwargs.get("charge_box_serial_number", ""),
            firmware_version=kwargs.get("firmware_version", ""),
            iccid=kwargs.get("iccid", ""),
            imsi=kwargs.get("imsi", ""),
            meter_type=kwargs.get("meter_type", ""),
            meter_serial_number=kwargs.get("meter_serial_number", ""),
        )
        decision = await database_sync_to_async(station_boot)(
            station_id=self.context.station_id, info=info
        )
        self.context.registration_status = decision.status
        return call_result.BootNotification(
            current_time=utc_now_iso(), interval=decision.interval, status=decision.status
        )

    @on(Action.heartbeat)
    async def on_heartbeat(self, **kwargs) -> call_result.Heartbeat:
        """Liveness is recorded for every frame by the message log: nothing to write here."""
        return call_result.Heartbeat(current_time=utc_now_iso())
