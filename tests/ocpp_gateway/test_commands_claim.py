"""A claim's TriggerMessage(BootNotification) goes through the command path."""

from __future__ import annotations

import json

import pytest
from channels.db import database_sync_to_async

from stations.models import Command
from stations.services import claiming
from tests.ocpp_gateway.conftest import open_charger

pytestmark = [pytest.mark.django_db(transaction=True)]


async def test_claiming_a_connected_charger_triggers_an_accepted_boot(alice):
    charger = open_charger("CP-CLAIM")
    assert await charger.connect()
    assert (await charger.boot())[2]["status"] == "Pending"

    await database_sync_to_async(claiming.station_claim)(
        user=alice, protocol="ocpp", cbid="CP-CLAIM"
    )
    call = await charger.receive()
    await charger.send_raw(json.dumps([3, call[1], {"status": "Accepted"}]))
    reply = await charger.boot()
    await charger.close()

    assert call[2:] == ["TriggerMessage", {"requestedMessage": "BootNotification"}]
    assert reply[2]["status"] == "Accepted"
    command = await Command.objects.aget()
    assert command.status == Command.Status.ACCEPTED
    assert command.requested_by_id == alice.pk
