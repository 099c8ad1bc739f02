"""OCPP 2.0.1 / 2.1 chargers connecting: negotiation, credentials, boot, the 2.x error codes."""

from __future__ import annotations

import asyncio
import base64
import json
from unittest.mock import MagicMock

import pytest
from channels.db import database_sync_to_async

from ocpp_gateway.handlers import charge_point_class
from ocpp_spec.passwords import hash_password
from stations.models import Station
from stations.services.commands import command_request_system
from stations.services.sessions import StationSession
from tests.factories import make_station
from tests.ocpp_gateway.conftest import open_charger

pytestmark = [pytest.mark.django_db(transaction=True)]

V2 = ["ocpp2.0.1", "ocpp2.1"]
BOOT = {
    "reason": "PowerUp",
    "chargingStation": {
        "model": "Wall 22",
        "vendorName": "Acme",
        "serialNumber": "SN-1",
        "firmwareVersion": "2.0.0",
        "modem": {"iccid": "8935800000000000001", "imsi": "244050000000001"},
    },
}


async def boot(charger, **changes) -> list:
    return await charger.call("BootNotification", BOOT | changes)


async def station(cbid: str) -> Station:
    return await Station.objects.aget(cbid=cbid)


make_station_async = database_sync_to_async(make_station)


# ---- negotiation ---------------------------------------------------------------------


async def test_charger_offering_only_ocpp201_gets_it_and_the_version_is_stored():
    charger = open_charger("CP-201", subprotocols=["ocpp2.0.1"])
    assert await charger.connect()
    assert charger.subprotocol == "ocpp2.0.1"
    await charger.close()
    assert (await station("CP-201")).ocpp_version == "2.0.1"


async def test_charger_offering_several_versions_gets_the_newest_we_support():
    charger = open_charger("CP-MANY", subprotocols=["ocpp1.6", "ocpp2.0.1", "ocpp2.1"])
    assert await charger.connect()
    assert charger.subprotocol == "ocpp2.1"
    await charger.close()
    assert (await station("CP-MANY")).ocpp_version == "2.1"


async def test_charger_offering_16_and_201_gets_201():
    charger = open_charger("CP-TWO", subprotocols=["ocpp1.6", "ocpp2.0.1"])
    assert await charger.connect()
    assert charger.subprotocol == "ocpp2.0.1"
    await charger.close()
    assert (await station("CP-TWO")).ocpp_version == "2.0.1"


async def test_reconnecting_with_another_version_updates_the_station(cpo_a):
    await make_station_async("CP-UP", cpo=cpo_a, ocpp_version="1.6")
    charger = open_charger("CP-UP", subprotocols=["ocpp2.0.1"])
    assert await charger.connect()
    assert (await boot(charger))[2]["status"] == "Accepted"
    await charger.close()
    assert (await station("CP-UP")).ocpp_version == "2.0.1"


# ---- security profile 1 --------------------------------------------------------------

PASSWORD = "päss-wörd-0123456789"  # plain UTF-8, 20 characters


def basic_auth(username: str, password: str) -> list[tuple[bytes, bytes]]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return [(b"authorization", f"Basic {token}".encode())]


async def secured_station(cbid: str, cpo) -> None:
    await make_station_async(
        cbid,
        cpo=cpo,
        ocpp_version="2.0.1",
        security_profile=1,
        auth_password_hash=hash_password(PASSWORD),
    )


async def test_security_profile_1_accepts_the_cbid_and_its_utf8_password(cpo_a):
    await secured_station("CP-SEC", cpo_a)
    charger = open_charger(
        "CP-SEC", subprotocols=["ocpp2.0.1"], headers=basic_auth("CP-SEC", PASSWORD)
    )
    assert await charger.connect()
    assert (await boot(charger))[2]["status"] == "Accepted"
    await charger.close()


@pytest.mark.parametrize(
    "headers",
    [
        [],
        basic_auth("CP-SEC", "wrong-password-0123"),
        basic_auth("OTHER", PASSWORD),
        # 1.6 chargers may send the key hex-encoded; 2.0.1 says plain UTF-8 only.
        basic_auth("CP-SEC", PASSWORD.encode().hex()),
    ],
    ids=["no-credentials", "wrong-password", "wrong-username", "hex-encoded"],
)
async def test_security_profile_1_refuses_bad_credentials(cpo_a, headers):
    await secured_station("CP-SEC", cpo_a)
    charger = open_charger("CP-SEC", subprotocols=["ocpp2.0.1"], headers=headers)
    assert not await charger.connect()
    assert not (await station("CP-SEC")).connected


# ---- boot ----------------------------------------------------------------------------


