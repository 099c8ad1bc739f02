"""The bare central system the benchmark compares against.

One process, the `ocpp` library and `websockets`, no database, nothing persisted: the
kind of CSMS a developer writes in an afternoon from the library's examples. It answers
BootNotification (Accepted), Heartbeat, StatusNotification, MeterValues, Authorize,
Start/StopTransaction (1.6) and BootNotification, Heartbeat, StatusNotification,
MeterValues, Authorize, TransactionEvent (2.0.1).

    .venv/bin/python bench/baseline.py --port 9000

A websocket to `/__fanout__` is the benchmark's control line for the command fan-out:
the baseline sends TriggerMessage(StatusNotification) to every connected charger and
answers, on that socket, one JSON object: how many were triggered, accepted and how
long until every triggered StatusNotification arrived.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import resource
import signal
import time
from datetime import UTC, datetime

from ocpp.routing import on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16
from ocpp.v16.enums import AuthorizationStatus, RegistrationStatus
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201
from ocpp.v201.enums import Action as Action201
from websockets.asyncio.server import ServerConnection, serve

logging.basicConfig(level=logging.WARNING)
transaction_ids = itertools.count(1)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Fanout:
    """Counts the StatusNotifications that answer a fan-out of TriggerMessage."""

    def __init__(self) -> None:
        self.expected: set[str] = set()
        self.done = asyncio.Event()

    def status_arrived(self, cbid: str) -> None:
        self.expected.discard(cbid)
        if not self.expected:
            self.done.set()


fanout = Fanout()


class V16(ChargePoint16):
    @on(Action16.boot_notification)
    async def on_boot(self, charge_point_vendor: str, charge_point_model: str, **kwargs):
        return result16.BootNotification(
            current_time=now(), interval=60, status=RegistrationStatus.accepted
        )

    @on(Action16.heartbeat)
    async def on_heartbeat(self):
        return result16.Heartbeat(current_time=now())

    @on(Action16.status_notification)
    async def on_status(self, connector_id: int, error_code: str, status: str, **kwargs):
        fanout.status_arrived(self.id)
        return result16.StatusNotification()

    @on(Action16.meter_values)
    async def on_meter_values(self, connector_id: int, meter_value: list, **kwargs):
        return result16.MeterValues()

    @on(Action16.authorize)
    async def on_authorize(self, id_tag: str):
        return result16.Authorize(id_tag_info={"status": AuthorizationStatus.accepted})

    @on(Action16.start_transaction)
    async def on_start(self, connector_id, id_tag, meter_start, timestamp, **kwargs):
        return result16.StartTransaction(
            transaction_id=next(transaction_ids),
            id_tag_info={"status": AuthorizationStatus.accepted},
        )

    @on(Action16.stop_transaction)
    async def on_stop(self, meter_stop, timestamp, transaction_id, **kwargs):
        return result16.StopTransaction()

    async def trigger_status(self) -> str:
        answer = await self.call(call16.TriggerMessage(requested_message="StatusNotification"))
        return str(answer.status)


class V201(ChargePoint201):
    @on(Action201.boot_notification)
    async def on_boot(self, charging_station: dict, reason: str, **kwargs):
        return result201.BootNotification(current_time=now(), interval=60, status="Accepted")

    @on(Action201.heartbeat)
    async def on_heartbeat(self):
        return result201.Heartbeat(current_time=now())

    @on(Action201.status_notification)
    async def on_status(self, timestamp, connector_status, evse_id, connector_id, **kwargs):
        fanout.status_arrived(self.id)
        return result201.StatusNotification()

    @on(Action201.meter_values)
    async def on_meter_values(self, evse_id: int, meter_value: list, **kwargs):
        return result201.MeterValues()

    @on(Action201.authorize)
    async def on_authorize(self, id_token: dict, **kwargs):
        return result201.Authorize(id_token_info={"status": "Accepted"})

    @on(Action201.transaction_event)
    async def on_transaction_event(self, event_type, timestamp, trigger_reason, seq_no, **kwargs):
        if "id_token" in kwargs:
            return result201.TransactionEvent(id_token_info={"status": "Accepted"})
        return result201.TransactionEvent()

    async def trigger_status(self) -> str:
        answer = await self.call(call201.TriggerMessage(requested_message="StatusNotification"))
        return str(answer.status)


connected: dict[str, V16 | V201] = {}


async def run_fanout(websocket: ServerConnection) -> None:
    """Trigger a StatusNotification from every connected charger; report the time taken."""
    chargers = dict(connected)
    fanout.expected = set(chargers)
    fanout.done.clear()
    started = time.perf_counter()
    answers = await asyncio.gather(
        *(cp.trigger_status() for cp in chargers.values()), return_exceptions=True
    )
    accepted = sum(1 for a in answers if a == "Accepted")
    all_answered = time.perf_counter() - started
    try:
        await asyncio.wait_for(fanout.done.wait(), 30)
    except TimeoutError:
        pass
    report = {
        "triggered": len(chargers),
        "accepted": accepted,
        "failed": [repr(a)[:80] for a in answers if isinstance(a, Exception)][:5],
        "all_answered_s": round(all_answered, 3),
        "statuses_missing": len(fanout.expected),
        "all_recorded_s": round(time.perf_counter() - started, 3),
    }
    await websocket.send(json.dumps(report))


async def handle(websocket: ServerConnection) -> None:
    path = websocket.request.path
    if path == "/__fanout__":
        await run_fanout(websocket)
        return
    cbid = path.rstrip("/").rsplit("/", 1)[-1]
    cls = V16 if websocket.subprotocol == "ocpp1.6" else V201
    charge_point = cls(cbid, websocket)
    connected[cbid] = charge_point
    try:
        await charge_point.start()
    except Exception:  # the charger went away: nothing to clean up but the map
        pass
    finally:
        if connected.get(cbid) is charge_point:
            del connected[cbid]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    async with serve(
        handle,
        args.host,
        args.port,
        subprotocols=["ocpp1.6", "ocpp2.0.1"],
        # Pings as the product's daphne sends them.
        ping_interval=30,
        ping_timeout=30,
        compression=None,
        backlog=4096,
    ):
        print(f"baseline listening on {args.host}:{args.port}", flush=True)
        await stop


if __name__ == "__main__":
    asyncio.run(main())
