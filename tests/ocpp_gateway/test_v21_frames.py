"""OCPP-J 2.1's CALLRESULTERROR (5) and SEND (6): accepted on 2.1, never answered.

On 1.6 and 2.0.1 connections both stay what they were: an unsupported message type.
"""

from __future__ import annotations

import json

import pytest
from channels.db import database_sync_to_async

from ocpp_gateway import handlers
from ocpp_gateway.handlers import v21
from ocpp_gateway.protocol import on_send
from stations.models import OcppMessage
from tests.factories import make_cpo, make_station
from tests.ocpp_gateway.conftest import open_charger

pytestmark = [pytest.mark.django_db(transaction=True)]

BOOT_16 = {"chargePointVendor": "Acme", "chargePointModel": "Fast 22"}
BOOT_2X = {"reason": "PowerUp", "chargingStation": {"model": "Wall 22", "vendorName": "Acme"}}
STREAM = {
    "id": 1,
    "pending": 0,
    "basetime": "2026-01-01T00:00:00Z",
    "data": [{"t": 0, "v": "230.1"}, {"t": 1.5, "v": "229.8"}],
}


async def connected(cbid: str, version: str, *, accepted: bool = True):
    cpo = await database_sync_to_async(make_cpo)(f"CPO of {cbid}") if accepted else None
    await database_sync_to_async(make_station)(cbid, cpo=cpo, ocpp_version=version)
    charger = open_charger(cbid, subprotocols=[f"ocpp{version}"])
    assert await charger.connect()
    boot = await charger.call("BootNotification", BOOT_16 if version == "1.6" else BOOT_2X)
    assert boot[2]["status"] == ("Accepted" if accepted else "Pending")
    return charger


async def nothing_answered(charger) -> bool:
    """No frame came back, and the connection still answers the next CALL first."""
    quiet = await charger.ws.receive_nothing(timeout=0.3)
    reply = await charger.call("Heartbeat", {}, unique_id="after")
    return quiet and reply[0] in (3, 4)


async def logged(cbid: str, message_type: int) -> list[tuple]:
    rows = OcppMessage.objects.filter(cbid=cbid, message_type=message_type).order_by("pk")
    return [(m.direction, m.action, m.unique_id, m.payload) async for m in rows]


class Recording(v21.ChargePoint):
    """The 2.1 handlers plus a SEND handler that remembers what it got."""

    streams: list[dict] = []

    @on_send("NotifyPeriodicEventStream")
    async def on_notify_periodic_event_stream(self, id: int, data: list, **kwargs) -> None:
        self.streams.append({"id": id, "data": data, **kwargs})


@pytest.fixture
def recording(monkeypatch) -> list[dict]:
    streams: list[dict] = []
    monkeypatch.setattr(Recording, "streams", streams)
    monkeypatch.setitem(handlers._CLASSES, "2.1", Recording)
    return streams


# ---- type 5: CALLRESULTERROR ---------------------------------------------------------------


async def test_a_callresulterror_is_logged_against_the_call_it_answers_and_not_answered():
    charger = await connected("CP-21-CRE", "2.1")
    assert (await charger.call("Heartbeat", {}, unique_id="hb-1"))[0] == 3

    await charger.send_raw(json.dumps([5, "hb-1", "FormatViolation", "currentTime?", {"x": 1}]))
    assert await nothing_answered(charger)
    await charger.close()

    assert await logged("CP-21-CRE", 5) == [
        (
            "in",
            "Heartbeat",
            "hb-1",
            {
                "errorCode": "FormatViolation",
                "errorDescription": "currentTime?",
                "errorDetails": {"x": 1},
            },
        )
    ]


async def test_a_callresulterror_about_an_unknown_message_is_logged_too():
    charger = await connected("CP-21-CRE2", "2.1")

    await charger.send_raw(json.dumps([5, "never-sent", "GenericError", "", {}]))
    assert await nothing_answered(charger)
    await charger.close()

    [(direction, action, unique_id, _)] = await logged("CP-21-CRE2", 5)
    assert (direction, action, unique_id) == ("in", "", "never-sent")


