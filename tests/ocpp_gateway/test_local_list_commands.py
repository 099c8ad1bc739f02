"""SendLocalList and GetLocalListVersion through the consumer to a scripted 1.6 charger:
a full list, a differential one answered VersionMismatch, the version read back."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from stations.models import Command, IdTag, Station
from stations.services.local_list import local_list_send, local_list_state
from tests.ocpp_gateway.test_commands import answer, connected_charger, final, request

pytestmark = [pytest.mark.django_db(transaction=True)]


async def send(station_pk: int, user, *, full: bool = False) -> Command:
    station = await Station.objects.aget(pk=station_pk)
    return await database_sync_to_async(local_list_send)(station=station, user=user, full=full)


async def state(station_pk: int):
    station = await Station.objects.aget(pk=station_pk)
    return await database_sync_to_async(local_list_state)(station=station)


async def test_full_then_differential_refused_with_version_mismatch(cpo_a, alice):
    station, charger = await connected_charger("CP-LIST", cpo_a)
    await IdTag.objects.acreate(cpo=cpo_a, tag="VAN-12", parent_id_tag="FLEET")

    command = await send(station.pk, alice)
    call = await charger.receive()
    assert call[2:] == [
        "SendLocalList",
        {
            "listVersion": 1,
            "updateType": "Full",
            "localAuthorizationList": [
                {"idTag": "VAN-12", "idTagInfo": {"status": "Accepted", "parentIdTag": "FLEET"}}
            ],
        },
    ]
    await answer(charger, call, {"status": "Accepted"})
    assert (await final(command)).status == Command.Status.ACCEPTED
    assert (await state(station.pk)).in_sync

    await IdTag.objects.acreate(cpo=cpo_a, tag="NEW-1", status="Blocked")
    command = await send(station.pk, alice)
    call = await charger.receive()
    assert call[3]["updateType"] == "Differential"
    assert call[3]["listVersion"] == 2
    assert call[3]["localAuthorizationList"] == [
        {"idTag": "NEW-1", "idTagInfo": {"status": "Blocked"}}
    ]
    await answer(charger, call, {"status": "VersionMismatch"})
    assert (await final(command)).status == Command.Status.REJECTED
    now = await state(station.pk)
    assert (now.status, now.in_sync, now.needs_full) == ("VersionMismatch", False, True)

    command = await request(station, alice, "get_local_list_version")
    call = await charger.receive()
    assert call[2:] == ["GetLocalListVersion", {}]
    await answer(charger, call, {"listVersion": 5})
    assert (await final(command)).status == Command.Status.ACCEPTED

    command = await send(station.pk, alice)
    call = await charger.receive()
    assert (call[3]["updateType"], call[3]["listVersion"]) == ("Full", 6)
    assert len(call[3]["localAuthorizationList"]) == 2
    await answer(charger, call, {"status": "Accepted"})
    await final(command)
    await charger.close()
    assert (await state(station.pk)).in_sync
