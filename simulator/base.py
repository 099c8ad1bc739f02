"""What both simulated versions share: options, state, the session loop, the calls."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import random
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import websockets

from ocpp_spec.passwords import PASSWORD_MAX, PASSWORD_MIN

logger = logging.getLogger(__name__)

SUBPROTOCOLS = {"1.6": "ocpp1.6", "2.0.1": "ocpp2.0.1", "2.1": "ocpp2.1"}
# The backend closes a connection with this code when a newer one of the same CBID took over.
CLOSE_REPLACED = 4000
# Charging power the simulated car draws, in watts.
CHARGING_POWER_W = 11_000
# Retry delay when the backend answers a boot with interval 0.
DEFAULT_RETRY_INTERVAL = 10
DEFAULT_HEARTBEAT_INTERVAL = 300
# How a 2.x transaction's events reach the backend: as they happen ("live"), or held
# back, as by a charger that was offline or retried, and sent when the transaction ends
# in their own order ("queued"), backwards ("reversed") or shuffled ("shuffled").
EVENT_ORDERS = ("live", "queued", "reversed", "shuffled")
# Parts of a 2.x NotifyReport while staying Pending (SimulatorOptions.report_parts).
PENDING_REPORT_PARTS = 3

Output = Callable[[str], None]


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
    # Reconnecting after the backend closed the connection (not after a Reset), as OCPP
    # 2.0.1 firmware backs off (OCPPCommCtrlr RetryBackOff*): wait reconnect_delay plus up
    # to reconnect_random_range seconds, doubling the wait at each failed attempt, at most
    # reconnect_doublings times.
    reconnect_delay: float = 5.0
    reconnect_random_range: float = 2.0
    reconnect_doublings: int = 5
    # Exit when the backend closes the connection, instead of reconnecting.
    exit_on_close: bool = False
    response_timeout: float = 30.0
    # 2.x: the order in which a transaction's events are sent (EVENT_ORDERS).
    event_order: str = "live"
    # Random seed of the "shuffled" order (None: a new order each time).
    seed: int | None = None
    # Send every transaction message twice, as a charger that lost the answer does
    # (2.x TransactionEvent; 1.6 StartTransaction, MeterValues and StopTransaction).
    resend: bool = False
    # Send the energy register also as signed meter values (simulated OCMF records).
    signed: bool = False
    # After a Pending boot, boot again only when the backend asks (TriggerMessage), not
    # after the interval: a station left in the pool that answers what it is asked
    # (configuration, reports, triggered messages).
    stay_pending: bool = False
    # 2.x: the parts a GetBaseReport is answered with (NotifyReport seqNo 0, 1, …);
    # None: one, or PENDING_REPORT_PARTS when staying Pending.
    report_parts: int | None = None

    def __post_init__(self) -> None:
        if self.version not in SUBPROTOCOLS:
            raise ValueError(f"Unsupported OCPP version {self.version!r}: 1.6, 2.0.1 or 2.1")
        if self.connectors < 1:
            raise ValueError("A charger has at least one connector.")
        if self.report_parts is not None and self.report_parts < 1:
            raise ValueError("A report has at least one part.")
        if self.event_order not in EVENT_ORDERS:
            raise ValueError(f"Unknown event order {self.event_order!r}: {', '.join(EVENT_ORDERS)}")
        if self.event_order != "live" and self.version == "1.6":
            # A 1.6 charger needs the start's answer (the backend names the transaction)
            # before anything else of it can be sent.
            raise ValueError("Only OCPP 2.x transaction events can be reordered.")

    @property
    def parts_per_report(self) -> int:
        if self.report_parts is not None:
            return self.report_parts
        return PENDING_REPORT_PARTS if self.stay_pending else 1

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


class Backoff:
    """The waits between reconnection attempts, as firmware spaces them out."""

    def __init__(self, options: SimulatorOptions, *, rng: random.Random | None = None) -> None:
        self.options = options
        self.attempt = 0
        self.rng = rng or random.Random()

    def next_delay(self) -> float:
        doublings = min(self.attempt, self.options.reconnect_doublings)
        self.attempt += 1
        jitter = self.rng.uniform(0, self.options.reconnect_random_range)
        return self.options.reconnect_delay * 2**doublings + jitter

    def reset(self) -> None:
        """The backend talked to us: the next outage starts from the shortest wait."""
        self.attempt = 0


@dataclass
class TransactionState:
    """The transaction running on a connector (one at a time in this simulator)."""

    connector_id: int
    id_tag: str
    meter_start: int
    # 1.6: the integer the backend assigned; 2.x: the string the charger chose.
    transaction_id: int | str | None = None
    seq_no: int = 0
    remote_start_id: int | None = None
    stop_reason: str = "Local"
    stop_requested: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task | None = None
    # 2.x events held back until the transaction ends (SimulatorOptions.event_order).
    held: list = field(default_factory=list)


@dataclass
class StationState:
    """What survives a reconnect or a Reset: the meter, the configuration, availability."""

    meter_wh: int = 1000
    configuration: dict[str, str] = field(default_factory=dict)
    unavailable: set[int] = field(default_factory=set)
    # The local authorization list (SendLocalList): its version, tag (lower case) → status.
    local_list_version: int = 0
    local_list: dict[str, str] = field(default_factory=dict)


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
        """Boot; while Pending or Rejected, boot again after the interval (or when triggered;
        only then with `stay_pending`, while Pending).

        Returns False when stopped before being Accepted.
        """
        while not stop.is_set():
            self.boot_now.clear()
            status, interval = await self.boot(reason)
            if status == "Accepted":
                return True
            if status == "Pending" and self.options.stay_pending:
                self.say("  Pending: staying so until the backend asks for a boot")
                await wait_first(stop.wait(), self.boot_now.wait())
            else:
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

    # ---- local authorization list -----------------------------------------------------

    def local_list_apply(
        self, *, version: int, update_type: str, entries: list[tuple[str, str | None]]
    ) -> str:
        """Store a SendLocalList like firmware: a full list replaces the list; a
        differential one must carry a newer version (else VersionMismatch) and adds,
        changes (a status) or removes (None) entries. Answers the status to send."""
        if update_type == "Differential" and version <= self.state.local_list_version:
            self.say(
                f"  local list v{version} (differential) refused: I hold "
                f"v{self.state.local_list_version}"
            )
            return "VersionMismatch"
        if update_type == "Full":
            self.state.local_list = {}
        for tag, status in entries:
            if status is None:
                self.state.local_list.pop(tag.lower(), None)
            else:
                self.state.local_list[tag.lower()] = status
        self.state.local_list_version = version
        self.say(
            f"  local list v{version} ({update_type.lower()}): {len(self.state.local_list)} tags"
        )
        return "Accepted"

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

    # ---- the Basic-auth password (security profile 1/2) ---------------------------------

    def password_change(self, password: str) -> str:
        """A new password from the backend (1.6 AuthorizationKey, 2.x BasicAuthPassword).

        Accepted: the next connection logs in with it; this one goes on as it is (the
        backend keeps the old password valid until it sees this answer). Rejected when it
        is not 16-40 characters.
        """
        if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
            self.say(f"  new password refused: {PASSWORD_MIN}-{PASSWORD_MAX} characters expected")
            return "Rejected"
        self.options.password = password
        self.say(
            "  new password accepted: the next connection logs in with it "
            f"(to restart this simulator later: --password {password})"
        )
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
