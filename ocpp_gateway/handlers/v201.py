"""OCPP 2.0.1: what a charger sends, answered through the services.

The handlers answer with `self._call_result`, so the OCPP 2.1 class (handlers/v21.py)
reuses them unchanged: every 2.1 message handled here is a superset of its 2.0.1 form.
"""

from __future__ import annotations

import logging

from django.utils import timezone
from ocpp.routing import on
from ocpp.v201 import ChargePoint as LibraryChargePoint
from ocpp.v201.enums import Action

from ocpp_gateway.db import db_call
from ocpp_gateway.group_commit import charging_writes
from ocpp_gateway.protocol import OcppProtocol, to_camel_case
from ocpp_gateway.takeover import boot_decision
from ocpp_spec.errors import CallErrorReply
from ocpp_spec.times import utc_iso, utc_now_iso
from stations.services.boot import BootInfo, station_rebooted
from stations.services.charging import StatusReport
from stations.services.device_model import device_model_store_events, device_model_store_report
from stations.services.id_tags import IdTagInfo, id_token_authorize
from stations.services.meter_values import MeterReading, MeterSample
from stations.services.transaction_events import (
    InvalidTimestamp,
    TransactionEventData,
    meter_samples_from_ocpp,
    transaction_event_record,
)

logger = logging.getLogger(__name__)

# 2.0.1 AuthorizationStatusEnumType; a verdict outside it (none today) is sent as Invalid.
AUTHORIZATION_STATUSES = frozenset(
    {
        "Accepted",
        "Blocked",
        "ConcurrentTx",
        "Expired",
        "Invalid",
        "NoCredit",
        "NotAllowedTypeEVSE",
        "NotAtThisLocation",
        "NotAtThisTime",
        "Unknown",
    }
)


def id_token_info(info: IdTagInfo) -> dict:
    """The 2.x idTokenInfo for a verdict (snake_case: the frame path camel-cases it)."""
    status = info.status if info.status in AUTHORIZATION_STATUSES else "Invalid"
    answer: dict = {"status": status}
    if info.expiry_date is not None:
        answer["cache_expiry_date_time"] = utc_iso(info.expiry_date)
    if info.parent_id_tag:
        # The group a token belongs to (1.6 parentIdTag); a group id is issued centrally.
        answer["group_id_token"] = {"id_token": info.parent_id_tag, "type": "Central"}
    return answer


