"""OCPP 1.6J: what a charger sends, answered through the services.

The frame path (`OcppProtocol`) has already validated each payload against the 1.6
schema; handlers convert it, call a service and answer with a `call_result`. Every
handler takes **kwargs: a station in lenient mode may send fields the schema lacks.
"""

from __future__ import annotations

import json

from django.utils import timezone
from ocpp.routing import on
from ocpp.v16 import ChargePoint as LibraryChargePoint
from ocpp.v16 import call_result, datatypes
from ocpp.v16.enums import Action, DataTransferStatus

from ocpp_gateway.db import db_call
from ocpp_gateway.group_commit import charging_writes
from ocpp_gateway.protocol import OcppProtocol
from ocpp_gateway.takeover import boot_decision
from ocpp_gateway.vendors import DataTransferRequest, data_transfer_dispatch
from ocpp_spec.errors import CallErrorReply
from ocpp_spec.times import utc_iso, utc_now_iso
from stations.services.boot import BootInfo, station_rebooted
from stations.services.charging import StatusReport
from stations.services.id_tags import IdTagInfo, id_tag_authorize
from stations.services.meter_values import BIGINT_MAX, MeterReading, MeterSample
from stations.services.transactions import transaction_start, transaction_stop

# Connector ids are stored in PositiveIntegerField (32-bit on PostgreSQL).
CONNECTOR_ID_MAX = 2**31 - 1
# 1.6 parentIdTag is an IdToken: at most 20 characters.
ID_TOKEN_MAX = 20


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
        booted_at = timezone.now()
        # A connection on probation was asked to boot (a take-over check), not rebooted.
        probation = self.session.probation
        decision = await boot_decision(self, info)
        self.session.registration_status = decision.status
        # A reboot ends the sessions that were running: after the answer, off its path.
        if not probation and decision.status != "Rejected":
            self.spawn(
                db_call(
                    station_rebooted, station_id=self.session.station_id, reason="", at=booted_at
                ),
                "closing the sessions a reboot ended",
            )
        return call_result.BootNotification(
            current_time=utc_now_iso(), interval=decision.interval, status=decision.status
        )

    @on(Action.heartbeat)
    async def on_heartbeat(self, **kwargs) -> call_result.Heartbeat:
        """Liveness is recorded for every frame by the message log: nothing to write here."""
        return call_result.Heartbeat(current_time=utc_now_iso())

    @on(Action.status_notification)
    async def on_status_notification(
        self, connector_id: int, error_code: str, status: str, **kwargs
    ) -> call_result.StatusNotification:
        """Connector 0 is the station itself; other connectors are created on first report."""
        self._check_range("connectorId", connector_id, 0, CONNECTOR_ID_MAX)
        timestamp = kwargs.get("timestamp")
        received_at = timezone.now()
        await charging_writes.submit(
            StatusReport(
                station_id=self.session.station_id,
                connector_id=connector_id,
                status=status,
                error_code=error_code,
                info=kwargs.get("info") or "",
                vendor_id=kwargs.get("vendor_id") or "",
                vendor_error_code=kwargs.get("vendor_error_code") or "",
                timestamp=self._time("timestamp", timestamp) if timestamp is not None else None,
                received_at=received_at,
            )
        )
        return call_result.StatusNotification()

    @on(Action.authorize)
    async def on_authorize(self, id_tag: str, **kwargs) -> call_result.Authorize:
        """Accepted for the CPO's valid tags or at a free-usage station; a business 'no' else."""
        info = await db_call(id_tag_authorize, station_id=self.session.station_id, id_tag=id_tag)
        return call_result.Authorize(id_tag_info=_id_tag_info(info))

    @on(Action.start_transaction)
    async def on_start_transaction(
        self, connector_id: int, id_tag: str, meter_start: int, timestamp: str, **kwargs
    ) -> call_result.StartTransaction:
        """Open a transaction (the row's pk is the transactionId); a resent start gets the same."""
        received_at = timezone.now()
        self._check_range("connectorId", connector_id, 0, CONNECTOR_ID_MAX)
        self._check_range("meterStart", meter_start, -BIGINT_MAX, BIGINT_MAX)
        reservation_id = kwargs.get("reservation_id")
        if reservation_id is not None:
            self._check_range("reservationId", reservation_id, -(2**31), 2**31 - 1)
        tx, info = await db_call(
            transaction_start,
            station_id=self.session.station_id,
            connector_id=connector_id,
            id_tag=id_tag,
            meter_start=meter_start,
            timestamp=self._time("timestamp", timestamp),
            reservation_id=reservation_id,
            received_at=received_at,
        )
        return call_result.StartTransaction(transaction_id=tx.pk, id_tag_info=_id_tag_info(info))

    @on(Action.stop_transaction)
    async def on_stop_transaction(
        self, meter_stop: int, timestamp: str, transaction_id: int, **kwargs
    ) -> call_result.StopTransaction:
        """Close the transaction, keep its transactionData; an unknown id is recorded too."""
        received_at = timezone.now()
        self._check_range("meterStop", meter_stop, -BIGINT_MAX, BIGINT_MAX)
        samples = self._samples("transactionData", kwargs.get("transaction_data") or [])
        info = await db_call(
            transaction_stop,
            station_id=self.session.station_id,
            transaction_id=transaction_id,
            meter_stop=meter_stop,
            timestamp=self._time("timestamp", timestamp),
            reason=kwargs.get("reason") or "",
            id_tag=kwargs.get("id_tag") or "",
            samples=samples,
            received_at=received_at,
        )
        if info is None:
            return call_result.StopTransaction()
        return call_result.StopTransaction(id_tag_info=_id_tag_info(info))

    @on(Action.meter_values)
    async def on_meter_values(
        self, connector_id: int, meter_value: list, **kwargs
    ) -> call_result.MeterValues:
        """Keep every sampled value, linked to its transaction when the station knows it."""
        received_at = timezone.now()
        self._check_range("connectorId", connector_id, 0, CONNECTOR_ID_MAX)
        samples = self._samples("meterValue", meter_value)
        await charging_writes.submit(
            MeterReading(
                station_id=self.session.station_id,
                samples=samples,
                transaction_id=kwargs.get("transaction_id"),
                connector_id=connector_id,
                received_at=received_at,
            )
        )
        return call_result.MeterValues()

    @on(Action.data_transfer)
    async def on_data_transfer(self, vendor_id: str, **kwargs) -> call_result.DataTransfer:
        """The registered vendor handler answers; UnknownVendorId when there is none."""
        result = await data_transfer_dispatch(
            DataTransferRequest(
                station_id=self.session.station_id,
                cbid=self.session.cbid,
                version=self._ocpp_version,
                vendor_id=vendor_id,
                message_id=kwargs.get("message_id") or "",
                data=kwargs.get("data"),
            )
        )
        data = result.data
        if data is not None and not isinstance(data, str):
            # 1.6 DataTransfer.data is a string: strict chargers drop anything else.
            data = json.dumps(data, separators=(",", ":"))
        return call_result.DataTransfer(status=DataTransferStatus(result.status), data=data)

    @on(Action.diagnostics_status_notification)
    async def on_diagnostics_status_notification(
        self, status: str, **kwargs
    ) -> call_result.DiagnosticsStatusNotification:
        """Acknowledged: the frame itself, kept in the message log, is the record."""
        return call_result.DiagnosticsStatusNotification()

    @on(Action.firmware_status_notification)
    async def on_firmware_status_notification(
        self, status: str, **kwargs
    ) -> call_result.FirmwareStatusNotification:
        """Acknowledged: the frame itself, kept in the message log, is the record."""
        return call_result.FirmwareStatusNotification()

    # Messages of the 1.6 security whitepaper: chargers that implement it send them
    # unasked and retry on a CALLERROR, so they are acknowledged (and logged) too.

    @on(Action.security_event_notification)
    async def on_security_event_notification(
        self, type: str, timestamp: str, **kwargs
    ) -> call_result.SecurityEventNotification:
        """Acknowledged: the frame itself, kept in the message log, is the record."""
        return call_result.SecurityEventNotification()

    @on(Action.log_status_notification)
    async def on_log_status_notification(
        self, status: str, **kwargs
    ) -> call_result.LogStatusNotification:
        """Acknowledged: the frame itself, kept in the message log, is the record."""
        return call_result.LogStatusNotification()

    @on(Action.signed_firmware_status_notification)
    async def on_signed_firmware_status_notification(
        self, status: str, **kwargs
    ) -> call_result.SignedFirmwareStatusNotification:
        """Acknowledged: the frame itself, kept in the message log, is the record."""
        return call_result.SignedFirmwareStatusNotification()

    # ---- payload conversion -------------------------------------------------------

    def _check_range(self, field: str, value: int, low: int, high: int) -> None:
        # The schema says only "integer"; the database column says how big.
        if not low <= value <= high:
            raise CallErrorReply(self.codes.property_violation, f"{field}: {value} is out of range")

    def _samples(self, field: str, meter_values: list[dict]) -> list[MeterSample]:
        """What the charger sent, as sent (the defaults are applied when stored). A value
        of format SignedData is the signed meter data itself: kept whole, as evidence."""
        samples = []
        for index, meter_value in enumerate(meter_values):
            timestamp = self._time(f"{field}.{index}.timestamp", meter_value.get("timestamp"))
            for sampled in meter_value.get("sampled_value") or []:
                value = sampled.get("value", "")
                signed = sampled.get("format") == "SignedData"
                samples.append(
                    MeterSample(
                        timestamp=timestamp,
                        value="" if signed else value,
                        signed_data=value if signed else "",
                        measurand=sampled.get("measurand") or "",
                        phase=sampled.get("phase") or "",
                        unit=sampled.get("unit") or "",
                        context=sampled.get("context") or "",
                        location=sampled.get("location") or "",
                    )
                )
        return samples


def _id_tag_info(info: IdTagInfo) -> datatypes.IdTagInfo:
    return datatypes.IdTagInfo(
        status=info.status,
        parent_id_tag=info.parent_id_tag[:ID_TOKEN_MAX] or None,
        expiry_date=utc_iso(info.expiry_date) if info.expiry_date else None,
    )
