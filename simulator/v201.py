"""The simulated OCPP 2.0.1 charger, and the same charger speaking OCPP 2.1."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ocpp.routing import after, on
from ocpp.v21 import call as call21
from ocpp.v21 import call_result as result21
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201
from ocpp.v201.enums import Action as Action201

from ocpp_spec.times import utc_now_iso
from simulator.base import (
    CHARGING_POWER_W,
    SimulatorBase,
    SimulatorOptions,
    TransactionState,
)
from simulator.signed import ocmf_record, signed_meter_value_201

logger = logging.getLogger(__name__)


def sampled_energy_201(wh: int, context: str, *, signed: str = "") -> list[dict]:
    """The register and the power now; with `signed` (an OCMF record), the register signed."""
    register: dict[str, Any] = {
        "value": wh,
        "context": context,
        "measurand": "Energy.Active.Import.Register",
        "location": "Outlet",
        "unit_of_measure": {"unit": "Wh"},
    }
    if signed:
        register["signed_meter_value"] = signed_meter_value_201(signed)
    return [
        {
            "timestamp": utc_now_iso(),
            "sampled_value": [
                register,
                {
                    "value": CHARGING_POWER_W if context == "Sample.Periodic" else 0,
                    "context": context,
                    "measurand": "Power.Active.Import",
                    "location": "Outlet",
                    "unit_of_measure": {"unit": "W"},
                },
            ],
        }
    ]


# 2.0.1 device model: (component, variable) -> 1.6 configuration key it mirrors, or a value.
VARIABLES_201: dict[tuple[str, str], str] = {
    ("OCPPCommCtrlr", "HeartbeatInterval"): "HeartbeatInterval",
    ("SampledDataCtrlr", "TxUpdatedInterval"): "MeterValueSampleInterval",
    ("SampledDataCtrlr", "TxUpdatedMeasurands"): "MeterValuesSampledData",
    ("AuthCtrlr", "AuthorizeRemoteStart"): "AuthorizeRemoteTxRequests",
    ("AuthCtrlr", "LocalPreAuthorize"): "LocalPreAuthorize",
    ("TxCtrlr", "EVConnectionTimeOut"): "ConnectionTimeOut",
}
READ_ONLY_201: dict[tuple[str, str], Callable[[SimulatorOptions], str]] = {
    ("ChargingStation", "Model"): lambda options: options.model,
    ("ChargingStation", "VendorName"): lambda options: options.vendor,
    ("ChargingStation", "SerialNumber"): lambda options: options.serial_number,
    ("ChargingStation", "FirmwareVersion"): lambda options: options.firmware_version,
    ("ChargingStation", "AvailabilityState"): lambda options: "Available",
}

# Write-only (2.0.1 A01): set by the backend, never read back, nor in a report.
PASSWORD_VARIABLE = ("SecurityCtrlr", "BasicAuthPassword")


class Simulator201(SimulatorBase, ChargePoint201):
    """An OCPP 2.0.1 charging station: EVSEs 1..N with one connector each."""

    version = "2.0.1"
    # The result classes of the version spoken (Simulator21 swaps them).
    _call_result = result201

    def connector_ids(self) -> list[int]:
        # The EVSE ids; each EVSE has connector 1.
        return list(range(1, self.options.connectors + 1))

    def connector_status(self, evse_id: int) -> str:
        if evse_id in self.state.unavailable or 0 in self.state.unavailable:
            return "Unavailable"
        tx = self.transaction
        if tx is not None and tx.connector_id == evse_id:
            return "Occupied"
        return "Available"

    def reset_stop_reason(self) -> str:
        return "ImmediateReset"

    def boot_payload(self, reason: str | None) -> call201.BootNotification:
        options = self.options
        return call201.BootNotification(
            charging_station={
                "model": options.model,
                "vendor_name": options.vendor,
                "serial_number": options.serial_number,
                "firmware_version": options.firmware_version,
            },
            reason=reason or "PowerUp",
        )

    def heartbeat_payload(self) -> call201.Heartbeat:
        return call201.Heartbeat()

    async def send_status(self, connector_id: int, status: str | None = None) -> None:
        await self.request(
            call201.StatusNotification(
                timestamp=utc_now_iso(),
                connector_status=status or self.connector_status(connector_id),
                evse_id=connector_id,
                connector_id=1,
            )
        )

    def id_token(self, id_tag: str) -> dict:
        return {"id_token": id_tag, "type": "ISO14443"}

    async def authorize(self, id_tag: str) -> str:
        result = await self.request(call201.Authorize(id_token=self.id_token(id_tag)))
        return result.id_token_info["status"]

    async def _transaction_event(
        self,
        tx: TransactionState,
        *,
        event_type: str,
        trigger_reason: str,
        charging_state: str | None = None,
        meter_context: str | None = None,
        with_id_token: bool = False,
        stopped_reason: str | None = None,
    ) -> Any:
        info: dict[str, Any] = {"transaction_id": tx.transaction_id}
        if charging_state:
            info["charging_state"] = charging_state
        if stopped_reason:
            info["stopped_reason"] = stopped_reason
        if tx.remote_start_id is not None and event_type == "Started":
            info["remote_start_id"] = tx.remote_start_id
        payload = call201.TransactionEvent(
            event_type=event_type,
            timestamp=utc_now_iso(),
            trigger_reason=trigger_reason,
            seq_no=tx.seq_no,
            transaction_info=info,
            evse={"id": tx.connector_id, "connector_id": 1} if event_type == "Started" else None,
            id_token=self.id_token(tx.id_tag) if with_id_token else None,
            meter_value=self.sampled_energy(tx, meter_context) if meter_context else None,
        )
        tx.seq_no += 1
        if self.options.event_order != "live":
            # Held back, as by a charger that is offline or retrying: sent at the end.
            tx.held.append(payload)
            return None
        return await self.send_transaction_event(payload)

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
        return sampled_energy_201(self.state.meter_wh, context, signed=record)

    async def send_transaction_event(self, payload: call201.TransactionEvent) -> Any:
        """Send one event; with `resend`, send it again as if the answer was lost."""
        result = await self.request(payload)
        if self.options.resend:
            self.say(f"  sending seqNo {payload.seq_no} again (the charger lost the answer)")
            await self.request(payload)
        return result

    async def send_held_events(self, tx: TransactionState) -> None:
        """Send the events held back, in the order the options say."""
        events, tx.held = list(tx.held), []
        if self.options.event_order == "reversed":
            events.reverse()
        elif self.options.event_order == "shuffled":
            random.Random(self.options.seed).shuffle(events)
        order = ", ".join(str(e.seq_no) for e in events)
        self.say(f"  sending the transaction's {len(events)} events, seqNo {order}")
        for payload in events:
            await self.send_transaction_event(payload)

    async def start_transaction(self, tx: TransactionState) -> None:
        await self.send_status(tx.connector_id, "Occupied")
        result = await self._transaction_event(
            tx,
            event_type="Started",
            trigger_reason="RemoteStart" if tx.remote_start_id is not None else "Authorized",
            charging_state="Charging",
            meter_context="Transaction.Begin",
            with_id_token=True,
        )
        # Held back: the charger started on its own authority (offline authorization).
        status = ((result.id_token_info if result else None) or {}).get("status", "Accepted")
        self.say(f"  transaction {tx.transaction_id} started ({status})")
        if status != "Accepted":
            tx.stop_reason = "DeAuthorized"
            tx.stop_requested.set()

    async def send_meter_values(self, tx: TransactionState) -> None:
        await self._transaction_event(
            tx,
            event_type="Updated",
            trigger_reason="MeterValuePeriodic",
            meter_context="Sample.Periodic",
        )

    STOP_TRIGGERS = {
        "Remote": "RemoteStop",
        "DeAuthorized": "Deauthorized",
        "ImmediateReset": "ResetCommand",
    }

    async def stop_transaction(self, tx: TransactionState) -> None:
        await self._transaction_event(
            tx,
            event_type="Ended",
            trigger_reason=self.STOP_TRIGGERS.get(tx.stop_reason, "StopAuthorized"),
            charging_state="Idle",
            meter_context="Transaction.End",
            stopped_reason=tx.stop_reason,
        )
        if tx.held:
            await self.send_held_events(tx)
        self.say(
            f"  transaction {tx.transaction_id} ended ({tx.stop_reason}), "
            f"{self.state.meter_wh - tx.meter_start} Wh"
        )
        self.transaction = None
        await self.send_status(tx.connector_id, "Available")

    # ---- device model -----------------------------------------------------------------

    def variable_get(self, component: str, variable: str) -> str | None:
        key = VARIABLES_201.get((component, variable))
        if key is not None:
            return self.state.configuration.get(key, "")
        reader = READ_ONLY_201.get((component, variable))
        return reader(self.options) if reader else None

    def variable_set(self, component: str, variable: str, value: str) -> str:
        if (component, variable) == PASSWORD_VARIABLE:
            return self.password_change(value)
        if (component, variable) in READ_ONLY_201:
            return "Rejected"
        key = VARIABLES_201.get((component, variable))
        if key is None:
            return self.unknown(component)
        status = self.configuration_set(key, value)
        return "Accepted" if status == "Accepted" else "Rejected"

    def unknown(self, component: str) -> str:
        """UnknownVariable for a component the station has, UnknownComponent otherwise."""
        known = {name for name, _ in [*VARIABLES_201, *READ_ONLY_201, PASSWORD_VARIABLE]}
        return "UnknownVariable" if component in known else "UnknownComponent"

    def report_data(self) -> list[dict]:
        rows = []
        for component, variable in [*VARIABLES_201, *READ_ONLY_201]:
            read_only = (component, variable) in READ_ONLY_201
            value = self.variable_get(component, variable) or ""
            rows.append(
                {
                    "component": {"name": component},
                    "variable": {"name": variable},
                    "variable_attribute": [
                        {
                            "type": "Actual",
                            "value": value,
                            "mutability": "ReadOnly" if read_only else "ReadWrite",
                        }
                    ],
                    "variable_characteristics": {
                        "data_type": "integer" if value.isdigit() else "string",
                        "supports_monitoring": False,
                    },
                }
            )
        return rows

    # ---- what the backend asks ----------------------------------------------------------

    @on(Action201.reset)
    def on_reset(self, type: str, evse_id: int | None = None, **kwargs) -> result201.Reset:
        if type == "OnIdle" and self.transaction is not None:
            return result201.Reset(status="Scheduled")
        return result201.Reset(status="Accepted")

    @after(Action201.reset)
    def after_reset(self, type: str, evse_id: int | None = None, **kwargs) -> None:
        if type == "OnIdle" and self.transaction is not None:
            self.scheduled_reset = type
            return
        self._after_reset(type)

    TRIGGERABLE = frozenset({"BootNotification", "Heartbeat", "StatusNotification", "MeterValues"})

    @on(Action201.trigger_message)
    def on_trigger_message(
        self, requested_message: str, evse: dict | None = None, **kwargs
    ) -> result201.TriggerMessage:
        if requested_message not in self.TRIGGERABLE:
            return result201.TriggerMessage(status="NotImplemented")
        if evse and evse.get("id") not in [0, *self.connector_ids()]:
            return result201.TriggerMessage(status="Rejected")
        return result201.TriggerMessage(status="Accepted")

    @after(Action201.trigger_message)
    def after_trigger_message(
        self, requested_message: str, evse: dict | None = None, **kwargs
    ) -> None:
        evse_id = (evse or {}).get("id")
        if requested_message == "BootNotification":
            if self.accepted.is_set():
                self.spawn(self.boot("Triggered"), "triggered boot")
            else:
                self.boot_now.set()
        elif requested_message == "Heartbeat":
            self.spawn(self.request(call201.Heartbeat()), "triggered heartbeat")
        elif requested_message == "StatusNotification":
            if evse_id:
                self.spawn(self.send_status(evse_id), "triggered status")
            else:
                self.spawn(self.report_all_statuses(), "triggered status")
        elif requested_message == "MeterValues":
            # Without an EVSE: every EVSE's (as a whole-station status trigger does).
            evse_ids = [evse_id] if evse_id else self.connector_ids()
            self.spawn(self._triggered_meter_values(evse_ids), "triggered meter values")

    async def _triggered_meter_values(self, evse_ids: list[int]) -> None:
        for evse_id in evse_ids:
            await self.request(
                call201.MeterValues(
                    evse_id=evse_id,
                    meter_value=sampled_energy_201(self.state.meter_wh, "Trigger"),
                )
            )

    @on(Action201.get_variables)
    def on_get_variables(self, get_variable_data: list[dict], **kwargs) -> result201.GetVariables:
        results = []
        for item in get_variable_data:
            component, variable = item["component"], item["variable"]
            value = self.variable_get(component["name"], variable["name"])
            if (component["name"], variable["name"]) == PASSWORD_VARIABLE:
                status = "Rejected"  # write-only
            elif value is None:
                status = self.unknown(component["name"])
            else:
                status = "Accepted"
            result = {
                "attribute_status": status,
                "component": component,
                "variable": variable,
            }
            if value is not None:
                result["attribute_value"] = value
            if item.get("attribute_type"):
                result["attribute_type"] = item["attribute_type"]
            results.append(result)
        return result201.GetVariables(get_variable_result=results)

    @on(Action201.set_variables)
    def on_set_variables(self, set_variable_data: list[dict], **kwargs) -> result201.SetVariables:
        results = []
        for item in set_variable_data:
            component, variable = item["component"], item["variable"]
            status = self.variable_set(
                component["name"], variable["name"], str(item["attribute_value"])
            )
            results.append(
                {"attribute_status": status, "component": component, "variable": variable}
            )
        return result201.SetVariables(set_variable_result=results)

    @on(Action201.get_base_report)
    def on_get_base_report(
        self, request_id: int, report_base: str, **kwargs
    ) -> result201.GetBaseReport:
        return result201.GetBaseReport(status="Accepted")

    @after(Action201.get_base_report)
    def after_get_base_report(self, request_id: int, report_base: str, **kwargs) -> None:
        self.spawn(self.send_report(request_id), "report")

    async def send_report(self, request_id: int) -> None:
        """The report in `options.parts_per_report` NotifyReports, one after the other."""
        rows = self.report_data()
        count = min(self.options.parts_per_report, len(rows))
        size = -(-len(rows) // count)
        generated_at = utc_now_iso()
        for seq_no in range(count):
            await self.request(
                call201.NotifyReport(
                    request_id=request_id,
                    generated_at=generated_at,
                    seq_no=seq_no,
                    tbc=seq_no < count - 1,
                    report_data=rows[seq_no * size : (seq_no + 1) * size],
                )
            )
        self.say(f"  report {request_id} sent in {count} part(s)")

    @on(Action201.change_availability)
    def on_change_availability(
        self, operational_status: str, evse: dict | None = None, **kwargs
    ) -> result201.ChangeAvailability:
        evse_id = (evse or {}).get("id", 0)
        if evse_id not in [0, *self.connector_ids()]:
            return result201.ChangeAvailability(status="Rejected")
        tx = self.transaction
        if operational_status == "Inoperative" and tx and evse_id in (0, tx.connector_id):
            self.state.unavailable.add(evse_id)
            return result201.ChangeAvailability(status="Scheduled")
        return result201.ChangeAvailability(status="Accepted")

    @after(Action201.change_availability)
    def after_change_availability(
        self, operational_status: str, evse: dict | None = None, **kwargs
    ) -> None:
        evse_id = (evse or {}).get("id", 0)
        if evse_id not in [0, *self.connector_ids()]:
            return
        if operational_status == "Inoperative":
            self.state.unavailable.add(evse_id)
        else:
            self.state.unavailable.discard(evse_id)
        if self.accepted.is_set():
            targets = self.connector_ids() if evse_id == 0 else [evse_id]
            self.spawn(self._send_statuses(targets), "availability status")

    async def _send_statuses(self, evse_ids: list[int]) -> None:
        for evse_id in evse_ids:
            await self.send_status(evse_id)

    @on(Action201.send_local_list)
    def on_send_local_list(self, version_number: int, update_type: str, **kwargs):
        entries = [
            (item["id_token"]["id_token"], (item.get("id_token_info") or {}).get("status"))
            for item in kwargs.get("local_authorization_list") or []
        ]
        status = self.local_list_apply(
            version=version_number, update_type=update_type, entries=entries
        )
        return self._call_result.SendLocalList(status=status)

    @on(Action201.get_local_list_version)
    def on_get_local_list_version(self, **kwargs):
        return self._call_result.GetLocalListVersion(version_number=self.state.local_list_version)

    @on(Action201.unlock_connector)
    def on_unlock_connector(
        self, evse_id: int, connector_id: int, **kwargs
    ) -> result201.UnlockConnector:
        if evse_id not in self.connector_ids() or connector_id != 1:
            return result201.UnlockConnector(status="UnknownConnector")
        tx = self.transaction
        if tx is not None and tx.connector_id == evse_id:
            return result201.UnlockConnector(status="OngoingAuthorizedTransaction")
        return result201.UnlockConnector(status="Unlocked")

    @on(Action201.request_start_transaction)
    def on_request_start_transaction(
        self, id_token: dict, remote_start_id: int, evse_id: int | None = None, **kwargs
    ) -> result201.RequestStartTransaction:
        evse_id = evse_id or 1
        if not self.accepted.is_set() or not self.connector_free(evse_id):
            return result201.RequestStartTransaction(status="Rejected")
        return result201.RequestStartTransaction(status="Accepted")

    @after(Action201.request_start_transaction)
    def after_request_start_transaction(
        self, id_token: dict, remote_start_id: int, evse_id: int | None = None, **kwargs
    ) -> None:
        evse_id = evse_id or 1
        if self.accepted.is_set() and self.connector_free(evse_id):
            self.begin_transaction(
                connector_id=evse_id,
                id_tag=id_token["id_token"],
                remote_start_id=remote_start_id,
            )

    @on(Action201.request_stop_transaction)
    def on_request_stop_transaction(
        self, transaction_id: str, **kwargs
    ) -> result201.RequestStopTransaction:
        tx = self.transaction
        if tx is None or tx.transaction_id != transaction_id:
            return result201.RequestStopTransaction(status="Rejected")
        tx.stop_reason = "Remote"
        tx.stop_requested.set()
        return result201.RequestStopTransaction(status="Accepted")

    @on(Action201.clear_cache)
    def on_clear_cache(self, **kwargs) -> result201.ClearCache:
        return result201.ClearCache(status="Accepted")

    @on(Action201.data_transfer)
    def on_data_transfer(self, vendor_id: str, **kwargs) -> result201.DataTransfer:
        return result201.DataTransfer(status="UnknownVendorId")


class Simulator21(Simulator201):
    """The same station speaking OCPP 2.1: its 2.0.1 messages are valid 2.1 (2.1 only adds
    optional fields); the library checks them against the 2.1 schemas and reads the
    answers as 2.1 results."""

    version = "2.1"
    _ocpp_version = "2.1"
    _call = call21
    _call_result = result21
