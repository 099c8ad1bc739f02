"""A charger simulator for people without hardware (and for the end-to-end tests).

It speaks OCPP-J 1.6 (`Simulator16`) or 2.0.1 (`Simulator201`) with the `ocpp` library's
ChargePoint classes over `websockets`, like a real charger would:

- connects to `<url>/<CBID>` offering the version's subprotocol, with HTTP Basic auth
  (username = CBID) when it has a password;
- boots, and boots again after the interval while Pending or Rejected, or at once when the
  backend sends TriggerMessage(BootNotification);
- once Accepted: reports every connector's status, sends heartbeats at the interval the
  backend gave, and optionally runs a transaction with rising meter values;
- answers the backend's calls (Reset, TriggerMessage, configuration, availability, unlock,
  remote start/stop, ClearCache, DataTransfer; 2.0.1: GetVariables, SetVariables,
  GetBaseReport followed by NotifyReport).

`run_simulator()` runs the whole life (reconnecting after a Reset); `open_simulator()` gives
a connected simulator to drive step by step. `manage.py simulate_charger` wraps the former.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import websockets
from ocpp.routing import after, on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201
from ocpp.v201.enums import Action as Action201

logger = logging.getLogger(__name__)

SUBPROTOCOLS = {"1.6": "ocpp1.6", "2.0.1": "ocpp2.0.1"}
# The backend closes a connection with this code when a newer one of the same CBID took over.
CLOSE_REPLACED = 4000
# Charging power the simulated car draws, in watts.
CHARGING_POWER_W = 11_000
# Retry delay when the backend answers a boot with interval 0.
DEFAULT_RETRY_INTERVAL = 10
DEFAULT_HEARTBEAT_INTERVAL = 300

Output = Callable[[str], None]


def utc_now_iso() -> str:
    """Now as OCPP wants it: UTC, milliseconds, `Z`."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def print_line(line: str) -> None:
    print(line, flush=True)


class HandshakeRefused(Exception):
    """The backend refused the websocket handshake (HTTP 401/403/404…)."""


class SimulatorFailed(Exception):
    """The charger's own flow failed (e.g. the backend answered its boot with a CALLERROR)."""


@dataclass
class SimulatorOptions:
    """How the simulated charger behaves; the command line's options."""

    cbid: str
    url: str = "ws://127.0.0.1:8000/ocpp"
    version: str = "1.6"
    password: str | None = None
    connectors: int = 2
    # Heartbeat interval in seconds; None: the one the backend gave at boot.
    heartbeat: int | None = None
    # Run a transaction on connector 1 once Accepted.
    transaction: bool = False
    id_tag: str = "SIMULATOR"
    meter_interval: float = 5.0
    # Seconds to run before disconnecting; None: until stopped (Ctrl-C).
    duration: float | None = None
    vendor: str = "Virta Simulator"
    model: str = "SIM-22"
    serial_number: str = "SIM-0001"
    firmware_version: str = "1.0.0"
    # Seconds to wait before reconnecting after the connection dropped (not after a Reset).
    reconnect_delay: float = 5.0
    response_timeout: float = 30.0

    def __post_init__(self) -> None:
        if self.version not in SUBPROTOCOLS:
            raise ValueError(f"Unsupported OCPP version {self.version!r}: 1.6 or 2.0.1")
        if self.connectors < 1:
            raise ValueError("A charger has at least one connector.")

    @property
    def station_url(self) -> str:
        # Chargers percent-encode their identity in the URL's last segment.
        return f"{self.url.rstrip('/')}/{quote(self.cbid, safe='')}"

    @property
    def headers(self) -> dict[str, str]:
        if not self.password:
            return {}
        token = base64.b64encode(f"{self.cbid}:{self.password}".encode()).decode("ascii")
        return {"Authorization": f"Basic {token}"}


@dataclass
class TransactionState:
    """The transaction running on a connector (one at a time in this simulator)."""

    connector_id: int
    id_tag: str
    meter_start: int
    # 1.6: the integer the backend assigned; 2.0.1: the string the charger chose.
    transaction_id: int | str | None = None
    seq_no: int = 0
    remote_start_id: int | None = None
    stop_reason: str = "Local"
    stop_requested: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task | None = None


@dataclass
class StationState:
    """What survives a reconnect or a Reset: the meter, the configuration, availability."""

    meter_wh: int = 1000
    configuration: dict[str, str] = field(default_factory=dict)
    unavailable: set[int] = field(default_factory=set)