@pytest.mark.parametrize("subprotocol", V2)
async def test_new_charger_lands_in_pool_and_boots_pending(subprotocol):
    charger = open_charger("CP-POOL", subprotocols=[subprotocol])
    assert await charger.connect()
    reply = await boot(charger)
    await charger.close()

    assert reply[0] == 3
    assert reply[2]["status"] == "Pending"
    assert isinstance(reply[2]["interval"], int)
    assert reply[2]["currentTime"].endswith("Z")
    pooled = await station("CP-POOL")
    assert pooled.cpo_id is None
    assert pooled.registration_status == "Pending"
    assert (pooled.vendor, pooled.model, pooled.serial_number) == ("Acme", "Wall 22", "SN-1")
    assert pooled.firmware_version == "2.0.0"
    assert (pooled.iccid, pooled.imsi) == ("8935800000000000001", "244050000000001")
    assert pooled.boot_reason == "PowerUp"


@pytest.mark.parametrize("subprotocol", V2)
async def test_station_with_a_cpo_boots_accepted(cpo_a, subprotocol):
    await make_station_async("CP-OWNED", cpo=cpo_a, registration_status="Pending")
    charger = open_charger("CP-OWNED", subprotocols=[subprotocol])
    assert await charger.connect()
    reply = await boot(charger)
    await charger.close()
    assert reply[2]["status"] == "Accepted"
    assert (await station("CP-OWNED")).registration_status == "Accepted"


async def test_over_long_vendor_strings_do_not_brick_the_charger():
    charger = open_charger("CP-LONG", subprotocols=["ocpp2.0.1"])
    await charger.connect()
    long_station = BOOT["chargingStation"] | {"vendorName": "V" * 80, "model": "M" * 60}
    reply = await boot(charger, chargingStation=long_station)
    await charger.close()
    assert reply[0] == 3
    assert (await station("CP-LONG")).vendor == "V" * 80


# ---- SecurityError before Accepted --------------------------------------------------


@pytest.mark.parametrize("subprotocol", V2)
async def test_pending_station_gets_security_error_for_other_requests(subprotocol):
    charger = open_charger("CP-PEND", subprotocols=[subprotocol])
    await charger.connect()
    await boot(charger)
    reply = await charger.call("Heartbeat", {})
    await charger.close()
    assert reply[0] == 4
    assert reply[2] == "SecurityError"


async def test_station_that_never_booted_gets_security_error():
    charger = open_charger("CP-NOBOOT", subprotocols=["ocpp2.0.1"])
    await charger.connect()
    reply = await charger.call(
        "StatusNotification",
        {
            "timestamp": "2026-01-01T00:00:00Z",
            "connectorStatus": "Available",
            "evseId": 1,
            "connectorId": 1,
        },
    )
    await charger.close()
    assert reply[:3] == [4, reply[1], "SecurityError"]


class FakeConnection:
    """Stands in for the consumer: collects what the ChargePoint sends."""

    def __init__(self) -> None:
        self.sent: asyncio.Queue[list] = asyncio.Queue()

    async def send(self, text: str) -> None:
        await self.sent.put(json.loads(text))


async def test_pending_station_may_send_the_message_we_triggered():
    pooled = await make_station_async("CP-TRIG", ocpp_version="2.0.1")
    context = StationSession(
        station_id=pooled.pk, cbid="CP-TRIG", version="2.0.1", registration_status="Pending"
    )
    connection = FakeConnection()
    charge_point = charge_point_class("2.0.1")(context, connection, log=MagicMock())

    trigger = asyncio.ensure_future(
        charge_point.send_call("TriggerMessage", {"requestedMessage": "Heartbeat"})
    )
    sent = await asyncio.wait_for(connection.sent.get(), 5)
    assert sent[2:] == ["TriggerMessage", {"requestedMessage": "Heartbeat"}]
    await charge_point.route_message(json.dumps([3, sent[1], {"status": "Accepted"}]))
    assert await trigger == {"status": "Accepted"}

    await charge_point.route_message('[2,"h1","Heartbeat",{}]')
    triggered = await connection.sent.get()
    # Only the one triggered message: the next untriggered one is refused again.
    await charge_point.route_message('[2,"h2","Heartbeat",{}]')
    untriggered = await connection.sent.get()
    charge_point.close()

    assert triggered[0] == 3 and "currentTime" in triggered[2]
    assert untriggered[:3] == [4, "h2", "SecurityError"]


async def test_pending_station_may_answer_a_trigger_sent_through_the_command_path():
    charger = open_charger("CP-TRIG2", subprotocols=["ocpp2.0.1"])
    assert await charger.connect()
    assert (await boot(charger))[2]["status"] == "Pending"
    pooled = await station("CP-TRIG2")

    await database_sync_to_async(command_request_system)(
        station=pooled, kind="trigger_message", params={"message": "Heartbeat"}
    )
    trigger = await charger.receive()
    assert trigger[0] == 2
    assert trigger[2:] == ["TriggerMessage", {"requestedMessage": "Heartbeat"}]
    await charger.send_raw(json.dumps([3, trigger[1], {"status": "Accepted"}]))
    triggered = await charger.call("Heartbeat", {})
    untriggered = await charger.call("Heartbeat", {})
    await charger.close()

    assert triggered[0] == 3
    assert untriggered[2] == "SecurityError"