# ---- type 6: SEND ------------------------------------------------------------------------------


async def test_a_send_without_a_handler_is_logged_and_dropped():
    charger = await connected("CP-21-SEND", "2.1")

    await charger.send_raw(json.dumps([6, "s-1", "NotifyPeriodicEventStream", STREAM]))
    assert await nothing_answered(charger)
    await charger.close()

    assert await logged("CP-21-SEND", 6) == [("in", "NotifyPeriodicEventStream", "s-1", STREAM)]


async def test_a_send_goes_to_its_handler_and_is_not_answered(recording):
    charger = await connected("CP-21-SENDH", "2.1")

    await charger.send_raw(json.dumps([6, "s-1", "NotifyPeriodicEventStream", STREAM]))
    assert await nothing_answered(charger)
    await charger.close()

    assert recording == [
        {
            "id": 1,
            "data": STREAM["data"],
            "pending": 0,
            "basetime": "2026-01-01T00:00:00Z",
        }
    ]


async def test_a_send_that_breaks_its_schema_is_dropped_unanswered(recording):
    charger = await connected("CP-21-SENDB", "2.1")

    await charger.send_raw(json.dumps([6, "s-1", "NotifyPeriodicEventStream", {"id": "one"}]))
    assert await nothing_answered(charger)
    await charger.close()

    assert recording == []
    assert len(await logged("CP-21-SENDB", 6)) == 1


async def test_a_send_from_a_pending_station_is_dropped_unanswered(recording):
    charger = await connected("CP-21-SENDP", "2.1", accepted=False)

    await charger.send_raw(json.dumps([6, "s-1", "NotifyPeriodicEventStream", STREAM]))
    assert await charger.ws.receive_nothing(timeout=0.3)
    await charger.close()

    assert recording == []


async def test_a_send_of_an_action_that_exists_as_a_call_is_not_answered_either(recording):
    charger = await connected("CP-21-SENDC", "2.1")

    await charger.send_raw(json.dumps([6, "s-1", "Heartbeat", {}]))
    assert await nothing_answered(charger)
    await charger.close()


@pytest.mark.parametrize(
    "frame",
    [
        [5, "e-1"],
        [5, "e-2", "GenericError"],
        [6, "s-1", "NotifyPeriodicEventStream"],
        [6, "s-2", "NotifyPeriodicEventStream", []],
        [6, "s-3", "", {}],
        [6, "s-4", "NotifyPeriodicEventStream", {"data": "\u0000"}],
        [6, 17, "NotifyPeriodicEventStream", {}],
    ],
    ids=["5-short", "5-no-description", "6-short", "6-array", "6-no-action", "6-nul", "6-id"],
)
async def test_malformed_21_frames_of_these_types_are_never_answered(frame):
    charger = await connected("CP-21-BAD", "2.1")

    await charger.send_raw(json.dumps(frame))
    assert await nothing_answered(charger)
    await charger.close()

    # Kept in the message log as they came.
    assert await OcppMessage.objects.filter(cbid="CP-21-BAD", message_type=None).acount() == 1


# ---- 1.6 and 2.0.1: as before ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "code"),
    [("1.6", "FormationViolation"), ("2.0.1", "MessageTypeNotSupported")],
)
@pytest.mark.parametrize(
    "frame",
    [
        [5, "x-1", "GenericError", "", {}],
        [6, "x-1", "NotifyPeriodicEventStream", STREAM],
    ],
    ids=["callresulterror", "send"],
)
async def test_other_versions_do_not_support_these_types(version, code, frame):
    charger = await connected(f"CP-{version}-T{frame[0]}", version)

    await charger.send_raw(json.dumps(frame))
    reply = await charger.receive()
    await charger.close()

    assert reply[:3] == [4, "x-1", code]
