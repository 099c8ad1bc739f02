"""Connection-level behaviour of a 1.6 charger: registration gate, identity, auth, liveness."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from ocpp_gateway.consumers import CLOSE_REPLACED
from ocpp_gateway.message_log import message_log
from ocpp_spec.passwords import hash_password
from stations.models import ConnectionAttempt, OcppMessage, Station, Transaction
from tests.factories import make_cpo, make_station
from tests.ocpp_gateway.conftest import open_charger

pytestmark = [pytest.mark.django_db(transaction=True)]

PASSWORD = "s3cret-station-key-16+"


def basic_auth(username: str, password: str) -> list[tuple[bytes, bytes]]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return [(b"authorization", f"Basic {token}".encode())]


async def station_with(cbid: str, **fields) -> Station:
    return await database_sync_to_async(make_station)(cbid, **fields)


# ---- registration gate ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "payload"),
    [
        ("Heartbeat", {}),
        ("Authorize", {"idTag": "TAG-1"}),
        ("StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Available"}),
    ],
)
async def test_pending_station_gets_security_error_for_anything_but_boot(action, payload):
    charger = open_charger("CP-PEND")
    assert await charger.connect()
    boot = await charger.boot()
    reply = await charger.call(action, payload, unique_id="sec-1")
    boot_again = await charger.boot()
    await charger.close()
    assert boot[2]["status"] == "Pending"
    assert reply[:3] == [4, "sec-1", "SecurityError"]
    assert boot_again[0] == 3


async def test_station_that_never_booted_gets_security_error():
    charger = open_charger("CP-SILENT")
    assert await charger.connect()
    reply = await charger.call("Heartbeat", {}, unique_id="h-1")
    await charger.close()
    assert reply[:3] == [4, "h-1", "SecurityError"]


async def test_accepted_station_gets_no_security_error():
    cpo = await database_sync_to_async(make_cpo)("CPO A")
    await station_with("CP-OK", cpo=cpo, registration_status="Pending")
    charger = open_charger("CP-OK")
    assert await charger.connect()
    before = await charger.call("Heartbeat", {})
    boot = await charger.boot()
    after = await charger.call("Heartbeat", {})
    await charger.close()
    assert before[2] == "SecurityError"
    assert boot[2]["status"] == "Accepted"
    assert after[0] == 3


async def test_pool_accepted_by_setting_gets_no_security_error(settings):
    settings.OCPP_POOL_BOOT_STATUS = "Accepted"
    charger = open_charger("CP-POOL-OK")
    assert await charger.connect()
    boot = await charger.boot()
    reply = await charger.call("Heartbeat", {})
    await charger.close()
    assert boot[2]["status"] == "Accepted"
    assert reply[0] == 3


async def test_rejected_pool_station_stays_refused(settings):
    settings.OCPP_POOL_BOOT_STATUS = "Rejected"
    charger = open_charger("CP-REJ")
    assert await charger.connect()
    boot = await charger.boot()
    reply = await charger.call("Heartbeat", {})
    await charger.close()
    assert boot[2]["status"] == "Rejected"
    assert reply[2] == "SecurityError"


async def test_accepted_status_survives_a_reconnect_without_boot(settings):
    settings.OCPP_POOL_BOOT_STATUS = "Accepted"
    charger = open_charger("CP-KEEP")
    await charger.connect()
    await charger.boot()
    await charger.close()

    again = open_charger("CP-KEEP")
    await again.connect()
    reply = await again.call("Heartbeat", {})
    await again.close()
    assert reply[0] == 3


# ---- identity ------------------------------------------------------------------------


@pytest.mark.parametrize("second_cbid", ["CP-Case", "cp-case", "CP-CASE"])
async def test_reconnect_finds_the_same_station_whatever_the_case(second_cbid):
    first = open_charger("CP-Case")
    await first.connect()
    await first.boot()
    await first.close()

    again = open_charger(second_cbid)
    assert await again.connect()
    await again.boot()
    await again.close()

    stations = [s async for s in Station.objects.all()]
    assert len(stations) == 1
    assert stations[0].cbid == "CP-Case"  # stored as first sent


async def test_percent_encoded_cbid_is_decoded():
    charger = open_charger(path="/ocpp/CP%2B1")
    assert await charger.connect()
    await charger.close()
    assert await Station.objects.filter(cbid="CP+1").aexists()


async def test_second_connection_replaces_the_first_and_stays_online(settings):
    settings.OCPP_POOL_BOOT_STATUS = "Accepted"
    first = open_charger("CP-DUP")
    assert await first.connect()
    await first.boot(chargePointSerialNumber="SN-1")

    second = open_charger("CP-DUP")
    assert await second.connect()
    # No password: the newcomer is asked to boot, and takes over once it reports the
    # station's serial number.
    await _answer_boot_trigger(second)
    assert (await second.boot(chargePointSerialNumber="SN-1"))[2]["status"] == "Accepted"
    closed = await first.ws.receive_output(timeout=5)
    assert closed == {"type": "websocket.close", "code": CLOSE_REPLACED}
    await first.close()  # the old socket's disconnect arrives after the new connect

    station = await Station.objects.aget(cbid="CP-DUP")
    assert station.connected is True
    reply = await second.call("Heartbeat", {})
    assert reply[0] == 3

    await second.close()
    station = await Station.objects.aget(cbid="CP-DUP")
    assert station.connected is False


async def test_disconnect_marks_the_station_offline():
    charger = open_charger("CP-OFF")
    await charger.connect()
    station = await Station.objects.aget(cbid="CP-OFF")
    assert station.connected is True
    assert station.connected_at is not None
    await charger.close()
    await station.arefresh_from_db()
    assert station.connected is False
    assert station.disconnected_at is not None
    assert station.channel_name == ""


async def test_unknown_cbid_is_refused_when_unknown_stations_are_not_allowed(settings):
    settings.OCPP_ALLOW_UNKNOWN_STATIONS = False
    charger = open_charger("CP-STRANGER")
    assert not await charger.connect()
    assert not await Station.objects.aexists()
    attempt = await ConnectionAttempt.objects.aget()
    assert (attempt.cbid, attempt.reason) == ("CP-STRANGER", "unknown_cbid")


async def test_known_cbid_connects_when_unknown_stations_are_not_allowed(settings):
    settings.OCPP_ALLOW_UNKNOWN_STATIONS = False
    await station_with("CP-KNOWN")
    charger = open_charger("cp-known")
    assert await charger.connect()
    await charger.close()


async def test_failure_while_opening_the_session_refuses_the_handshake(monkeypatch):
    def database_down(**kwargs):
        raise RuntimeError("database is down")

    monkeypatch.setattr("ocpp_gateway.consumers.station_open_session", database_down)
    charger = open_charger("CP-DOWN")
    assert not await charger.connect()


# ---- security profile 1 --------------------------------------------------------------


async def protected_station(cbid: str = "CP-AUTH") -> Station:
    return await station_with(cbid, auth_password_hash=hash_password(PASSWORD))


@pytest.mark.parametrize(
    ("headers", "detail", "reason"),
    [
        pytest.param([], "no Basic auth credentials", "no_credentials", id="no-credentials"),
        pytest.param(
            basic_auth("CP-AUTH", "wrong-password-123456"),
            "wrong password",
            "bad_password",
            id="wrong",
        ),
        pytest.param(
            basic_auth("CP-OTHER", PASSWORD), "username is not the CBID", "bad_password", id="user"
        ),
        pytest.param(
            [(b"authorization", b"Basic !!!")], "no Basic auth", "no_credentials", id="garbled"
        ),
    ],
)
async def test_protected_station_refuses_bad_credentials(headers, detail, reason):
    await protected_station()
    charger = open_charger("CP-AUTH", headers=headers)
    assert not await charger.connect()
    attempt = await ConnectionAttempt.objects.aget()
    assert (attempt.cbid, attempt.reason) == ("CP-AUTH", reason)
    assert attempt.detail.startswith(detail)
    station = await Station.objects.aget(cbid="CP-AUTH")
    assert station.connected is False


async def test_protected_station_accepts_the_right_credentials():
    await protected_station()
    charger = open_charger("CP-AUTH", headers=basic_auth("CP-AUTH", PASSWORD))
    assert await charger.connect()
    reply = await charger.boot()
    await charger.close()
    assert reply[0] == 3
    assert not await ConnectionAttempt.objects.aexists()


async def test_protected_station_accepts_a_hex_encoded_password():
    await protected_station()
    hex_password = PASSWORD.encode().hex()
    charger = open_charger("CP-AUTH", headers=basic_auth("CP-AUTH", hex_password))
    assert await charger.connect()
    await charger.close()


async def test_station_without_password_needs_no_credentials():
    await station_with("CP-OPEN")
    charger = open_charger("CP-OPEN")
    assert await charger.connect()
    await charger.close()


# ---- liveness and the message log ----------------------------------------------------


async def test_frames_update_last_seen_through_the_batched_log(settings):
    settings.OCPP_POOL_BOOT_STATUS = "Accepted"
    charger = open_charger("CP-SEEN")
    await charger.connect()
    await charger.boot()
    long_ago = timezone.now() - timedelta(hours=1)
    await Station.objects.filter(cbid="CP-SEEN").aupdate(last_seen=long_ago)

    await charger.call("Heartbeat", {})
    await message_log.flush()
    station = await Station.objects.aget(cbid="CP-SEEN")
    await charger.close()
    assert station.last_seen > long_ago + timedelta(minutes=59)


async def test_every_frame_in_and_out_is_logged(settings):
    settings.OCPP_POOL_BOOT_STATUS = "Accepted"
    charger = open_charger("CP-LOGALL")
    await charger.connect()
    await charger.boot()
    await charger.call("Heartbeat", {})
    await charger.call("MakeCoffee", {})
    await charger.send_raw("not json")
    await charger.receive()
    await charger.close()
    await message_log.flush()

    logged = [
        (m.direction, m.message_type, m.action, m.unique_id)
        async for m in OcppMessage.objects.order_by("id")
    ]
    assert logged == [
        ("in", 2, "BootNotification", "1"),
        ("out", 3, "BootNotification", "1"),
        ("in", 2, "Heartbeat", "2"),
        ("out", 3, "Heartbeat", "2"),
        ("in", 2, "MakeCoffee", "3"),
        ("out", 4, "MakeCoffee", "3"),
        ("in", None, "", ""),
        ("out", 4, "", "-1"),
    ]
    station = await Station.objects.aget(cbid="CP-LOGALL")
    assert await OcppMessage.objects.filter(station=station).acount() == len(logged)


async def test_a_log_row_the_database_refuses_does_not_block_the_others():
    station = await station_with("CP-GONE")
    message_log.record(station_id=station.pk + 1000, cbid="CP-GONE", direction="in", message_type=2)
    message_log.record(station_id=station.pk, cbid="CP-GONE", direction="in", message_type=2)
    await message_log.flush()  # the first row's station does not exist: a foreign-key error
    message_log.record(station_id=station.pk, cbid="CP-GONE", direction="out", message_type=3)
    await message_log.flush()
    logged = [
        m async for m in OcppMessage.objects.order_by("id").values_list("direction", flat=True)
    ]
    assert logged == ["in", "out"]


async def test_without_a_password_a_newcomer_with_another_serial_leaves_the_live_one(settings):
    """Issue 11 point 3: an impostor who knows the CBID neither displaces the charger nor
    overwrites what it told at boot, nor gets its transactions stored."""
    station = await Station.objects.acreate(
        cbid="CP-LIVE", protocol="ocpp", registration_status="Accepted", cpo=await _a_cpo()
    )
    first = open_charger("CP-LIVE")
    assert await first.connect()
    await first.boot(chargePointSerialNumber="SN-REAL")

    impostor = open_charger("CP-LIVE")
    assert await impostor.connect()
    await _answer_boot_trigger(impostor)
    reply = await impostor.boot(chargePointVendor="Evil", chargePointSerialNumber="SN-FAKE")
    assert reply[2]["status"] == "Rejected"
    start = await impostor.call(
        "StartTransaction",
        {"connectorId": 1, "idTag": "X", "meterStart": 0, "timestamp": "2026-01-01T00:00:00Z"},
    )
    assert start[0] == 4 and start[2] == "SecurityError"

    assert await first.ws.receive_nothing(timeout=0.3)
    station = await Station.objects.aget(pk=station.pk)
    assert (station.vendor, station.serial_number, station.connected) == ("Acme", "SN-REAL", True)
    assert not await Transaction.objects.filter(station=station).aexists()
    assert (await first.call("Heartbeat", {}))[0] == 3
    await impostor.close()
    assert (await Station.objects.aget(pk=station.pk)).connected
    await first.close()


async def test_without_a_password_never_mode_refuses_the_newcomer(settings):
    settings.OCPP_REPLACE_WITHOUT_PASSWORD = "never"
    await Station.objects.acreate(cbid="CP-NEVER", protocol="ocpp", serial_number="SN-1")
    first = open_charger("CP-NEVER")
    assert await first.connect()

    second = open_charger("CP-NEVER")
    assert not await second.connect()
    assert await ConnectionAttempt.objects.filter(
        reason=ConnectionAttempt.Reason.LIVE_CONNECTION
    ).aexists()
    await first.close()


async def test_an_ocpp_charger_never_matches_an_ensto_station(settings):
    """Issue 11 point 2: a CBID registered as Ensto cannot capture an OCPP charger."""
    settings.OCPP_ALLOW_UNKNOWN_STATIONS = False
    cpo = await _a_cpo()
    await Station.objects.acreate(
        cbid="SQUAT-1", protocol="ensto", cpo=cpo, registration_status="Accepted"
    )

    charger = open_charger("SQUAT-1")
    assert not await charger.connect()

    station = await Station.objects.aget(cbid="SQUAT-1")
    assert not station.connected and station.ocpp_version == ""
    assert await ConnectionAttempt.objects.filter(
        reason=ConnectionAttempt.Reason.PROTOCOL_MISMATCH, cbid="SQUAT-1"
    ).aexists()


async def _answer_boot_trigger(charger) -> None:
    trigger = await charger.receive()
    assert trigger[0] == 2 and trigger[2:] == [
        "TriggerMessage",
        {"requestedMessage": "BootNotification"},
    ]
    await charger.send_raw(json.dumps([3, trigger[1], {"status": "Accepted"}]))


async def _a_cpo():
    return await database_sync_to_async(make_cpo)("CPO Live")
