"""Issue 11 points 2 and 3 through the real server (daphne + autobahn): a CBID chosen as
Ensto cannot capture an OCPP charger, a password-less station keeps its live connection
against an impostor, and a claimed charger gets a password it then logs in with."""

from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async
from ocpp.exceptions import SecurityError
from ocpp.v16 import call as call16

from simulator import CLOSE_REPLACED, HandshakeRefused, open_simulator
from stations.models import (
    Command,
    ConnectionAttempt,
    OcppMessage,
    Protocol,
    Station,
    Transaction,
)
from stations.services.claiming import station_claim
from stations.services.passwords import station_password_issue
from tests.e2e.test_ocpp16_server import charger, eventually, quiet, station
from tests.factories import make_station

pytestmark = pytest.mark.e2e


@pytest.fixture
def daphne_env() -> dict[str, str]:
    # The pool is closed: a squatted CBID must not slip in through the pool either.
    return {"OCPP_ALLOW_UNKNOWN_STATIONS": "0"}


async def test_an_ensto_cbid_chosen_first_cannot_capture_an_ocpp_charger(
    daphne_server, alice, cpo_a
):
    squat = await database_sync_to_async(station_claim)(
        user=alice, protocol=Protocol.ENSTO, cbid="VICTIM-1"
    )
    assert squat.cpo_id == cpo_a.pk

    with pytest.raises(HandshakeRefused):
        async with open_simulator(charger(daphne_server, "VICTIM-1"), output=quiet):
            pass

    squatted = await station("VICTIM-1")
    assert not squatted.connected and not squatted.last_boot_at and squatted.vendor == ""
    assert await database_sync_to_async(
        ConnectionAttempt.objects.filter(
            cbid="VICTIM-1", reason=ConnectionAttempt.Reason.PROTOCOL_MISMATCH
        ).exists
    )()


async def test_an_impostor_neither_displaces_a_passwordless_charger_nor_writes(
    daphne_server, cpo_a
):
    await database_sync_to_async(make_station)("NOPW-1", cpo=cpo_a)
    async with open_simulator(charger(daphne_server, "NOPW-1"), output=quiet) as real:
        assert (await real.boot())[0] == "Accepted"
        impostor_options = charger(
            daphne_server, "NOPW-1", vendor="Evil Inc", serial_number="STOLEN-CBID"
        )
        async with open_simulator(impostor_options, output=quiet) as impostor:
            assert (await impostor.boot())[0] == "Rejected"
            with pytest.raises(SecurityError):
                await impostor.request(
                    call16.StartTransaction(
                        connector_id=1,
                        id_tag="ANY",
                        meter_start=0,
                        timestamp="2026-01-01T00:00:00Z",
                    )
                )
            # The real charger is still the station's connection.
            assert (await real.request(call16.Heartbeat())).current_time
        assert (await real.request(call16.Heartbeat())).current_time
        kept = await station("NOPW-1")
        assert kept.connected
        assert (kept.vendor, kept.serial_number) == ("Virta Simulator", "SIM-0001")
        assert not await database_sync_to_async(Transaction.objects.filter(station=kept).exists)()


async def test_a_reconnect_with_the_same_serial_replaces_the_live_connection(daphne_server, cpo_a):
    await database_sync_to_async(make_station)("NOPW-2", cpo=cpo_a)
    async with open_simulator(charger(daphne_server, "NOPW-2"), output=quiet) as first:
        assert (await first.boot())[0] == "Accepted"
        async with open_simulator(charger(daphne_server, "NOPW-2"), output=quiet) as second:
            assert (await second.boot())[0] == "Accepted"
            await asyncio.wait_for(first._connection.wait_closed(), 5)
            assert first._connection.close_code == CLOSE_REPLACED
            assert (await second.request(call16.Heartbeat())).current_time
            assert (await station("NOPW-2")).connected


async def test_a_claimed_charger_gets_a_password_and_shows_none_yet_until_it_uses_it(
    daphne_server, alice, cpo_a
):
    options = charger(daphne_server, "CLAIMPW-1")
    await database_sync_to_async(make_station)("CLAIMPW-1")  # in the pool, no password
    async with open_simulator(options, output=quiet) as cp:
        assert (await cp.boot())[0] == "Pending"
        claimed = await database_sync_to_async(station_claim)(
            user=alice, protocol=Protocol.OCPP, cbid="CLAIMPW-1"
        )
        issued = await database_sync_to_async(station_password_issue)(station=claimed, user=alice)
        assert issued.sent_to_charger

        def confirmed() -> bool:
            """the charger accepted its password"""
            row = Station.objects.get(cbid="CLAIMPW-1")
            return bool(row.auth_password_hash) and not row.auth_password_pending_hash

        await eventually(confirmed, timeout=10)
        assert options.password == issued.password
        assert (await station("CLAIMPW-1")).auth_password_used_at is None
        # The password never shows in the command history once answered.
        command = await database_sync_to_async(
            Command.objects.filter(station=claimed, action="ChangeConfiguration").get
        )()
        assert issued.password.encode().hex() not in str(command.payload)

        def logged() -> bool:
            """the ChangeConfiguration frame is in the station log"""
            return OcppMessage.objects.filter(
                station=claimed, action="ChangeConfiguration", direction="out"
            ).exists()

        await eventually(logged, timeout=10)
        # Nor in the station log: the frame as stored has the value blanked out.
        frames = await database_sync_to_async(
            lambda: [str(m.payload) for m in OcppMessage.objects.filter(station=claimed)]
        )()
        assert frames and not any(issued.password.encode().hex() in f for f in frames)
        assert not any(issued.password in f for f in frames)

    async with open_simulator(options, output=quiet) as cp:
        assert (await cp.boot())[0] == "Accepted"
    assert (await station("CLAIMPW-1")).auth_password_used_at is not None
