"""Bad frames get the 1.6 CALLERROR with the message id, and the connection lives on."""

from __future__ import annotations

import json

import pytest
from channels.db import database_sync_to_async

from ocpp_gateway.message_log import message_log
from stations.models import OcppMessage, Station
from tests.factories import make_cpo, make_station
from tests.ocpp_gateway.conftest import Charger, open_charger

pytestmark = [pytest.mark.django_db(transaction=True)]

START = {"connectorId": 1, "idTag": "TAG-1", "meterStart": 0, "timestamp": "2026-01-02T10:00:00Z"}


async def accepted_charger(cbid: str = "CP-1", **station_fields) -> Charger:
    cpo = await database_sync_to_async(make_cpo)("CPO A")
    await database_sync_to_async(make_station)(cbid, cpo=cpo, **station_fields)
    charger = open_charger(cbid)
    assert await charger.connect()
    return charger


async def assert_still_works(charger: Charger) -> None:
    """The connection stays open and a later Heartbeat is answered normally."""
    reply = await charger.call("Heartbeat", {}, unique_id="after-bad-frame")
    assert reply[0] == 3
    assert "currentTime" in reply[2]
    assert await charger.ws.receive_nothing()


@pytest.mark.parametrize(
    ("raw", "code", "unique_id"),
    [
        pytest.param("this is not json", "FormationViolation", "-1", id="not-json"),
        pytest.param('[2, "id-7", "Heartbeat", {', "FormationViolation", "id-7", id="truncated"),
        pytest.param('{"id": "x"}', "FormationViolation", "-1", id="object-not-array"),
        pytest.param('"just a string"', "FormationViolation", "-1", id="string-not-array"),
        pytest.param("[]", "FormationViolation", "-1", id="empty-array"),
        pytest.param('[2, 17, "Heartbeat", {}]', "FormationViolation", "-1", id="numeric-id"),
        pytest.param('[2, "", "Heartbeat", {}]', "FormationViolation", "-1", id="empty-id"),
        pytest.param(
            json.dumps([2, "x" * 37, "Heartbeat", {}]), "FormationViolation", "-1", id="long-id"
        ),
        pytest.param('[2, "a\\u0000", "Heartbeat", {}]', "FormationViolation", "-1", id="nul-id"),
        pytest.param('[7, "id-8", "Heartbeat", {}]', "FormationViolation", "id-8", id="type-7"),
        pytest.param('["2", "id-9", "Heartbeat", {}]', "FormationViolation", "id-9", id="type-str"),
        pytest.param('[2, "id-10", "Heartbeat"]', "FormationViolation", "id-10", id="short-call"),
        pytest.param('[2, "id-11", 5, {}]', "FormationViolation", "id-11", id="numeric-action"),
        pytest.param(
            '[2, "id-12", "Heartbeat", []]', "FormationViolation", "id-12", id="list-body"
        ),
        pytest.param(
            '[2, "id-13", "Heartbeat", {"a": NaN}]', "FormationViolation", "id-13", id="nan"
        ),
        pytest.param(
            '[2, "id-14", "MeterValues", {"connectorId": 1e400}]',
            "FormationViolation",
            "id-14",
            id="infinite-number",
        ),
    ],
)
async def test_malformed_frames(raw, code, unique_id):
    charger = await accepted_charger()
    await charger.send_raw(raw)
    reply = await charger.receive()
    assert reply[0] == 4
    assert reply[1] == unique_id
    assert reply[2] == code
    assert isinstance(reply[3], str)
    assert reply[4] == {}
    await assert_still_works(charger)
    await charger.close()


@pytest.mark.parametrize(
    ("action", "payload", "code"),
    [
        pytest.param("StartTransaction", START | {"idTag": None}, "TypeConstraintViolation"),
        pytest.param("StartTransaction", START | {"connectorId": "1"}, "TypeConstraintViolation"),
        pytest.param("StartTransaction", START | {"meterStart": 1.5}, "TypeConstraintViolation"),
        pytest.param(
            "StatusNotification",
            {"connectorId": True, "errorCode": "NoError", "status": "Available"},
            "TypeConstraintViolation",
            id="boolean-for-integer",
        ),
        pytest.param(
            "StartTransaction",
            {k: v for k, v in START.items() if k != "meterStart"},
            "OccurenceConstraintViolation",
            id="missing-meterStart",
        ),
        pytest.param("Authorize", {}, "OccurenceConstraintViolation", id="missing-idTag"),
        pytest.param(
            "StatusNotification",
            {"connectorId": 1, "errorCode": "NoError", "status": "Sleeping"},
            "PropertyConstraintViolation",
            id="unknown-enum-value",
        ),
        pytest.param(
            "Authorize", {"idTag": "T" * 21}, "TypeConstraintViolation", id="overlong-idTag"
        ),
        pytest.param(
            "DataTransfer",
            {"vendorId": "v" * 256},
            "TypeConstraintViolation",
            id="overlong-vendorId",
        ),
        pytest.param(
            "BootNotification",
            {"chargePointModel": "M"},
            "OccurenceConstraintViolation",
            id="boot-without-vendor",
        ),
    ],
)
async def test_invalid_payloads(action, payload, code):
    charger = await accepted_charger()
    reply = await charger.call(action, payload, unique_id="bad-1")
    assert reply[:3] == [4, "bad-1", code]
    await assert_still_works(charger)
    await charger.close()