class ChargePoint(OcppProtocol, LibraryChargePoint):
    actions = frozenset(a.value for a in Action)
    # Over-long vendor strings that real firmware sends: accepted and logged, never refused.
    COSMETIC_FIELDS = {
        "BootNotification": frozenset(
            {
                "chargingStation.model",
                "chargingStation.vendorName",
                "chargingStation.serialNumber",
                "chargingStation.firmwareVersion",
                "chargingStation.modem.iccid",
                "chargingStation.modem.imsi",
            }
        ),
        "SecurityEventNotification": frozenset({"techInfo"}),
    }

    @on(Action.boot_notification)
    async def on_boot_notification(self, charging_station: dict, reason: str, **kwargs):
        """Store the boot facts; Pending in the pool, Accepted with a CPO."""
        modem = charging_station.get("modem") or {}
        info = BootInfo(
            vendor=charging_station.get("vendor_name", ""),
            model=charging_station.get("model", ""),
            serial_number=charging_station.get("serial_number", ""),
            firmware_version=charging_station.get("firmware_version", ""),
            iccid=modem.get("iccid", ""),
            imsi=modem.get("imsi", ""),
            reason=reason,
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
                    station_rebooted,
                    station_id=self.session.station_id,
                    reason=reason,
                    at=booted_at,
                ),
                "closing the sessions a reboot ended",
            )
        return self._call_result.BootNotification(
            current_time=utc_now_iso(), interval=decision.interval, status=decision.status
        )

    @on(Action.heartbeat)
    async def on_heartbeat(self, **kwargs):
        """Liveness is recorded for every frame by the message log: nothing to write here."""
        return self._call_result.Heartbeat(current_time=utc_now_iso())

    @on(Action.status_notification)
    async def on_status_notification(
        self, timestamp: str, connector_status: str, evse_id: int, connector_id: int, **kwargs
    ):
        """A connector of an EVSE changed state (Available, Occupied, Faulted…)."""
        received_at = timezone.now()
        await charging_writes.submit(
            StatusReport(
                station_id=self.session.station_id,
                evse_id=evse_id,
                connector_id=connector_id,
                status=connector_status,
                timestamp=self._time("timestamp", timestamp),
                received_at=received_at,
            )
        )
        return self._call_result.StatusNotification()

    @on(Action.authorize)
    async def on_authorize(self, id_token: dict, **kwargs):
        """Judge an idToken by its value and its type."""
        info = await db_call(
            id_token_authorize,
            station_id=self.session.station_id,
            id_token=id_token.get("id_token", ""),
            token_type=id_token.get("type", ""),
        )
        return self._call_result.Authorize(id_token_info=id_token_info(info))

    @on(Action.transaction_event)
    async def on_transaction_event(
        self,
        event_type: str,
        timestamp: str,
        trigger_reason: str,
        seq_no: int,
        transaction_info: dict,
        **kwargs,
    ):
        """Merge a session's start, update or end, whatever its order; answer idTokenInfo
        when a token came. A time that is not a date-time is refused, storing nothing."""
        received_at = timezone.now()
        evse = kwargs.get("evse") or {}
        token = kwargs.get("id_token") or {}
        cost_details = kwargs.get("cost_details")
        event = TransactionEventData(
            event_type=event_type,
            timestamp=self._time("timestamp", timestamp),
            seq_no=seq_no,
            transaction_id=transaction_info["transaction_id"],
            trigger_reason=trigger_reason,
            charging_state=transaction_info.get("charging_state", ""),
            stopped_reason=transaction_info.get("stopped_reason", ""),
            remote_start_id=transaction_info.get("remote_start_id"),
            time_spent_charging=transaction_info.get("time_spent_charging"),
            tariff_id=transaction_info.get("tariff_id", ""),
            cost_details=to_camel_case(cost_details) if cost_details is not None else None,
            offline=bool(kwargs.get("offline", False)),
            evse_id=evse.get("id"),
            connector_id=evse.get("connector_id"),
            id_token=token.get("id_token", ""),
            id_token_type=token.get("type", ""),
            reservation_id=kwargs.get("reservation_id"),
            samples=self._samples(kwargs.get("meter_value")),
        )
        result = await db_call(
            transaction_event_record,
            station_id=self.session.station_id,
            event=event,
            received_at=received_at,
        )
        if result.id_token_info is None:
            return self._call_result.TransactionEvent()
        return self._call_result.TransactionEvent(id_token_info=id_token_info(result.id_token_info))

    @on(Action.meter_values)
    async def on_meter_values(self, evse_id: int, meter_value: list, **kwargs):
        """Values outside a transaction (2.x sends in-session values in TransactionEvent)."""
        received_at = timezone.now()
        await charging_writes.submit(
            MeterReading(
                station_id=self.session.station_id,
                samples=self._samples(meter_value),
                evse_id=evse_id,
                received_at=received_at,
            )
        )
        return self._call_result.MeterValues()

    def _samples(self, meter_value: list[dict] | None) -> list[MeterSample]:
        try:
            return meter_samples_from_ocpp(meter_value)
        except InvalidTimestamp as exc:
            raise CallErrorReply(self.codes.property_violation, str(exc)) from exc

    @on(Action.notify_report)
    async def on_notify_report(self, request_id: int, seq_no: int, **kwargs):
        """One part of a GetBaseReport answer: its variables become StationVariable rows."""
        stored = await db_call(
            device_model_store_report,
            station_id=self.session.station_id,
            report_data=kwargs.get("report_data"),
        )
        logger.info(
            "%s: report %s part %s stored %s variables%s",
            self.id,
            request_id,
            seq_no,
            stored,
            " (more to come)" if kwargs.get("tbc") else "",
        )
        return self._call_result.NotifyReport()

    @on(Action.notify_event)
    async def on_notify_event(self, seq_no: int, event_data: list, **kwargs):
        """Monitored variables changed: bring their Actual values up to date."""
        await db_call(
            device_model_store_events, station_id=self.session.station_id, event_data=event_data
        )
        return self._call_result.NotifyEvent()

    @on(Action.security_event_notification)
    async def on_security_event_notification(self, type: str, timestamp: str, **kwargs):
        """Security events (failed logins, tamper, reset…): logged for operators.

        The frame itself is kept in the station's OCPP log with the others.
        """
        logger.warning(
            "%s: security event %s at %s %s", self.id, type, timestamp, kwargs.get("tech_info", "")
        )
        return self._call_result.SecurityEventNotification()

    @on(Action.firmware_status_notification)
    async def on_firmware_status_notification(self, status: str, **kwargs):
        """Progress of a firmware update; the new version arrives with the next boot."""
        logger.info(
            "%s: firmware status %s (request %s)", self.id, status, kwargs.get("request_id")
        )
        return self._call_result.FirmwareStatusNotification()

    @on(Action.log_status_notification)
    async def on_log_status_notification(self, status: str, **kwargs):
        """Progress of a log upload (GetLog)."""
        logger.info("%s: log status %s (request %s)", self.id, status, kwargs.get("request_id"))
        return self._call_result.LogStatusNotification()

    @on(Action.data_transfer)
    async def on_data_transfer(self, vendor_id: str, **kwargs):
        """No vendor extensions are implemented: every vendor is unknown."""
        return self._call_result.DataTransfer(status="UnknownVendorId")
