"""A station that is not Accepted sends what the backend asked for, and nothing else.

Through the consumer and the command path, per version: the report parts answering a
GetBaseReport (2.x; 1.6: the GetConfiguration answer) are stored as for an Accepted
station, a whole-station TriggerMessage admits one message per connector / EVSE, and
anything unasked gets a SecurityError that says what is true.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from channels.db import database_sync_to_async

from stations.models import Command, Connector, OcppMessage, StationVariable
from stations.services.commands import command_request_system
from tests.factories import make_station
from tests.ocpp_gateway.conftest import open_charger

pytestmark = [pytest.mark.django_db(transaction=True)]

V2 = ["2.0.1", "2.1"]
VERSIONS = ["1.6", *V2]
BOOT_16 = {"chargePointVendor": "Acme", "chargePointModel": "Fast 22"}
BOOT_2X = {"reason": "PowerUp", "chargingStation": {"model": "Wall 22", "vendorName": "Acme"}}
NOT_ACCEPTED = "Station is not accepted yet: Pending"


async def connected(cbid: str, version: str, cpo=None):
    """A booted charger: Pending in the pool, Accepted with a CPO."""
    station = await database_sync_to_async(make_station)(cbid, cpo=cpo, ocpp_version=version)
    charger = open_charger(cbid, subprotocols=[f"ocpp{version}"])
    assert await charger.connect()
    boot = await charger.call("BootNotification", BOOT_16 if version == "1.6" else BOOT_2X)
    assert boot[2]["status"] == ("Pending" if cpo is None else "Accepted")
    return station, charger


async def final(command: Command, timeout: float = 5) -> Command:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        command = await Command.objects.aget(pk=command.pk)
        if command.is_final or asyncio.get_running_loop().time() > deadline:
            return command
        await asyncio.sleep(0.02)


async def send_command(station, kind: str, params: dict) -> Command:
    command = await database_sync_to_async(command_request_system)(
        station=station, kind=kind, params=params
    )
    assert command is not None
    return command


def report_part(request_id: int, seq_no: int, *, tbc: bool, name: str) -> dict:
    payload = {
        "requestId": request_id,
        "generatedAt": "2026-01-01T00:00:00Z",
        "seqNo": seq_no,
        "reportData": [
            {
                "component": {"name": "OCPPCommCtrlr"},
                "variable": {"name": name},
                "variableAttribute": [{"type": "Actual", "value": str(seq_no)}],
            }
        ],
    }
    return payload | ({"tbc": True} if tbc else {})


async def logged_after(station, first_id: int) -> list[tuple]:
    rows = OcppMessage.objects.filter(station=station, pk__gt=first_id).order_by("pk")
    return [(m.direction, m.message_type, m.action) async for m in rows]


async def last_log_id(station) -> int:
    last = await OcppMessage.objects.filter(station=station).order_by("-pk").afirst()
    return last.pk if last else 0


async def variables(station) -> list[tuple]:
    rows = StationVariable.objects.filter(station=station).order_by("component", "variable")
    return [(v.component, v.variable, v.value) async for v in rows]


# ---- 1. the report a Pending station was asked for -----------------------------------------


async def report_flow_2x(cbid: str, version: str, cpo=None):
    """GetBaseReport through the command path, answered with a three-part NotifyReport."""
    from ocpp_gateway.message_log import message_log

    station, charger = await connected(cbid, version, cpo)
    await message_log.flush()
    before = await last_log_id(station)
    command = await send_command(station, "get_configuration", {"keys": []})
    call = await charger.receive()
    assert call[2] == "GetBaseReport"
    request_id = call[3]["requestId"]
    await charger.send_raw(json.dumps([3, call[1], {"status": "Accepted"}]))
    replies = [
        await charger.call(
            "NotifyReport", report_part(request_id, seq_no, tbc=seq_no < 2, name=f"Var{seq_no}")
        )
        for seq_no in range(3)
    ]
    command = await final(command)
    await charger.close()
    return station, command, replies, await logged_after(station, before)


@pytest.mark.parametrize("version", V2)
async def test_a_pending_station_sends_every_part_of_the_report_it_was_asked_for(version):
    station, command, replies, _ = await report_flow_2x(f"CP-REP-{version}", version)

    assert [reply[0] for reply in replies] == [3, 3, 3]
    assert command.status == Command.Status.ACCEPTED
    assert await variables(station) == [
        ("OCPPCommCtrlr", "Var0", "0"),
        ("OCPPCommCtrlr", "Var1", "1"),
        ("OCPPCommCtrlr", "Var2", "2"),
    ]


@pytest.mark.parametrize("version", V2)
async def test_the_pending_report_is_logged_and_stored_as_for_an_accepted_station(version, cpo_a):
    pending, _, _, pending_log = await report_flow_2x(f"CP-REP-P-{version}", version)
    accepted, _, _, accepted_log = await report_flow_2x(f"CP-REP-A-{version}", version, cpo_a)

    assert pending_log == accepted_log
    assert pending_log == [
        ("out", 2, "GetBaseReport"),
        ("in", 3, "GetBaseReport"),
        *[("in", 2, "NotifyReport"), ("out", 3, "NotifyReport")] * 3,
    ]
    assert await variables(pending) == await variables(accepted)


@pytest.mark.parametrize("version", V2)
async def test_report_parts_beyond_the_last_or_of_another_request_are_refused(version):
    station, charger = await connected(f"CP-REP-X-{version}", version)
    await send_command(station, "get_base_report", {"report_base": "FullInventory"})
    call = await charger.receive()
    request_id = call[3]["requestId"]
    await charger.send_raw(json.dumps([3, call[1], {"status": "Accepted"}]))

    other = await charger.call(
        "NotifyReport", report_part(request_id + 1, 0, tbc=False, name="Other")
    )
    last = await charger.call("NotifyReport", report_part(request_id, 0, tbc=False, name="Only"))
    after = await charger.call("NotifyReport", report_part(request_id, 1, tbc=False, name="More"))
    await charger.close()

    assert other[2:4] == ["SecurityError", NOT_ACCEPTED]
    assert last[0] == 3
    assert after[2:4] == ["SecurityError", NOT_ACCEPTED]
    assert await variables(station) == [("OCPPCommCtrlr", "Only", "0")]


@pytest.mark.parametrize("version", V2)
async def test_a_report_the_charger_refused_admits_no_part(version):
    station, charger = await connected(f"CP-REP-R-{version}", version)
    await send_command(station, "get_base_report", {"report_base": "FullInventory"})
    call = await charger.receive()
    await charger.send_raw(json.dumps([3, call[1], {"status": "NotSupported"}]))

    reply = await charger.call(
        "NotifyReport", report_part(call[3]["requestId"], 0, tbc=False, name="X")
    )
    await charger.close()

    assert reply[2] == "SecurityError"


async def configuration_flow_16(cbid: str, cpo=None):
    """1.6 §4.2.1: GetConfiguration (no key) through the command path, answered."""
    from ocpp_gateway.message_log import message_log

    station, charger = await connected(cbid, "1.6", cpo)
    await message_log.flush()
    before = await last_log_id(station)
    command = await send_command(station, "get_configuration", {"keys": []})
    call = await charger.receive()
    assert call[2:] == ["GetConfiguration", {}]
    keys = [
        {"key": "HeartbeatInterval", "readonly": False, "value": "300"},
        {"key": "NumberOfConnectors", "readonly": True, "value": "2"},
    ]
    await charger.send_raw(json.dumps([3, call[1], {"configurationKey": keys}]))
    command = await final(command)
    await charger.close()
    return station, command, await logged_after(station, before)


async def test_a_pending_16_station_has_its_configuration_read_and_stored_as_if_accepted(cpo_a):
    pending, command, pending_log = await configuration_flow_16("CP-CFG-P")
    accepted, _, accepted_log = await configuration_flow_16("CP-CFG-A", cpo_a)

    assert command.status == Command.Status.ACCEPTED
    assert (
        pending_log
        == accepted_log
        == [("out", 2, "GetConfiguration"), ("in", 3, "GetConfiguration")]
    )
    assert await variables(pending) == await variables(accepted)
    assert ("", "NumberOfConnectors", "2") in await variables(pending)


@pytest.mark.parametrize("version", VERSIONS)
async def test_the_security_error_says_the_station_is_pending(version):
    _, charger = await connected(f"CP-SEC-{version}", version)

    reply = await charger.call("Heartbeat", {})
    await charger.close()

    assert reply[2:4] == ["SecurityError", NOT_ACCEPTED]


# ---- 2. a whole-station TriggerMessage ------------------------------------------------------


def status_16(connector_id: int) -> dict:
    return {"connectorId": connector_id, "errorCode": "NoError", "status": "Available"}


def status_2x(evse_id: int) -> dict:
    return {
        "timestamp": "2026-01-01T00:00:00Z",
        "connectorStatus": "Available",
        "evseId": evse_id,
        "connectorId": 1,
    }


async def triggered(station, charger, params: dict) -> None:
    await send_command(station, "trigger_message", params)
    call = await charger.receive()
    assert call[2] == "TriggerMessage"
    await charger.send_raw(json.dumps([3, call[1], {"status": "Accepted"}]))


async def connectors(station) -> list[tuple]:
    rows = Connector.objects.filter(station=station).order_by("evse_id", "connector_id")
    return [(c.evse_id, c.connector_id, c.status) async for c in rows]


async def test_a_whole_station_16_trigger_admits_the_station_and_each_connector_once():
    station, charger = await connected("CP-TRG-16", "1.6")
    await triggered(station, charger, {"message": "StatusNotification"})

    answers = [await charger.call("StatusNotification", status_16(c)) for c in (0, 1, 2)]
    again = await charger.call("StatusNotification", status_16(1))
    heartbeat = await charger.call("Heartbeat", {})
    await charger.close()

    assert [answer[0] for answer in answers] == [3, 3, 3]
    assert again[2:4] == ["SecurityError", NOT_ACCEPTED]
    assert heartbeat[2] == "SecurityError"
    assert await connectors(station) == [(None, 1, "Available"), (None, 2, "Available")]


@pytest.mark.parametrize("version", V2)
async def test_a_whole_station_2x_trigger_admits_each_evse_once(version):
    station, charger = await connected(f"CP-TRG-{version}", version)
    await triggered(station, charger, {"message": "StatusNotification"})

    answers = [await charger.call("StatusNotification", status_2x(e)) for e in (1, 2)]
    again = await charger.call("StatusNotification", status_2x(2))
    heartbeat = await charger.call("Heartbeat", {})
    await charger.close()

    assert [answer[0] for answer in answers] == [3, 3]
    assert again[2:4] == ["SecurityError", NOT_ACCEPTED]
    assert heartbeat[2] == "SecurityError"
    assert await connectors(station) == [(1, 1, "Available"), (2, 1, "Available")]


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_trigger_for_one_connector_admits_that_connector_only(version):
    station, charger = await connected(f"CP-TRG1-{version}", version)
    if version == "1.6":
        params, own, other = {"message": "StatusNotification", "connector_id": 2}, 2, 1
        message = status_16
    else:
        params, own, other = {"message": "StatusNotification", "evse_id": 2}, 2, 1
        message = status_2x
    await triggered(station, charger, params)

    wrong = await charger.call("StatusNotification", message(other))
    right = await charger.call("StatusNotification", message(own))
    await charger.close()

    assert wrong[2] == "SecurityError"
    assert right[0] == 3