# ---- 2.x error codes ----------------------------------------------------------------


@pytest.fixture
async def accepted_charger(cpo_a):
    await make_station_async("CP-ERR", cpo=cpo_a, ocpp_version="2.0.1")
    charger = open_charger("CP-ERR", subprotocols=["ocpp2.0.1"])
    assert await charger.connect()
    assert (await boot(charger))[2]["status"] == "Accepted"
    yield charger
    await charger.close()


async def send(charger, text: str) -> list:
    await charger.send_raw(text)
    return await charger.receive()


async def test_wrong_field_type_is_a_2x_error_never_the_16_spelling(accepted_charger):
    reply = await send(accepted_charger, '[2,"e1","Heartbeat",[]]')
    assert reply[:3] == [4, "e1", "FormatViolation"]


async def test_missing_required_field_is_occurrence_constraint_violation(accepted_charger):
    reply = await send(
        accepted_charger,
        json.dumps([2, "e2", "StatusNotification", {"timestamp": "2026-01-01T00:00:00Z"}]),
    )
    assert reply[:3] == [4, "e2", "OccurrenceConstraintViolation"]


async def test_unknown_message_type_is_message_type_not_supported(accepted_charger):
    reply = await send(accepted_charger, '[7,"e3","Heartbeat",{}]')
    assert reply[:3] == [4, "e3", "MessageTypeNotSupported"]


@pytest.mark.parametrize("frame", ["not json at all", '[2, 17, "Heartbeat", {}]', "[]"])
async def test_unreadable_message_id_is_answered_with_id_minus_one(accepted_charger, frame):
    reply = await send(accepted_charger, frame)
    assert reply[0] == 4
    assert reply[1] == "-1"
    assert reply[2] == "RpcFrameworkError"
    # The connection survives: the next message is answered normally.
    assert (await accepted_charger.call("Heartbeat", {}))[0] == 3


async def test_unknown_action_is_not_implemented(accepted_charger):
    reply = await send(accepted_charger, '[2,"e4","MakeCoffee",{}]')
    assert reply[:3] == [4, "e4", "NotImplemented"]


async def test_known_but_unhandled_action_is_not_supported(accepted_charger):
    reply = await send(
        accepted_charger,
        json.dumps(
            [
                2,
                "e5",
                "ReservationStatusUpdate",
                {"reservationId": 1, "reservationUpdateStatus": "Expired"},
            ]
        ),
    )
    assert reply[:3] == [4, "e5", "NotSupported"]


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"evseId": "1"}, "TypeConstraintViolation"),
        ({"connectorStatus": "Broken"}, "PropertyConstraintViolation"),
    ],
)
async def test_bad_field_values_get_the_matching_constraint_violation(
    accepted_charger, change, code
):
    status = {
        "timestamp": "2026-01-01T00:00:00Z",
        "connectorStatus": "Available",
        "evseId": 1,
        "connectorId": 1,
    }
    reply = await send(
        accepted_charger, json.dumps([2, "e6", "StatusNotification", status | change])
    )
    assert reply[:3] == [4, "e6", code]


# ---- a station without a password keeps its live connection (issue 11 point 3) --------


async def _answer_boot_trigger(charger) -> None:
    trigger = await charger.receive()
    assert trigger[2:] == ["TriggerMessage", {"requestedMessage": "BootNotification"}]
    await charger.send_raw(json.dumps([3, trigger[1], {"status": "Accepted"}]))


@pytest.mark.parametrize("serial, replaced", [("SN-1", True), ("SN-EVIL", False)])
async def test_a_2x_newcomer_takes_over_only_with_the_station_serial(serial, replaced):
    await make_station_async("CP-2X", ocpp_version="2.0.1")
    first = open_charger("CP-2X", subprotocols=["ocpp2.0.1"])
    assert await first.connect()
    assert (await boot(first))[2]["status"] == "Pending"

    second = open_charger("CP-2X", subprotocols=["ocpp2.0.1"])
    assert await second.connect()
    await _answer_boot_trigger(second)
    changed = {"chargingStation": BOOT["chargingStation"] | {"serialNumber": serial}}
    status = (await boot(second, **changed))[2]["status"]

    if replaced:
        assert status == "Pending"  # the pool's answer: it is the station now
        assert (await first.ws.receive_output(timeout=5))["code"] == 4000
        assert (await station("CP-2X")).connected
    else:
        assert status == "Rejected"
        assert await first.ws.receive_nothing(timeout=0.3)
        heartbeat = await second.call("Heartbeat", {})
        assert heartbeat[0] == 4 and heartbeat[2] == "SecurityError"
        assert (await station("CP-2X")).serial_number == "SN-1"
    await second.close()
    await first.close()
