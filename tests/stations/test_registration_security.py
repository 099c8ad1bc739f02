"""Charger passwords: cheap hashing, old hashes, rotation confirmed by the charger."""

from __future__ import annotations

import asyncio
import base64
import json
import time

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth.hashers import make_password

from ocpp_gateway.message_log import message_log
from ocpp_spec.passwords import hash_password, needs_rehash, verify_password
from stations.models import Command, OcppMessage, Station
from stations.services.commands import command_mark_sent, command_record_result
from stations.services.passwords import station_password_rotate, station_password_set
from stations.services.refusals import ConnectionRefused
from stations.services.sessions import station_open_session
from tests.factories import make_cpo, make_station
from tests.ocpp_gateway.conftest import open_charger

OLD = "the-old-password-0001"


def login(station: Station, password: str, version: str = "1.6") -> bool:
    try:
        station_open_session(
            cbid=station.cbid,
            version=version,
            channel_name="test!1",
            credentials=(station.cbid, password),
            secure=False,
        )
    except ConnectionRefused:
        return False
    return True


# ---- hashing -----------------------------------------------------------------------------


def test_a_charger_password_hash_is_cheap_enough_for_a_fleet_reconnect():
    encoded = hash_password("a" * 24)
    started = time.perf_counter()
    for _ in range(20):
        assert verify_password("a" * 24, encoded, version="2.0.1")
    per_check = (time.perf_counter() - started) / 20
    assert per_check < 0.05  # PBKDF2 with Django's default iterations takes ~0.5 s


def test_hashes_are_salted_and_wrong_passwords_fail():
    first, second = hash_password("b" * 20), hash_password("b" * 20)
    assert first != second
    assert not verify_password("c" * 20, first, version="2.0.1")
    assert not verify_password("b" * 20, "", version="2.0.1")


def test_a_hex_encoded_password_verifies_on_16_only():
    encoded = hash_password("secret-password-16")
    hex_form = b"secret-password-16".hex()
    assert verify_password(hex_form, encoded, version="1.6")
    assert not verify_password(hex_form, encoded, version="2.0.1")


@pytest.mark.django_db
def test_an_old_pbkdf2_hash_still_verifies_and_is_replaced_by_the_cheap_one():
    station = make_station("CP-OLD", auth_password_hash=make_password(OLD), security_profile=1)
    assert needs_rehash(station.auth_password_hash)
    assert login(station, OLD)
    station.refresh_from_db()
    assert not needs_rehash(station.auth_password_hash)
    assert login(station, OLD)


@pytest.mark.django_db
def test_setting_a_password_requires_it_from_then_on():
    station = make_station("CP-SET")
    station_password_set(station=station, password="n" * 16)
    station.refresh_from_db()
    assert station.security_profile == 1
    assert not login(station, "wrong-password-00")
    assert login(station, "n" * 16)
    with pytest.raises(ValueError):
        station_password_set(station=station, password="short")


# ---- rotation ----------------------------------------------------------------------------


def connected_station(cbid: str, version: str = "1.6") -> Station:
    return make_station(
        cbid,
        cpo=make_cpo(f"CPO {cbid}"),
        registration_status="Accepted",
        ocpp_version=version,
        connected=True,
        channel_name="specific.test!1",
        auth_password_hash=hash_password(OLD),
        security_profile=1,
    )


def answer(command_id: int, station: Station, response: dict, status: str) -> None:
    assert command_mark_sent(command_id=command_id, station_id=station.pk)
    command_record_result(command_id=command_id, status=status, response=response)


@pytest.mark.django_db(transaction=True)
def test_rotation_on_16_sends_the_password_hex_encoded_and_keeps_both_until_confirmed():
    station = connected_station("CP-ROT16")
    new = station_password_rotate(station=station)
    assert 16 <= len(new) <= 40
    command = Command.objects.get(station=station)
    assert command.action == "ChangeConfiguration"
    assert command.payload == {"key": "AuthorizationKey", "value": new.encode().hex()}
    assert login(station, OLD) and login(station, new)

    answer(command.pk, station, {"status": "Accepted"}, Command.Status.ACCEPTED)

    assert login(station, new)
    assert not login(station, OLD)
    command.refresh_from_db()
    assert command.payload["value"] == "********"