class SimulatorBase:
    """Behaviour shared by both versions; mixed into the library's ChargePoint classes."""

    version: str
    connector_statuses: dict[int, str]

    def __init__(
        self,
        options: SimulatorOptions,
        connection: Any,
        *,
        state: StationState | None = None,
        output: Output = print_line,
    ) -> None:
        super().__init__(options.cbid, connection, response_timeout=options.response_timeout)
        self.options = options
        self.state = state or StationState()
        if not self.state.configuration:
            self.state.configuration = self.default_configuration()
        self.output = output
        self.registration_status: str | None = None
        self.heartbeat_interval: int = options.heartbeat or DEFAULT_HEARTBEAT_INTERVAL
        self.transaction: TransactionState | None = None
        self.boot_now = asyncio.Event()
        self.reset_requested = asyncio.Event()
        self.reset_type: str = ""
        # A reset accepted as Scheduled: it happens when the transaction ends.
        self.scheduled_reset: str | None = None
        self.accepted = asyncio.Event()
        self._tasks: set[asyncio.Task] = set()
        # unique id -> action, to name the results in the output.
        self._pending_out: dict[str, str] = {}
        self._pending_in: dict[str, str] = {}

    # ---- output ---------------------------------------------------------------------

    def say(self, text: str) -> None:
        now = datetime.now(UTC).strftime("%H:%M:%S")
        self.output(f"{now} {self.options.cbid} {text}")

    def _describe(self, raw: str, *, outgoing: bool) -> str:
        try:
            frame = json.loads(raw)
            kind, unique_id = frame[0], str(frame[1])
        except (ValueError, TypeError, IndexError, KeyError):
            return raw
        mine, theirs = (
            (self._pending_out, self._pending_in)
            if outgoing
            else (self._pending_in, self._pending_out)
        )
        if kind == 2:
            mine[unique_id] = frame[2]
            return f"{frame[2]} {json.dumps(frame[3])}"
        action = theirs.pop(unique_id, "?")
        if kind == 3:
            return f"{action} result {json.dumps(frame[2])}"
        return f"{action} ERROR {' '.join(str(part) for part in frame[2:])}"

    async def _send(self, message: str) -> None:
        self.say(f"→ {self._describe(message, outgoing=True)}")
        await self._connection.send(message)

    async def route_message(self, raw_msg: str) -> None:
        self.say(f"← {self._describe(raw_msg, outgoing=False)}")
        await super().route_message(raw_msg)

    # ---- tasks ----------------------------------------------------------------------

    def spawn(self, coro: Coroutine, name: str) -> asyncio.Task:
        """Run follow-up work beside the receive loop; keep a reference and log failures."""
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None and not isinstance(exc, websockets.ConnectionClosed):
            self.say(f"! {task.get_name()} failed: {exc!r}")

    async def cancel_tasks(self) -> None:
        tasks = [task for task in self._tasks if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def request(self, payload: Any) -> Any:
        """Send a CALL; a CALLERROR raises (the library's `suppress=False`)."""
        return await self.call(payload, suppress=False)

    # ---- life of a connection ---------------------------------------------------------

    async def boot_until_accepted(self, stop: asyncio.Event, reason: str | None = None) -> bool:
        """Boot; while Pending or Rejected, boot again after the interval (or when triggered).

        Returns False when stopped before being Accepted.
        """
        while not stop.is_set():
            self.boot_now.clear()
            status, interval = await self.boot(reason)
            if status == "Accepted":
                return True
            delay = interval or DEFAULT_RETRY_INTERVAL
            self.say(f"  {status}: booting again in {delay} s (or when the backend asks)")
            await wait_first(stop.wait(), self.boot_now.wait(), asyncio.sleep(delay))
            reason = None
        return False

    async def boot(self, reason: str | None = None) -> tuple[str, int]:
        """One BootNotification; remembers the status and the heartbeat interval."""
        result = await self.request(self.boot_payload(reason))
        self.registration_status = result.status
        if result.status == "Accepted":
            self.heartbeat_interval = (
                self.options.heartbeat or result.interval or DEFAULT_HEARTBEAT_INTERVAL
            )
            self.accepted.set()
        else:
            self.accepted.clear()
        return result.status, result.interval

    async def heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            await self.request(self.heartbeat_payload())

    async def report_all_statuses(self) -> None:
        for connector_id in self.connector_ids():
            await self.send_status(connector_id)

    async def run_session(self, stop: asyncio.Event, *, boot_reason: str | None = None) -> str:
        """One connection's life. Returns why it ended: "stopped", "reset" or "closed"."""
        reader = asyncio.create_task(self.start(), name="receive")
        life = asyncio.create_task(self._live(stop, boot_reason), name="life")
        try:
            await wait_first(
                stop.wait(),
                self.reset_requested.wait(),
                asyncio.shield(reader),
                asyncio.shield(life),
            )
            if reader.done():
                return "closed"
            if life.done() and not stop.is_set():
                # _live only returns when stopped: anything else is a failure.
                exc = life.exception()
                raise SimulatorFailed(f"{exc!r}" if exc else "stopped early") from exc
            if self.reset_requested.is_set():
                await self.end_transaction(reason=self.reset_stop_reason())
                return "reset"
            await self.end_transaction(reason="Local")
            return "stopped"
        finally:
            life.cancel()
            await self.cancel_tasks()
            reader.cancel()
            await asyncio.gather(life, reader, return_exceptions=True)

    async def _live(self, stop: asyncio.Event, boot_reason: str | None) -> None:
        if not await self.boot_until_accepted(stop, boot_reason):
            return
        await self.report_all_statuses()
        self.spawn(self.heartbeat_loop(), "heartbeats")
        if self.options.transaction and self.transaction is None:
            self.begin_transaction(connector_id=1, id_tag=self.options.id_tag)
        await asyncio.Event().wait()

    # ---- transactions -------------------------------------------------------------------

    def begin_transaction(
        self, *, connector_id: int, id_tag: str, remote_start_id: int | None = None
    ) -> TransactionState:
        """Start a transaction in the background: authorize, start, meter values until stopped."""
        tx = TransactionState(
            connector_id=connector_id,
            id_tag=id_tag,
            meter_start=self.state.meter_wh,
            remote_start_id=remote_start_id,
        )
        if self.version != "1.6":
            tx.transaction_id = str(uuid.uuid4())
        self.transaction = tx
        tx.task = self.spawn(self._transaction(tx), f"transaction on connector {connector_id}")
        return tx

    async def _transaction(self, tx: TransactionState) -> None:
        try:
            if tx.remote_start_id is None:
                status = await self.authorize(tx.id_tag)
                if status != "Accepted":
                    self.say(f"  id tag {tx.id_tag} is {status}: no transaction")
                    return
            await self.start_transaction(tx)
            await self._meter_until_stopped(tx)
            await self.stop_transaction(tx)
        finally:
            if self.transaction is tx:
                self.transaction = None
            if self.scheduled_reset is not None:
                self._after_reset(self.scheduled_reset)

    async def _meter_until_stopped(self, tx: TransactionState) -> None:
        while not tx.stop_requested.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(tx.stop_requested.wait(), self.meter_interval())
            if not tx.stop_requested.is_set():
                self.charge(self.meter_interval())
                await self.send_meter_values(tx)

    def meter_interval(self) -> float:
        return self.options.meter_interval

    def charge(self, seconds: float) -> None:
        """The car draws CHARGING_POWER_W for `seconds`: the meter rises (at least 1 Wh)."""
        self.state.meter_wh += max(1, round(CHARGING_POWER_W * seconds / 3600))

    async def end_transaction(self, *, reason: str, timeout: float = 10.0) -> None:
        """Stop the running transaction (if any) and wait until its stop was sent."""
        tx = self.transaction
        if tx is None or tx.task is None:
            return
        tx.stop_reason = reason
        tx.stop_requested.set()
        try:
            await asyncio.wait_for(asyncio.shield(tx.task), timeout)
        except Exception as exc:  # the connection may be gone: stopping must not fail
            self.say(f"! could not stop transaction {tx.transaction_id}: {exc!r}")

    def connector_free(self, connector_id: int) -> bool:
        return (
            self.transaction is None
            and connector_id in self.connector_ids()
            and connector_id not in self.state.unavailable
        )

    # ---- configuration (1.6 keys; 2.0.1 maps them onto components) --------------------

    def default_configuration(self) -> dict[str, str]:
        return {
            "HeartbeatInterval": str(self.options.heartbeat or DEFAULT_HEARTBEAT_INTERVAL),
            "MeterValueSampleInterval": str(int(self.options.meter_interval)),
            "NumberOfConnectors": str(self.options.connectors),
            "AuthorizeRemoteTxRequests": "false",
            "LocalPreAuthorize": "false",
            "ConnectionTimeOut": "60",
            "MeterValuesSampledData": "Energy.Active.Import.Register,Power.Active.Import",
            "SupportedFeatureProfiles": "Core,RemoteTrigger",
        }

    READ_ONLY_KEYS = frozenset({"NumberOfConnectors", "SupportedFeatureProfiles"})

    def configuration_set(self, key: str, value: str) -> str:
        """Accepted / Rejected / NotSupported, as ChangeConfiguration answers."""
        if key not in self.state.configuration:
            return "NotSupported"
        if key in self.READ_ONLY_KEYS:
            return "Rejected"
        if key in {"HeartbeatInterval", "MeterValueSampleInterval", "ConnectionTimeOut"}:
            if not value.isdigit():
                return "Rejected"
            if key == "HeartbeatInterval" and int(value) > 0:
                self.heartbeat_interval = int(value)
            if key == "MeterValueSampleInterval" and int(value) > 0:
                self.options.meter_interval = float(value)
        self.state.configuration[key] = value
        return "Accepted"

    # ---- version-specific pieces --------------------------------------------------------

    def connector_ids(self) -> list[int]:
        raise NotImplementedError

    def reset_stop_reason(self) -> str:
        raise NotImplementedError

    def boot_payload(self, reason: str | None) -> Any:
        raise NotImplementedError

    def heartbeat_payload(self) -> Any:
        raise NotImplementedError

    async def send_status(self, connector_id: int) -> None:
        raise NotImplementedError

    async def authorize(self, id_tag: str) -> str:
        raise NotImplementedError

    async def start_transaction(self, tx: TransactionState) -> None:
        raise NotImplementedError

    async def send_meter_values(self, tx: TransactionState) -> None:
        raise NotImplementedError

    async def stop_transaction(self, tx: TransactionState) -> None:
        raise NotImplementedError

    def _after_reset(self, reset_type: str) -> None:
        self.reset_type = reset_type
        self.reset_requested.set()


async def wait_first(*aws: Any) -> None:
    """Wait until the first of these awaitables finishes; cancel the rest."""
    tasks = [asyncio.ensure_future(aw) for aw in aws]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def sampled_energy_16(wh: int, context: str) -> list[dict]:
    return [
        {
            "timestamp": utc_now_iso(),
            "sampled_value": [
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

    async def start_transaction(self, tx: TransactionState) -> None:
        await self.send_status(tx.connector_id, "Preparing")
        result = await self.request(
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
        await self.request(
            call16.MeterValues(
                connector_id=tx.connector_id,
                transaction_id=tx.transaction_id,
                meter_value=sampled_energy_16(self.state.meter_wh, "Sample.Periodic"),
            )
        )

    async def stop_transaction(self, tx: TransactionState) -> None:
        await self.request(
            call16.StopTransaction(
                meter_stop=self.state.meter_wh,
                timestamp=utc_now_iso(),
                transaction_id=tx.transaction_id,
                reason=tx.stop_reason,
                id_tag=tx.id_tag,
                transaction_data=sampled_energy_16(self.state.meter_wh, "Transaction.End"),
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
            self.spawn(self._triggered_meter_values(connector_id or 1), "triggered meter values")
        elif requested_message == "DiagnosticsStatusNotification":
            payload = call16.DiagnosticsStatusNotification(status="Idle")
            self.spawn(self.request(payload), "triggered diagnostics status")
        else:
            payload = call16.FirmwareStatusNotification(status="Idle")
            self.spawn(self.request(payload), "triggered firmware status")

    async def _triggered_meter_values(self, connector_id: int) -> None:
        tx = self.transaction
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

    @on(Action16.clear_cache)
    def on_clear_cache(self, **kwargs) -> result16.ClearCache:
        return result16.ClearCache(status="Accepted")

    @on(Action16.data_transfer)
    def on_data_transfer(self, vendor_id: str, **kwargs) -> result16.DataTransfer:
        return result16.DataTransfer(status="UnknownVendorId")


def sampled_energy_201(wh: int, context: str) -> list[dict]:
    return [
        {
            "timestamp": utc_now_iso(),
            "sampled_value": [
                {
                    "value": wh,
                    "context": context,
                    "measurand": "Energy.Active.Import.Register",
                    "location": "Outlet",
                    "unit_of_measure": {"unit": "Wh"},
                },
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


class Simulator201(SimulatorBase, ChargePoint201):
    """An OCPP 2.0.1 charging station: EVSEs 1..N with one connector each."""

    version = "2.0.1"

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
            meter_value=(
                sampled_energy_201(self.state.meter_wh, meter_context) if meter_context else None
            ),
        )
        tx.seq_no += 1
        return await self.request(payload)

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
        status = (result.id_token_info or {}).get("status", "Accepted")
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
        if (component, variable) in READ_ONLY_201:
            return "Rejected"
        key = VARIABLES_201.get((component, variable))
        if key is None:
            return self.unknown(component)
        status = self.configuration_set(key, value)
        return "Accepted" if status == "Accepted" else "Rejected"

    def unknown(self, component: str) -> str:
        """UnknownVariable for a component the station has, UnknownComponent otherwise."""
        known = {name for name, _ in VARIABLES_201} | {name for name, _ in READ_ONLY_201}
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
            payload = call201.MeterValues(
                evse_id=evse_id or 1,
                meter_value=sampled_energy_201(self.state.meter_wh, "Trigger"),
            )
            self.spawn(self.request(payload), "triggered meter values")

    @on(Action201.get_variables)
    def on_get_variables(self, get_variable_data: list[dict], **kwargs) -> result201.GetVariables:
        results = []
        for item in get_variable_data:
            component, variable = item["component"], item["variable"]
            value = self.variable_get(component["name"], variable["name"])
            result = {
                "attribute_status": (
                    "Accepted" if value is not None else self.unknown(component["name"])
                ),
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
        payload = call201.NotifyReport(
            request_id=request_id,
            generated_at=utc_now_iso(),
            seq_no=0,
            tbc=False,
            report_data=self.report_data(),
        )
        self.spawn(self.request(payload), "report")

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


SIMULATORS: dict[str, type[SimulatorBase]] = {"1.6": Simulator16, "2.0.1": Simulator201}


async def connect(options: SimulatorOptions) -> Any:
    """Open the websocket as a charger does; HandshakeRefused when the backend says no."""
    try:
        connection = await websockets.connect(
            options.station_url,
            subprotocols=[SUBPROTOCOLS[options.version]],
            additional_headers=options.headers,
            open_timeout=10,
        )
    except websockets.InvalidStatus as exc:
        raise HandshakeRefused(
            f"{options.station_url} refused the connection (HTTP {exc.response.status_code})"
        ) from exc
    if connection.subprotocol != SUBPROTOCOLS[options.version]:
        await connection.close()
        raise HandshakeRefused(f"the backend did not agree to {SUBPROTOCOLS[options.version]}")
    return connection


@contextlib.asynccontextmanager
async def open_simulator(
    options: SimulatorOptions,
    *,
    state: StationState | None = None,
    output: Output = print_line,
) -> AsyncIterator[SimulatorBase]:
    """A connected simulator whose receive loop runs; drive it step by step.

    async with open_simulator(SimulatorOptions(cbid="CP-1", url=...)) as charger:
        status, interval = await charger.boot()
    """
    connection = await connect(options)
    simulator = SIMULATORS[options.version](options, connection, state=state, output=output)
    reader = asyncio.create_task(simulator.start(), name="receive")
    try:
        yield simulator
    finally:
        await simulator.cancel_tasks()
        await connection.close()
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)


async def run_simulator(
    options: SimulatorOptions,
    *,
    stop: asyncio.Event | None = None,
    output: Output = print_line,
) -> SimulatorBase:
    """Run a simulated charger until `stop` is set or `options.duration` has passed.

    Reconnects after a Reset (at once) and after a lost connection (after
    `options.reconnect_delay`); gives up when another connection of the same CBID
    replaced it. Raises HandshakeRefused when the first handshake is refused.
    Returns the last simulator (its `registration_status` tells how the boot went).
    """
    stop = stop or asyncio.Event()
    timer = None
    if options.duration is not None:
        timer = asyncio.get_running_loop().call_later(options.duration, stop.set)
    state = StationState()
    boot_reason: str | None = None
    simulator: SimulatorBase | None = None
    first = True
    try:
        while not stop.is_set():
            try:
                connection = await connect(options)
            except (OSError, TimeoutError, websockets.InvalidHandshake) as exc:
                if first:
                    raise
                output(f"could not reconnect ({exc}); trying again in {options.reconnect_delay} s")
                await wait_first(stop.wait(), asyncio.sleep(options.reconnect_delay))
                continue
            first = False
            simulator = SIMULATORS[options.version](options, connection, state=state, output=output)
            simulator.say(f"connected to {options.station_url} (OCPP {options.version})")
            try:
                ended = await simulator.run_session(stop, boot_reason=boot_reason)
            finally:
                await connection.close()
            code = connection.close_code
            if ended == "reset":
                simulator.say(f"resetting ({simulator.reset_type}): reconnecting")
                boot_reason = "RemoteReset"
                await asyncio.sleep(1)
                continue
            if ended == "stopped":
                simulator.say("disconnected")
                break
            if code == CLOSE_REPLACED:
                simulator.say("the backend closed this connection: another one took over")
                break
            simulator.say(
                f"connection lost (code {code}); reconnecting in {options.reconnect_delay} s"
            )
            boot_reason = None
            await wait_first(stop.wait(), asyncio.sleep(options.reconnect_delay))
    finally:
        if timer is not None:
            timer.cancel()
    return simulator
