import pytest

from ocpp_gateway.message_log import message_log
from stations.models import OcppMessage, Station
from tests.factories import make_station
from tests.ocpp_gateway.conftest import open_charger

pytestmark = [pytest.mark.django_db(transaction=True)]


async def test_new_charger_lands_in_pool_and_boots_pending():
    charger = open_charger("CP-NEW")
    assert await charger.connect()
    assert charger.subprotocol == "ocpp1.6"

    reply = await charger.boot(firmwareVersion="1.2.3")
    await charger.close()

    assert reply[0] == 3
    assert reply[2]["status"] == "Pending"
    assert isinstance(reply[2]["interval"], int)
    assert reply[2]["currentTime"].endswith("Z")
    station = await Station.objects.aget(cbid="CP-NEW")
    assert station.cpo_id is None
    assert station.name.startswith("Created ")
    assert station.vendor == "Acme"
    assert station.firmware_version == "1.2.3"
    assert station.ocpp_version == "1.6"
    assert station.registration_status == "Pending"
    assert station.connected is False


async def test_station_with_cpo_boots_accepted(cpo_a):
    await make_station_async("CP-OWNED", cpo=cpo_a)
    charger = open_charger("cp-owned")  # any case finds the same station
    assert await charger.connect()
    reply = await charger.boot()
    await charger.close()
    assert reply[2]["status"] == "Accepted"
    assert await Station.objects.acount() == 1


async def test_unsupported_subprotocol_is_refused():
    charger = open_charger("CP-2", subprotocols=["ocpp1.2"])
    assert not await charger.connect()
    assert not await Station.objects.filter(cbid="CP-2").aexists()


@pytest.mark.parametrize(
    "path", ["/ocpp/", "/ocpp/a/b", "/ocpp/..", "/ocpp/bad%20id", "/elsewhere"]
)
async def test_bad_paths_are_refused(path):
    charger = open_charger(path=path)
    assert not await charger.connect()
    assert await Station.objects.acount() == 0


async def test_frames_are_logged():
    charger = open_charger("CP-LOG")
    await charger.connect()
    await charger.boot()
    await charger.close()
    await message_log.flush()
    directions = [
        m async for m in OcppMessage.objects.order_by("id").values_list("direction", "action")
    ]
    assert directions == [("in", "BootNotification"), ("out", "BootNotification")]


async def make_station_async(cbid, **kwargs):
    from channels.db import database_sync_to_async

    return await database_sync_to_async(make_station)(cbid, **kwargs)
