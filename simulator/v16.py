"""The simulated OCPP 1.6J charger."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from ocpp.routing import after, on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16

from ocpp_spec.passwords import PASSWORD_KEY_V16
from ocpp_spec.times import utc_now_iso
from simulator.base import (
    CHARGING_POWER_W,
    SimulatorBase,
    TransactionState,
)
from simulator.signed import ocmf_record

logger = logging.getLogger(__name__)


def sampled_energy_16(wh: int, context: str, *, signed: str = "") -> list[dict]:
    """The register and the power now; with `signed` (an OCMF record), the register signed too."""
    signed_values = [{"value": signed, "context": context, "format": "SignedData"}]
    return [
        {
            "timestamp": utc_now_iso(),
            "sampled_value": (signed_values if signed else [])
            + [
                {
                    "value": str(wh),
                    "context": context,
                    "measurand": "Energy.Active.Import.Register",
                    "location": "Outlet",
                    "unit": "Wh",
                },
                {
                    "value": str(CHARGING_POWER_W if context == "Sample.Periodic" else 0),
                    "context": context,
                    "measurand": "Power.Active.Import",
                    "location": "Outlet",
                    "unit": "W",
                },
            ],
        }
    ]


class Simulator16(SimulatorBase, ChargePoint16):
    """An OCPP 1.6J charger: connectors 1..N, connector 0 is the station itself."""

    version = "1.6"

    def connector_ids(self) -> list[int]:
        return list(range(1, self.options.connectors + 1))

    def connector_status(self, connector_id: int) -> str:
        if connector_id in self.state.unavailable or (
            connector_id != 0 and 0 in self.state.unavailable
        ):
            return "Unavailable"
        tx = self.transaction
        if tx is not None and tx.connector_id == connector_id:
            return "Charging" if tx.transaction_id is not None else "Preparing"
        return "Available"

    def reset_stop_reason(self) -> str:
        return "HardReset" if self.reset_type == "Hard" else "SoftReset"

    def boot_payload(self, reason: str | None) -> call16.BootNotification:
        options = self.options
        return call16.BootNotification(
            charge_point_model=options.model,
            charge_point_vendor=options.vendor,
            charge_point_serial_number=options.serial_number,
            firmware_version=options.firmware_version,
            meter_type="Simulated meter",
        )

    def heartbeat_payload(self) -> call16.Heartbeat:
        return call16.Heartbeat()

    async def report_all_statuses(self) -> None:
        await self.send_status(0)
        await super().report_all_statuses()

    async def send_status(self, connector_id: int, status: str | None = None) -> None:
        await self.request(
            call16.StatusNotification(
                connector_id=connector_id,
                error_code="NoError",
                status=status or self.connector_status(connector_id),
                timestamp=utc_now_iso(),
            )
        )

    async def authorize(self, id_tag: str) -> str:
        result = await self.request(call16.Authorize(id_tag=id_tag))
        return result.id_tag_info["status"]

    async def transaction_request(self, payload: Any) -> Any:
        """Send a transaction message; with `resend`, send it again as if the answer was lost."""
        result = await self.request(payload)
        if self.options.resend:
            self.say("  sending it again (the charger lost the answer)")
            again = await self.request(payload)
            if getattr(again, "transaction_id", None) != getattr(result, "transaction_id", None):
                self.say("! the backend answered the resent start with another transaction")
        return result

    def sampled_energy(self, tx: TransactionState, context: str) -> list[dict]:
        record = ""
        if self.options.signed:
            record = ocmf_record(
                cbid=self.options.cbid,
                wh=self.state.meter_wh,
                at=datetime.now(UTC),
                context=context,
                transaction=tx.transaction_id,
            )
        return sampled_energy_16(self.state.meter_wh, context, signed=record)

    async def start_transaction(self, tx: TransactionState) -> None:
        await self.send_status(tx.connector_id, "Preparing")
        result = await self.transaction_request(
            call16.StartTransaction(
                connector_id=tx.connector_id,
                id_tag=tx.id_tag,
                meter_start=tx.meter_start,
                timestamp=utc_now_iso(),
            )
        )
        tx.transaction_id = result.transaction_id
        status = result.id_tag_info["status"]
        self.say(f"  transaction {tx.transaction_id} started ({status})")
        if status != "Accepted":
            # A charger stops a transaction whose id tag the backend did not accept.
            tx.stop_reason = "DeAuthorized"
            tx.stop_requested.set()
            return
        await self.send_status(tx.connector_id, "Charging")

    async def send_meter_values(self, tx: TransactionState) -> None:
        await self.transaction_request(
            call16.MeterValues(
                connector_id=tx.connector_id,
                transaction_id=tx.transaction_id,
                meter_value=self.sampled_energy(tx, "Sample.Periodic"),
            )
        )

    async def stop_transaction(self, tx: TransactionState) -> None:
        await self.transaction_request(
            call16.StopTransaction(
                meter_stop=self.state.meter_wh,
                timestamp=utc_now_iso(),
                transaction_id=tx.transaction_id,
                reason=tx.stop_reason,
                id_tag=tx.id_tag,
                transaction_data=self.sampled_energy(tx, "Transaction.End"),
            )
        )
        self.say(
            f"  transaction {tx.transaction_id} stopped ({tx.stop_reason}), "
            f"{self.state.meter_wh - tx.meter_start} Wh"
        )
        self.transaction = None
        await self.send_status(tx.connector_id, "Finishing")
        await self.send_status(tx.connector_id, "Available")

    # ---- what the backend asks ----------------------------------------------------------

    @on(Action16.reset)
    def on_reset(self, type: str, **kwargs) -> result16.Reset:
        return result16.Reset(status="Accepted")

    @after(Action16.reset)
    def after_reset(self, type: str, **kwargs) -> None:
        self._after_reset(type)

    TRIGGERABLE = frozenset(
        {
            "BootNotification",
            "Heartbeat",
            "StatusNotification",
            "MeterValues",
            "DiagnosticsStatusNotification",
            "FirmwareStatusNotification",
        }
    )

    @on(Action16.trigger_message)
    def on_trigger_message(
        self, requested_message: str, connector_id: int | None = None, **kwargs
    ) -> result16.TriggerMessage:
        if requested_message not in self.TRIGGERABLE:
            return result16.TriggerMessage(status="NotImplemented")
        if connector_id is not None and connector_id not in [0, *self.connector_ids()]:
            return result16.TriggerMessage(status="Rejected")
        return result16.TriggerMessage(status="Accepted")

    @after(Action16.trigger_message)
    def after_trigger_message(
        self, requested_message: str, connector_id: int | None = None, **kwargs
    ) -> None:
        if requested_message not in self.TRIGGERABLE:
            return
        if requested_message == "BootNotification":
            if self.accepted.is_set():
                self.spawn(self.boot(), "triggered boot")
            else:
                self.boot_now.set()
        elif requested_message == "Heartbeat":
            self.spawn(self.request(call16.Heartbeat()), "triggered heartbeat")
        elif requested_message == "StatusNotification":
            if connector_id is None:
                self.spawn(self.report_all_statuses(), "triggered status")
            else:
                self.spawn(self.send_status(connector_id), "triggered status")
        elif requested_message == "MeterValues":
            # Without a connector: "for all allowed connectorId values" (1.6 §5.17).
            connector_ids = [connector_id] if connector_id else self.connector_ids()
            self.spawn(self._triggered_meter_values(connector_ids), "triggered meter values")
        elif requested_message == "DiagnosticsStatusNotification":
            payload = call16.DiagnosticsStatusNotification(status="Idle")
            self.spawn(self.request(payload), "triggered diagnostics status")
        else:
            payload = call16.FirmwareStatusNotification(status="Idle")
            self.spawn(self.request(payload), "triggered firmware status")

    async def _triggered_meter_values(self, connector_ids: list[int]) -> None:
        tx = self.transaction
        for connector_id in connector_ids:
            await self.request(
                call16.MeterValues(
                    connector_id=connector_id,
                    transaction_id=tx.transaction_id
                    if tx and tx.connector_id == connector_id
                    else None,
                    meter_value=sampled_energy_16(self.state.meter_wh, "Trigger"),
                )
            )

    @on(Action16.get_configuration)
    def on_get_configuration(
        self, key: list[str] | None = None, **kwargs
    ) -> result16.GetConfiguration:
        configuration = self.state.configuration
        wanted = key or list(configuration)
        known = [
            {"key": name, "readonly": name in self.READ_ONLY_KEYS, "value": configuration[name]}
            for name in wanted
            if name in configuration
        ]
        unknown = [name for name in wanted if name not in configuration]
        return result16.GetConfiguration(configuration_key=known, unknown_key=unknown or None)

    @on(Action16.change_configuration)
    def on_change_configuration(
        self, key: str, value: str, **kwargs
    ) -> result16.ChangeConfiguration:
        if key == PASSWORD_KEY_V16:
            # Write-only, hex-encoded (1.6 security whitepaper): never in GetConfiguration.
            try:
                password = bytes.fromhex(value).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                self.say("  new password refused: AuthorizationKey must be hex-encoded")
                return result16.ChangeConfiguration(status="Rejected")
            return result16.ChangeConfiguration(status=self.password_change(password))
        return result16.ChangeConfiguration(status=self.configuration_set(key, value))

    @on(Action16.change_availability)
    def on_change_availability(
        self, connector_id: int, type: str, **kwargs
    ) -> result16.ChangeAvailability:
        if connector_id not in [0, *self.connector_ids()]:
            return result16.ChangeAvailability(status="Rejected")
        tx = self.transaction
        busy = tx is not None and connector_id in (0, tx.connector_id)
        if type == "Inoperative" and busy:
            # Takes effect when the transaction ends (the simulator keeps it simple:
            # it only marks the connector; the status follows after the stop).
            self.state.unavailable.add(connector_id)
            return result16.ChangeAvailability(status="Scheduled")
        return result16.ChangeAvailability(status="Accepted")

    @after(Action16.change_availability)
    def after_change_availability(self, connector_id: int, type: str, **kwargs) -> None:
        if connector_id not in [0, *self.connector_ids()]:
            return
        if type == "Inoperative":
            self.state.unavailable.add(connector_id)
        else:
            self.state.unavailable.discard(connector_id)
        targets = [0, *self.connector_ids()] if connector_id == 0 else [connector_id]
        if self.accepted.is_set():
            self.spawn(self._send_statuses(targets), "availability status")

    async def _send_statuses(self, connector_ids: list[int]) -> None:
        for connector_id in connector_ids:
            await self.send_status(connector_id)

    @on(Action16.unlock_connector)
    def on_unlock_connector(self, connector_id: int, **kwargs) -> result16.UnlockConnector:
        if connector_id not in self.connector_ids():
            return result16.UnlockConnector(status="NotSupported")
        return result16.UnlockConnector(status="Unlocked")

    @on(Action16.remote_start_transaction)
    def on_remote_start_transaction(
        self, id_tag: str, connector_id: int | None = None, **kwargs
    ) -> result16.RemoteStartTransaction:
        connector_id = connector_id or 1
        if not self.accepted.is_set() or not self.connector_free(connector_id):
            return result16.RemoteStartTransaction(status="Rejected")
        return result16.RemoteStartTransaction(status="Accepted")

    @after(Action16.remote_start_transaction)
    def after_remote_start_transaction(
        self, id_tag: str, connector_id: int | None = None, **kwargs
    ) -> None:
        connector_id = connector_id or 1
        if self.accepted.is_set() and self.connector_free(connector_id):
            # AuthorizeRemoteTxRequests is false: the start itself is the authorization.
            self.begin_transaction(connector_id=connector_id, id_tag=id_tag, remote_start_id=0)

    @on(Action16.remote_stop_transaction)
    def on_remote_stop_transaction(
        self, transaction_id: int, **kwargs
    ) -> result16.RemoteStopTransaction:
        tx = self.transaction
        if tx is None or tx.transaction_id != transaction_id:
            return result16.RemoteStopTransaction(status="Rejected")
        tx.stop_reason = "Remote"
        tx.stop_requested.set()
        return result16.RemoteStopTransaction(status="Accepted")

    @on(Action16.send_local_list)
    def on_send_local_list(
        self, list_version: int, update_type: str, **kwargs
    ) -> result16.SendLocalList:
        entries = [
            (item["id_tag"], (item.get("id_tag_info") or {}).get("status"))
            for item in kwargs.get("local_authorization_list") or []
        ]
        status = self.local_list_apply(
            version=list_version, update_type=update_type, entries=entries
        )
        return result16.SendLocalList(status=status)

    @on(Action16.get_local_list_version)
    def on_get_local_list_version(self, **kwargs) -> result16.GetLocalListVersion:
        return result16.GetLocalListVersion(list_version=self.state.local_list_version)

    @on(Action16.clear_cache)
    def on_clear_cache(self, **kwargs) -> result16.ClearCache:
        return result16.ClearCache(status="Accepted")

    @on(Action16.data_transfer)
    def on_data_transfer(self, vendor_id: str, **kwargs) -> result16.DataTransfer:
        return result16.DataTransfer(status="UnknownVendorId")
