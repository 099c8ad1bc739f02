"""Commands reach a scripted charger through the channel layer and the consumer."""

from __future__ import annotations

import asyncio
import json

import pytest
from channels.db import database_sync_to_async

from ocpp_gateway.commands import run_command
from ocpp_gateway.message_log import message_log
from stations.models import Command, OcppMessage, StationVariable
from stations.services.commands import command_request
from stations.services.sessions import StationSession
from tests.factories import make_station
from tests.ocpp_gateway.conftest import open_charger

pytestmark = [pytest.mark.django_db(transaction=True)]


async def connected_charger(cbid: str, cpo):
    station = await database_sync_to_async(make_station)(cbid, cpo=cpo)
    charger = open_charger(cbid)
    assert await charger.connect()
    reply = await charger.boot()
    assert reply[2]["status"] == "Accepted"
    return station, charger


async def request(station, user, kind: str, **params) -> Command:
    return await database_sync_to_async(command_request)(
        station=station, kind=kind, params=params, user=user
    )


async def answer(charger, call: list, payload: dict) -> None:
    await charger.send_raw(json.dumps([3, call[1], payload]))


async def final(command: Command, timeout: float = 5) -> Command:
    """The Command once it is finished (the gateway writes it from a task)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        command = await Command.objects.aget(pk=command.pk)
        if command.is_final or asyncio.get_running_loop().time() > deadline:
            return command
        await asyncio.sleep(0.02)


async def test_reset_is_sent_and_accepted(cpo_a, alice):
    station, charger = await connected_charger("CP-RESET", cpo_a)

    command = await request(station, alice, "reset", type="soft")
    call = await charger.receive()
    await answer(charger, call, {"status": "Accepted"})
    command = await final(command)
    await charger.close()

    assert call[0] == 2
    assert call[2:] == ["Reset", {"type": "Soft"}]
    assert command.status == Command.Status.ACCEPTED
    assert command.response == {"status": "Accepted"}
    assert command.requested_by_id == alice.pk
    assert command.sent_at is not None and command.completed_at >= command.sent_at


async def test_charger_saying_no_makes_the_command_rejected(cpo_a, alice):
    station, charger = await connected_charger("CP-NO", cpo_a)

    command = await request(station, alice, "unlock_connector", connector_id=1)
    call = await charger.receive()
    await answer(charger, call, {"status": "UnlockFailed"})
    command = await final(command)
    await charger.close()

    assert call[2:] == ["UnlockConnector", {"connectorId": 1}]
    assert command.status == Command.Status.REJECTED
    assert command.response == {"status": "UnlockFailed"}


async def test_callerror_makes_the_command_an_error_with_its_code(cpo_a, alice):
    station, charger = await connected_charger("CP-ERR", cpo_a)

    command = await request(station, alice, "clear_cache")
    call = await charger.receive()
    await charger.send_raw(json.dumps([4, call[1], "NotSupported", "No cache here", {}]))
    command = await final(command)
    await charger.close()

    assert command.status == Command.Status.ERROR
    assert "NotSupported" in command.error
    assert "No cache here" in command.error
    assert command.response["errorCode"] == "NotSupported"


async def test_silent_charger_times_out(cpo_a, alice, settings):
    settings.OCPP_CALL_TIMEOUT = 0.3
    station, charger = await connected_charger("CP-MUTE", cpo_a)

    command = await request(station, alice, "reset", type="hard")
    call = await charger.receive()
    command = await final(command)
    await charger.close()

    assert call[2] == "Reset"
    assert command.status == Command.Status.TIMED_OUT
    assert command.completed_at is not None


async def test_disconnect_mid_call_is_recorded(cpo_a, alice):
    station, charger = await connected_charger("CP-GONE", cpo_a)

    command = await request(station, alice, "reset", type="hard")
    await charger.receive()
    await charger.close()
    command = await final(command)

    assert command.status == Command.Status.ERROR
    assert "connection closed" in command.error


async def test_second_command_waits_for_the_first_answer(cpo_a, alice):
    station, charger = await connected_charger("CP-ONE", cpo_a)

    first = await request(station, alice, "trigger_message", message="Heartbeat")
    second = await request(station, alice, "clear_cache")
    call_1 = await charger.receive()
    assert await charger.ws.receive_nothing(timeout=0.3)
    second_before = await Command.objects.aget(pk=second.pk)
    await answer(charger, call_1, {"status": "Accepted"})
    call_2 = await charger.receive()
    await answer(charger, call_2, {"status": "Accepted"})
    first, second = await final(first), await final(second)
    await charger.close()

    assert call_1[2] == "TriggerMessage"
    assert second_before.status == Command.Status.QUEUED
    assert call_2[2] == "ClearCache"
    assert (first.status, second.status) == ("accepted", "accepted")


async def test_get_configuration_answer_is_stored_as_station_variables(cpo_a, alice):
    station, charger = await connected_charger("CP-CONF", cpo_a)
    await database_sync_to_async(StationVariable.objects.create)(
        station=station, variable="Removed", value="x"
    )

    command = await request(station, alice, "get_configuration", keys=[])
    call = await charger.receive()
    await answer(
        charger,
        call,
        {
            "configurationKey": [
                {"key": "HeartbeatInterval", "readonly": False, "value": "300"},
                {"key": "NumberOfConnectors", "readonly": True, "value": "2"},
            ]
        },
    )
    command = await final(command)
    await charger.close()

    assert call[2:] == ["GetConfiguration", {}]
    assert command.status == Command.Status.ACCEPTED
    assert len(command.response["configurationKey"]) == 2
    rows = [
        (v.variable, v.value, v.mutability)
        async for v in StationVariable.objects.filter(station=station).order_by("variable")
    ]
    assert rows == [
        ("HeartbeatInterval", "300", "ReadWrite"),
        ("NumberOfConnectors", "2", "ReadOnly"),
    ]


async def test_the_call_and_its_answer_are_in_the_station_log(cpo_a, alice):
    station, charger = await connected_charger("CP-LOGGED", cpo_a)

    command = await request(
        station, alice, "change_configuration", key="MeterValueSampleInterval", value=60
    )
    call = await charger.receive()
    await answer(charger, call, {"status": "RebootRequired"})
    command = await final(command)
    await charger.close()
    await message_log.flush()

    assert call[3] == {"key": "MeterValueSampleInterval", "value": "60"}
    assert command.status == Command.Status.ACCEPTED
    logged = [
        (m.direction, m.message_type, m.action)
        async for m in OcppMessage.objects.filter(station=station, unique_id=call[1]).order_by("id")
    ]
    assert logged == [("out", 2, "ChangeConfiguration"), ("in", 3, "ChangeConfiguration")]


async def test_command_for_another_station_is_not_sent_on_this_connection(cpo_a, alice):
    station, charger = await connected_charger("CP-MINE", cpo_a)
    other = await database_sync_to_async(make_station)("CP-OTHER", cpo=cpo_a)
    command = await database_sync_to_async(Command.objects.create)(
        station=other, action="ClearCache", payload={}
    )

    class FakeChargePoint:
        session = StationSession(
            station_id=station.pk, cbid="CP-MINE", version="1.6", registration_status="Accepted"
        )

        async def send_call(self, action, payload):  # pragma: no cover - must not run
            raise AssertionError("sent a command of another station")

    await run_command(FakeChargePoint(), command.pk)
    await charger.close()

    assert (await Command.objects.aget(pk=command.pk)).status == Command.Status.QUEUED


async def test_disconnect_while_a_command_waits_its_turn_marks_it_offline(cpo_a, alice):
    station, charger = await connected_charger("CP-QUEUE", cpo_a)

    first = await request(station, alice, "reset", type="soft")
    second = await request(station, alice, "clear_cache")
    await charger.receive()
    await charger.close()
    first, second = await final(first), await final(second)

    assert first.status == Command.Status.ERROR
    assert second.status == Command.Status.OFFLINE
    assert second.sent_at is None


async def test_an_answer_that_is_not_an_object_makes_an_error(cpo_a, alice):
    station, charger = await connected_charger("CP-ODD", cpo_a)

    command = await request(station, alice, "reset", type="soft")
    call = await charger.receive()
    await charger.send_raw(json.dumps([3, call[1], ["Accepted"]]))
    command = await final(command)
    await charger.close()

    assert command.status == Command.Status.ERROR
    assert "not an object" in command.error
