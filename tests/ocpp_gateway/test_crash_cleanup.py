"""Whatever ends a consumer, the session cleanup runs, and the socket closes with a code
autobahn sends (issue 11, point 1). Through real daphne: tests/e2e/test_crashed_consumers.py."""

from __future__ import annotations

import asyncio
import json

import pytest
from channels.db import database_sync_to_async

from ocpp_gateway import liveness
from ocpp_gateway.handlers import charge_point_class
from ocpp_gateway.protocol import MAX_NESTING
from ocpp_spec import close_codes
from ocpp_spec.close_codes import CLOSE_INTERNAL_ERROR, close_code_allowed
from stations.models import Command, Station
from tests.factories import make_cpo, make_station
from tests.ocpp_gateway.conftest import open_charger

pytestmark = [pytest.mark.django_db(transaction=True)]


def nested(levels: int) -> dict:
    data: dict = {"vendorId": "deep"}
    for _ in range(levels):
        data = {"customData": data}
    return data


def test_every_close_code_we_send_is_one_autobahn_sends():
    codes = {name: value for name, value in vars(close_codes).items() if name.startswith("CLOSE_")}
    assert codes and all(close_code_allowed(code) for code in codes.values()), codes
    assert not close_code_allowed(1008) and not close_code_allowed(1009)
    assert not close_code_allowed(1011)


@pytest.mark.parametrize(
    ("version", "subprotocol", "code"),
    [("1.6", "ocpp1.6", "FormationViolation"), ("2.0.1", "ocpp2.0.1", "FormatViolation")],
)
async def test_pathological_nesting_is_a_callerror_and_the_connection_stays(
    version, subprotocol, code
):
    # An unclaimed charger (pool): the boot is the one request it may send.
    charger = open_charger(f"CP-DEEP-{version}", subprotocols=[subprotocol])
    assert await charger.connect()
    boot = (
        {"chargePointVendor": "A", "chargePointModel": "B"}
        if version == "1.6"
        else {"reason": "PowerUp", "chargingStation": {"model": "B", "vendorName": "A"}}
    )
    deep = boot | {"customData": nested(400)}
    reply = await charger.call("BootNotification", deep, unique_id="deep")
    assert reply[:3] == [4, "deep", code], reply
    assert "nested deeper" in reply[3]
    # Deeper than the JSON parser itself goes: refused the same way, the id still read.
    await charger.send_raw('[2,"deeper","Heartbeat",' + "[" * 100_000 + "]" * 100_000 + "]")
    reply = await charger.receive()
    assert reply[:3] == [4, "deeper", code], reply
    # Within the bound: answered as usual, on the same connection.
    fine = boot | {"customData": {"vendorId": "x", "a": nested(MAX_NESTING - 8)}}
    if version == "1.6":
        fine = boot
    assert (await charger.call("BootNotification", fine))[0] == 3
    await charger.close()


async def test_a_crashing_consumer_still_runs_the_session_cleanup(monkeypatch):
    cls = charge_point_class("1.6")
    original = cls.route_message

    async def route_message(self, raw, **kwargs):
        if "crash-me" in raw:
            raise RuntimeError("simulated crash")
        return await original(self, raw, **kwargs)

    monkeypatch.setattr(cls, "route_message", route_message)

    @database_sync_to_async
    def setup() -> Station:
        return make_station("CP-CRASH", cpo=make_cpo("Crash CPO"), registration_status="Accepted")

    station = await setup()
    charger = open_charger("CP-CRASH")
    assert await charger.connect()
    assert (await charger.call("Heartbeat", {}))[0] == 3
    assert await Station.objects.filter(pk=station.pk, connected=True).aexists()
    # A command whose "go" has not reached the consumer yet.
    queued = await Command.objects.acreate(station=station, action="Reset", payload={})
    assert liveness.live_stations() == {
        station.pk: (await Station.objects.aget(pk=station.pk)).channel_name
    }

    await charger.send_raw(json.dumps([2, "x", "DataTransfer", {"vendorId": "crash-me"}]))
    output = await charger.ws.receive_output(timeout=5)
    assert output == {"type": "websocket.close", "code": CLOSE_INTERNAL_ERROR}
    # The consumer ends by itself (no websocket.disconnect needed) once cleaned up.
    await charger.ws.wait(timeout=5)

    refreshed = await Station.objects.aget(pk=station.pk)
    assert not refreshed.connected and refreshed.channel_name == ""
    await queued.arefresh_from_db()
    assert queued.status == Command.Status.OFFLINE
    assert "disconnected" in queued.error
    assert liveness.live_stations() == {}


async def test_a_failure_right_after_the_session_opened_leaves_no_ghost(monkeypatch):
    def broken(version):
        raise RuntimeError("simulated failure building the charge point")

    monkeypatch.setattr("ocpp_gateway.consumers.charge_point_class", broken)

    @database_sync_to_async
    def setup() -> Station:
        return make_station("CP-HALF-OPEN", cpo=make_cpo("Half CPO"))

    station = await setup()
    charger = open_charger("CP-HALF-OPEN")
    with pytest.raises(RuntimeError):
        await charger.connect()
    for _ in range(100):
        if not await Station.objects.filter(pk=station.pk, connected=True).aexists():
            break
        await asyncio.sleep(0.05)
    refreshed = await Station.objects.aget(pk=station.pk)
    assert not refreshed.connected and refreshed.channel_name == ""
