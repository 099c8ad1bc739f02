"""The command path with an OCPP 2.0.1 charger: same Commands, 2.0.1 CALLs."""

from __future__ import annotations

import asyncio
import json

import pytest
from channels.db import database_sync_to_async

from stations.models import Command, StationVariable
from stations.services.commands import command_request
from tests.factories import make_station
from tests.ocpp_gateway.conftest import open_charger

pytestmark = [pytest.mark.django_db(transaction=True)]

BOOT = {
    "reason": "PowerUp",
    "chargingStation": {"model": "Wall 22", "vendorName": "Acme"},
}


async def connected_201(cbid: str, cpo):
    station = await database_sync_to_async(make_station)(cbid, cpo=cpo, ocpp_version="2.0.1")
    charger = open_charger(cbid, subprotocols=["ocpp2.0.1"])
    assert await charger.connect()
    assert (await charger.call("BootNotification", BOOT))[2]["status"] == "Accepted"
    return station, charger


async def final(command: Command, timeout: float = 5) -> Command:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        command = await Command.objects.aget(pk=command.pk)
        if command.is_final or asyncio.get_running_loop().time() > deadline:
            return command
        await asyncio.sleep(0.02)


async def test_reset_goes_out_as_a_201_reset_and_is_accepted(cpo_a, alice):
    station, charger = await connected_201("CP-201-RESET", cpo_a)

    command = await database_sync_to_async(command_request)(
        station=station, kind="reset", params={"type": "soft"}, user=alice
    )
    call = await charger.receive()
    await charger.send_raw(json.dumps([3, call[1], {"status": "Accepted"}]))
    command = await final(command)
    await charger.close()

    assert call[2:] == ["Reset", {"type": "OnIdle"}]
    assert command.status == Command.Status.ACCEPTED


async def test_get_variables_answer_is_stored_as_station_variables(cpo_a, alice):
    station, charger = await connected_201("CP-201-VARS", cpo_a)

    command = await database_sync_to_async(command_request)(
        station=station,
        kind="get_configuration",
        params={"keys": ["OCPPCommCtrlr.HeartbeatInterval"]},
        user=alice,
    )
    call = await charger.receive()
    await charger.send_raw(
        json.dumps(
            [
                3,
                call[1],
                {
                    "getVariableResult": [
                        {
                            "attributeStatus": "Accepted",
                            "attributeValue": "300",
                            "component": {"name": "OCPPCommCtrlr"},
                            "variable": {"name": "HeartbeatInterval"},
                        }
                    ]
                },
            ]
        )
    )
    command = await final(command)
    await charger.close()

    assert call[2] == "GetVariables"
    assert command.status == Command.Status.ACCEPTED
    variable = await StationVariable.objects.aget(station=station)
    assert (variable.component, variable.variable, variable.value) == (
        "OCPPCommCtrlr",
        "HeartbeatInterval",
        "300",
    )
