"""Hostile and broken input on one connection: huge frames, floods, piling work, leniency."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from channels.db import database_sync_to_async

from ocpp_gateway.auth import connection_is_secure
from ocpp_gateway.handlers import charge_point_class
from ocpp_gateway.message_log import MessageLog, message_log
from ocpp_spec.close_codes import CLOSE_MESSAGE_TOO_BIG, CLOSE_POLICY_VIOLATION
from stations.models import OcppMessage
from stations.services.sessions import StationSession
from tests.factories import make_cpo, make_station
from tests.ocpp_gateway.conftest import open_charger

pytestmark = [pytest.mark.django_db(transaction=True)]

SUBPROTOCOL = {"1.6": "ocpp1.6", "2.0.1": "ocpp2.0.1"}


async def accepted_station(cbid: str, **fields):
    def setup():
        return make_station(
            cbid, cpo=make_cpo(f"CPO of {cbid}"), registration_status="Accepted", **fields
        )

    return await database_sync_to_async(setup)()


async def connected(cbid: str, version: str = "1.6", **fields):
    await accepted_station(cbid, **fields)
    charger = open_charger(cbid, subprotocols=[SUBPROTOCOL[version]])
    assert await charger.connect()
    return charger


# ---- frame size ------------------------------------------------------------------------


async def test_an_oversized_frame_closes_the_socket_with_4009_and_is_logged(settings):
    settings.OCPP_MAX_FRAME_BYTES = 1000
    charger = await connected("CP-BIG")
    await charger.send_raw(json.dumps([2, "1", "DataTransfer", {"vendorId": "x" * 2000}]))
    output = await charger.ws.receive_output(timeout=5)
    assert output == {"type": "websocket.close", "code": CLOSE_MESSAGE_TOO_BIG}
    await charger.close()
    logged = await OcppMessage.objects.filter(station__cbid="CP-BIG").alast()
    assert "over the 1000-byte limit" in logged.raw


async def test_a_frame_under_the_limit_is_answered(settings):
    settings.OCPP_MAX_FRAME_BYTES = 1000
    charger = await connected("CP-SMALL")
    reply = await charger.call("Heartbeat", {})
    await charger.close()
    assert reply[0] == 3


async def test_multibyte_characters_count_as_bytes(settings):
    settings.OCPP_MAX_FRAME_BYTES = 1000
    charger = await connected("CP-UTF8")
    # 400 characters, 1,600 bytes of UTF-8.
    await charger.send_raw(json.dumps([2, "1", "Heartbeat", {"x": "😀" * 400}], ensure_ascii=False))
    output = await charger.ws.receive_output(timeout=5)
    await charger.close()
    assert output == {"type": "websocket.close", "code": CLOSE_MESSAGE_TOO_BIG}


# ---- rate limit --------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_calls_over_the_rate_get_generic_error_and_a_flood_is_disconnected(settings, version):
    settings.OCPP_RATE_LIMIT_PER_SECOND = 0.001  # no refill during the test
    settings.OCPP_RATE_LIMIT_BURST = 5
    settings.OCPP_RATE_LIMIT_STRIKES = 5
    charger = await connected(f"CP-FLOOD-{version}", version)
    for _ in range(5):
        assert (await charger.call("Heartbeat", {}))[0] == 3
    for _ in range(4):
        reply = await charger.call("Heartbeat", {})
        assert reply[0] == 4
        assert reply[2:4] == ["GenericError", "Rate limit exceeded"]
    await charger.send_raw(json.dumps([2, "last", "Heartbeat", {}]))
    output = await charger.ws.receive_output(timeout=5)
    await charger.close()
    assert output == {"type": "websocket.close", "code": CLOSE_POLICY_VIOLATION}


async def test_frames_over_the_rate_are_not_written_to_the_message_log(settings):
    settings.OCPP_RATE_LIMIT_PER_SECOND = 0.001
    settings.OCPP_RATE_LIMIT_BURST = 2
    settings.OCPP_RATE_LIMIT_STRIKES = 1000
    charger = await connected("CP-QUIET")
    for _ in range(20):
        await charger.call("Heartbeat", {})
    await charger.close()
    logged_in = await OcppMessage.objects.filter(station__cbid="CP-QUIET", direction="in").acount()
    assert logged_in == 2


async def test_a_charger_within_the_rate_is_never_refused(settings):
    settings.OCPP_RATE_LIMIT_PER_SECOND = 100
    settings.OCPP_RATE_LIMIT_BURST = 5
    charger = await connected("CP-POLITE")
    replies = []
    for _ in range(30):
        replies.append(await charger.call("Heartbeat", {}))
        await asyncio.sleep(0.015)
    await charger.close()
    assert {reply[0] for reply in replies} == {3}


# ---- bounded work per connection ----------------------------------------------------------


class Wire:
    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send(self, text: str) -> None:
        self.sent.append(text)

    async def close(self, code: int | None = None) -> None:
        pass


async def bare_charge_point(version: str = "1.6"):
    station = await accepted_station(f"CP-BARE-{version}")
    context = StationSession(
        station_id=station.pk,
        cbid=station.cbid,
        version=version,
        registration_status="Pending",
        cpo_id=station.cpo_id,
    )
    return charge_point_class(version)(context, Wire(), log=MessageLog(), call_timeout=1)


async def test_background_work_beyond_the_cap_is_dropped(settings):
    settings.OCPP_MAX_TASKS_PER_CONNECTION = 3
    charge_point = await bare_charge_point()
    gate = asyncio.Event()
    tasks = [charge_point.spawn(gate.wait(), f"wait {i}") for i in range(5)]
    assert [task is not None for task in tasks] == [True, True, True, False, False]
    assert len(charge_point._tasks) == 3
    gate.set()
    await asyncio.gather(*[t for t in tasks if t is not None])
    # Room again once work finished.
    assert charge_point.spawn(asyncio.sleep(0), "later") is not None
    charge_point.close()


async def test_unanswered_triggers_do_not_bank_unlimited_passes():
    charge_point = await bare_charge_point()
    for _ in range(5):
        with pytest.raises(TimeoutError):
            await charge_point.send_call(
                "TriggerMessage", {"requestedMessage": "StatusNotification"}, timeout=0.01
            )
    # A trigger the charger never answered lets nothing through.
    assert not charge_point.admission.expects("StatusNotification")
    assert charge_point._pending == {}


async def test_remembered_message_ids_stay_bounded():
    charge_point = await bare_charge_point()
    charge_point.rate_limit.bucket.burst = charge_point.rate_limit.bucket.tokens = 10_000
    for i in range(1000):
        await charge_point.route_message(json.dumps([2, f"id-{i}", "BootNotification", {}]))
    assert len(charge_point._seen_ids) <= 256


# ---- real-firmware leniency ---------------------------------------------------------------

ODD_CALLS = {
    # An unknown extra field, and an over-long string in a field that is not cosmetic.
    "1.6": [
        ("Heartbeat", {"vendorExtra": "x"}, "FormationViolation"),
        ("Authorize", {"idTag": "T" * 30}, "TypeConstraintViolation"),
    ],
    "2.0.1": [
        ("Heartbeat", {"vendorExtra": "x"}, "FormatViolation"),
        (
            "Authorize",
            {"idToken": {"idToken": "T" * 50, "type": "ISO14443"}},
            "TypeConstraintViolation",
        ),
    ],
}


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_strict_stations_refuse_unknown_fields_and_over_long_strings(version):
    charger = await connected(f"CP-STRICT-{version}", version)
    codes = []
    for action, payload, _code in ODD_CALLS[version]:
        codes.append((await charger.call(action, payload))[2])
    await charger.close()
    assert codes == [code for _a, _p, code in ODD_CALLS[version]]


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_lenient_stations_accept_and_log_unknown_fields_and_over_long_strings(
    version, caplog
):
    charger = await connected(f"CP-LENIENT-{version}", version, lenient_validation=True)
    with caplog.at_level(logging.INFO, logger="ocpp_gateway.protocol"):
        replies = [await charger.call(action, payload) for action, payload, _ in ODD_CALLS[version]]
    await charger.close()
    assert [reply[0] for reply in replies] == [3, 3]
    logged = caplog.text
    assert "ignored unknown fields in Heartbeat" in logged
    assert "accepted over-long" in logged


# ---- TLS detection ------------------------------------------------------------------------


def test_a_scope_with_a_wss_scheme_is_secure():
    assert connection_is_secure({"scheme": "wss"})


def test_daphne_scopes_have_no_scheme_and_are_plain_by_default(settings):
    settings.OCPP_TLS_PORTS = []
    settings.OCPP_TRUST_X_FORWARDED_PROTO = False
    scope = {"server": ["127.0.0.1", 8443], "headers": [(b"x-forwarded-proto", b"https")]}
    assert not connection_is_secure(scope)


def test_a_connection_on_a_tls_port_is_secure(settings):
    settings.OCPP_TLS_PORTS = [8443]
    assert connection_is_secure({"server": ["127.0.0.1", 8443], "headers": []})
    assert not connection_is_secure({"server": ["127.0.0.1", 8000], "headers": []})


def test_the_proxys_forwarded_proto_counts_only_when_trusted(settings):
    settings.OCPP_TLS_PORTS = []
    settings.OCPP_TRUST_X_FORWARDED_PROTO = True
    assert connection_is_secure({"headers": [(b"x-forwarded-proto", b"https")]})
    assert not connection_is_secure({"headers": [(b"x-forwarded-proto", b"http")]})
    assert not connection_is_secure({"headers": []})


async def test_message_log_never_stores_a_password_sent_to_a_charger():
    log = MessageLog()
    log.record(
        station_id=None,
        cbid="CP-1",
        direction="out",
        message_type=2,
        action="ChangeConfiguration",
        unique_id="1",
        payload={"key": "AuthorizationKey", "value": "7365637265742d70617373776f7264"},
    )
    assert json.loads(log._rows[0].payload) == {"key": "AuthorizationKey", "value": "********"}
    await message_log.flush()