@pytest.mark.django_db(transaction=True)
def test_rotation_on_201_sets_the_basic_auth_password_variable():
    station = connected_station("CP-ROT201", version="2.0.1")
    new = station_password_rotate(station=station)
    command = Command.objects.get(station=station)
    assert command.action == "SetVariables"
    (data,) = command.payload["setVariableData"]
    assert data["component"] == {"name": "SecurityCtrlr"}
    assert data["variable"] == {"name": "BasicAuthPassword"}
    assert data["attributeValue"] == new

    answer(
        command.pk,
        station,
        {
            "setVariableResult": [
                {
                    "attributeStatus": "Accepted",
                    "component": {"name": "SecurityCtrlr"},
                    "variable": {"name": "BasicAuthPassword"},
                }
            ]
        },
        Command.Status.ACCEPTED,
    )
    assert login(station, new, "2.0.1")
    assert not login(station, OLD, "2.0.1")


@pytest.mark.django_db(transaction=True)
def test_a_refused_rotation_keeps_the_old_password_only():
    station = connected_station("CP-NO")
    new = station_password_rotate(station=station)
    command = Command.objects.get(station=station)
    answer(command.pk, station, {"status": "Rejected"}, Command.Status.REJECTED)
    assert login(station, OLD)
    assert not login(station, new)


@pytest.mark.django_db(transaction=True)
def test_after_reboot_required_the_first_login_with_the_new_password_confirms_it():
    station = connected_station("CP-REBOOT")
    new = station_password_rotate(station=station)
    command = Command.objects.get(station=station)
    answer(command.pk, station, {"status": "RebootRequired"}, Command.Status.ACCEPTED)
    assert login(station, OLD)  # still valid: the charger has not rebooted yet
    assert login(station, new)
    assert not login(station, OLD)


@pytest.mark.django_db(transaction=True)
def test_an_offline_station_cannot_rotate_and_keeps_its_password():
    station = connected_station("CP-OFF")
    Station.objects.filter(pk=station.pk).update(connected=False, channel_name="")
    with pytest.raises(ValueError, match="offline"):
        station_password_rotate(station=station)
    station.refresh_from_db()
    assert station.auth_password_pending_hash == ""
    assert Command.objects.get(station=station).payload["value"] == "********"


def basic_auth(username: str, password: str) -> list[tuple[bytes, bytes]]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return [(b"authorization", f"Basic {token}".encode())]


@pytest.mark.django_db(transaction=True)
async def test_a_connected_charger_gets_its_new_password_through_the_command_path():
    def setup():
        return make_station(
            "CP-LIVE",
            cpo=make_cpo("Live"),
            registration_status="Accepted",
            auth_password_hash=hash_password(OLD),
            security_profile=1,
        )

    station = await database_sync_to_async(setup)()
    charger = open_charger("CP-LIVE", headers=basic_auth("CP-LIVE", OLD))
    assert await charger.connect()
    new = await database_sync_to_async(station_password_rotate)(station=station)
    call = await charger.receive()
    assert call[2:] == [
        "ChangeConfiguration",
        {"key": "AuthorizationKey", "value": new.encode().hex()},
    ]
    await charger.send_raw(json.dumps([3, call[1], {"status": "Accepted"}]))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        command = await Command.objects.aget(station=station)
        if command.status != Command.Status.SENT:
            break
        await message_log.flush()
        await asyncio.sleep(0.02)
    await charger.close()
    assert command.status == Command.Status.ACCEPTED
    assert await database_sync_to_async(login)(station, new)
    assert not await database_sync_to_async(login)(station, OLD)
    logged = await OcppMessage.objects.aget(
        station=station, action="ChangeConfiguration", direction="out"
    )
    assert new not in json.dumps(logged.payload) and new.encode().hex() not in json.dumps(
        logged.payload
    )