async def test_overlong_cosmetic_boot_fields_are_accepted():
    charger = open_charger("CP-LONG")
    assert await charger.connect()
    reply = await charger.call(
        "BootNotification",
        {
            "chargePointVendor": "V" * 40,
            "chargePointModel": "M" * 40,
            "firmwareVersion": "F" * 80,
        },
    )
    await charger.close()
    assert reply[0] == 3
    assert reply[2]["status"] == "Pending"
    station = await Station.objects.aget(cbid="CP-LONG")
    assert (station.vendor, station.model, station.firmware_version) == (
        "V" * 40,
        "M" * 40,
        "F" * 80,
    )


async def test_unknown_action_is_not_implemented():
    charger = await accepted_charger()
    reply = await charger.call("MakeCoffee", {}, unique_id="c-1")
    assert reply[:3] == [4, "c-1", "NotImplemented"]
    await assert_still_works(charger)
    await charger.close()


@pytest.mark.parametrize("action", ["Reset", "RemoteStartTransaction", "GetConfiguration"])
async def test_action_the_backend_sends_is_not_supported(action):
    charger = await accepted_charger()
    reply = await charger.call(action, {}, unique_id="s-1")
    assert reply[:3] == [4, "s-1", "NotSupported"]
    await assert_still_works(charger)
    await charger.close()


async def test_reused_message_id_is_refused():
    charger = await accepted_charger()
    first = await charger.call("Heartbeat", {}, unique_id="same")
    second = await charger.call("Heartbeat", {}, unique_id="same")
    assert first[0] == 3
    assert second[:3] == [4, "same", "ProtocolError"]
    await assert_still_works(charger)
    await charger.close()


async def test_only_the_last_message_ids_are_remembered():
    """A bounded window: 256 ids per connection cost 10,000 chargers ~500 MB."""
    from ocpp_gateway.protocol import REMEMBERED_IDS

    charger = await accepted_charger()
    await charger.call("Heartbeat", {}, unique_id="old")
    for n in range(REMEMBERED_IDS):
        assert (await charger.call("Heartbeat", {}, unique_id=f"hb-{n}"))[0] == 3
    # "old" left the window: taken again; the newest is still refused.
    assert (await charger.call("Heartbeat", {}, unique_id="old"))[0] == 3
    newest = await charger.call("Heartbeat", {}, unique_id="old")
    assert newest[:3] == [4, "old", "ProtocolError"]
    await charger.close()


async def test_escaped_nul_character_is_refused_with_the_id():
    charger = await accepted_charger()
    await charger.send_raw('[2, "nul-1", "Authorize", {"idTag": "A\\u0000B"}]')
    reply = await charger.receive()
    assert reply[:3] == [4, "nul-1", "FormationViolation"]
    await assert_still_works(charger)
    await charger.close()


async def test_raw_nul_byte_is_refused_with_the_id():
    charger = await accepted_charger()
    await charger.send_raw('[2, "nul-2", "Authorize", {"idTag": "A\x00B"}]')
    reply = await charger.receive()
    assert reply[:3] == [4, "nul-2", "FormationViolation"]
    await assert_still_works(charger)
    await charger.close()


async def test_escaped_backslash_before_u0000_is_not_a_nul():
    charger = await accepted_charger()
    await charger.send_raw('[2, "bs-1", "Authorize", {"idTag": "A\\\\u0000"}]')
    reply = await charger.receive()
    assert reply[0] == 3
    await charger.close()


async def test_lone_surrogate_is_refused_and_the_log_keeps_working():
    charger = await accepted_charger()
    await charger.send_raw('[2, "sur-1", "Authorize", {"idTag": "\\ud800"}]')
    reply = await charger.receive()
    assert reply[:3] == [4, "sur-1", "FormationViolation"]
    await assert_still_works(charger)
    await charger.close()
    await message_log.flush()
    assert await OcppMessage.objects.filter(unique_id="after-bad-frame").aexists()


async def test_binary_frame_is_refused_with_the_id():
    charger = await accepted_charger()
    await charger.ws.send_to(bytes_data=b'[2, "bin-1", "Heartbeat", {}]')
    reply = await charger.receive()
    assert reply[:3] == [4, "bin-1", "FormationViolation"]
    await assert_still_works(charger)
    await charger.close()


async def test_binary_frame_of_a_lenient_station_is_read_as_text():
    charger = await accepted_charger(lenient_validation=True)
    await charger.ws.send_to(bytes_data=b'[2, "bin-2", "Heartbeat", {}]')
    reply = await charger.receive()
    assert reply[:2] == [3, "bin-2"]
    await charger.close()


async def test_bad_frames_are_logged_raw():
    charger = await accepted_charger()
    await charger.send_raw("garbage \x00 here")
    await charger.receive()
    await charger.close()
    await message_log.flush()
    logged = await OcppMessage.objects.filter(direction="in").aget()
    assert logged.message_type is None
    assert logged.raw == "garbage \\u0000 here"
    answer = await OcppMessage.objects.filter(direction="out").aget()
    assert answer.payload["errorCode"] == "FormationViolation"
