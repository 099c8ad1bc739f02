"""A bulk command request reaches each charger through its process's mailbox."""

from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from ocpp_gateway import liveness
from ocpp_gateway import mailbox as mailbox_module
from stations.models import Command
from stations.services import commands as commands_module
from stations.services.commands import command_request_system_many
from stations.services.notify import process_mailbox
from tests.ocpp_gateway.test_commands import answer, connected_charger, final

pytestmark = [pytest.mark.django_db(transaction=True)]

TRIGGER = {"kind": "trigger_message", "params": {"message": "StatusNotification"}}


async def test_every_charger_gets_its_command_from_one_message(cpo_a, monkeypatch):
    sent = []
    original = commands_module.station_notify_many

    def counted(messages):
        sent.append(messages)
        return original(messages)

    monkeypatch.setattr(commands_module, "station_notify_many", counted)
    pairs = [await connected_charger(f"CP-MB-{i}", cpo_a) for i in range(3)]
    stations = [station for station, _ in pairs]
    commands = await database_sync_to_async(command_request_system_many)(
        stations=stations, **TRIGGER
    )
    calls = [await charger.receive() for _, charger in pairs]
    for (_, charger), call in zip(pairs, calls, strict=True):
        await answer(charger, call, {"status": "Accepted"})
    finished = [await final(command) for command in commands]
    for _, charger in pairs:
        await charger.close()

    assert [call[2:] for call in calls] == [
        ["TriggerMessage", {"requestedMessage": "StatusNotification"}]
    ] * 3
    assert {command.status for command in finished} == {Command.Status.ACCEPTED}
    # One process: one message, to its mailbox.
    assert len(sent) == 1 and len(sent[0]) == 1
    channel, message = sent[0][0]
    assert message["type"] == "station.commands" and len(message["commands"]) == 3
    assert channel.endswith("!gateway")


async def test_a_command_for_a_charger_gone_from_the_process_is_offline_at_once(cpo_a):
    station, charger = await connected_charger("CP-MB-GONE", cpo_a)
    command = await Command.objects.acreate(
        station=station, action="TriggerMessage", payload={"requestedMessage": "Heartbeat"}
    )
    mailbox = process_mailbox(next(iter(liveness.consumers_by_channel())))
    await get_channel_layer().send(
        mailbox,
        {"type": "station.commands", "commands": [["specific.x!not-here", command.pk]]},
    )
    command = await final(command)
    await charger.close()
    assert command.status == Command.Status.OFFLINE
    assert "disconnected" in command.error


async def test_the_mailbox_stops_with_the_last_charger(cpo_a):
    _, charger = await connected_charger("CP-MB-LAST", cpo_a)
    state = mailbox_module._state()
    assert state.task is not None and not state.task.done()
    await charger.close()
    await asyncio.sleep(0)
    assert state.task is None


def test_only_process_local_channels_have_a_mailbox():
    assert process_mailbox("specific.abc!def") == "specific.abc!gateway"
    assert process_mailbox("station-group") is None
    assert process_mailbox("specific.abc!") is None
