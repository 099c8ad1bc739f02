"""OCPP 1.6J against the real server: daphne in a subprocess, the `ocpp` library's client
(the simulator's ChargePoint) over `websockets`, the test database checked directly."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest
from channels.db import database_sync_to_async
from ocpp.exceptions import SecurityError
from ocpp.v16 import call as call16

from ocpp_spec.passwords import hash_password
from simulator import (
    CLOSE_REPLACED,
    HandshakeRefused,
    SimulatorOptions,
    TransactionState,
    open_simulator,
)
from stations.models import (
    ConnectionAttempt,
    IdTag,
    MeterValue,
    RegistrationStatus,
    Station,
    Transaction,
)
from stations.services.claiming import station_assign
from tests.e2e.conftest import server_environment
from tests.e2e.servers import PROJECT_DIR, DaphneServer
from tests.factories import make_station

pytestmark = pytest.mark.e2e

PASSWORD = "charger-secret-0123"  # 19 characters: within 16..40


def charger(server: DaphneServer, cbid: str, **options: Any) -> SimulatorOptions:
    return SimulatorOptions(cbid=cbid, url=server.ws_base_url, response_timeout=10, **options)


def quiet(line: str) -> None:
    """The simulator's play-by-play; pytest shows it (captured) when a test fails."""
    print(line)


@database_sync_to_async
def station(cbid: str) -> Station:
    return Station.objects.by_cbid(cbid).get()


async def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll a database condition the server reaches on its own time (disconnects, batches)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await database_sync_to_async(check)():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{check.__doc__ or check} did not hold within {timeout} s")
        await asyncio.sleep(0.05)


async def test_a_new_charger_boots_pending_and_lands_in_the_pool(daphne_server):
    async with open_simulator(charger(daphne_server, "POOL-1"), output=quiet) as cp:
        status, interval = await cp.boot()

        assert (status, interval) == ("Pending", 60)
        pooled = await station("POOL-1")
        assert pooled.cpo_id is None
        assert pooled.name.startswith("Created ")
        assert pooled.registration_status == RegistrationStatus.PENDING
        assert (pooled.vendor, pooled.model) == ("Virta Simulator", "SIM-22")
        assert pooled.ocpp_version == "1.6"
        assert pooled.connected
        assert await database_sync_to_async(
            Station.objects.in_pool().filter(cbid="POOL-1").exists
        )()


async def test_a_pending_station_may_only_boot(daphne_server):
    async with open_simulator(charger(daphne_server, "POOL-2"), output=quiet) as cp:
        await cp.boot()

        with pytest.raises(SecurityError):
            await cp.request(call16.Heartbeat())


async def test_an_assigned_station_boots_accepted(daphne_server, cpo_a):
    async with open_simulator(charger(daphne_server, "CLAIM-1"), output=quiet) as cp:
        assert (await cp.boot())[0] == "Pending"

        pooled = await station("CLAIM-1")
        await database_sync_to_async(station_assign)(
            station=pooled, cpo=cpo_a, by=None, source="cli"
        )

        status, interval = await cp.boot()
        assert (status, interval) == ("Accepted", 300)
        # Accepted now: other requests are answered.
        assert (await cp.request(call16.Heartbeat())).current_time
    claimed = await station("CLAIM-1")
    assert claimed.cpo_id == cpo_a.pk
    assert claimed.registration_status == RegistrationStatus.ACCEPTED


async def test_a_whole_transaction_with_meter_values(daphne_server, cpo_a):
    await database_sync_to_async(make_station)("TX-1", cpo=cpo_a)
    await database_sync_to_async(IdTag.objects.create)(cpo=cpo_a, tag="TAG-1")

    async with open_simulator(charger(daphne_server, "TX-1"), output=quiet) as cp:
        assert (await cp.boot())[0] == "Accepted"
        await cp.report_all_statuses()
        assert await cp.authorize("TAG-1") == "Accepted"

        tx = TransactionState(connector_id=1, id_tag="TAG-1", meter_start=cp.state.meter_wh)
        await cp.start_transaction(tx)
        assert isinstance(tx.transaction_id, int)
        for _ in range(3):
            cp.charge(60)  # a minute at 11 kW: 183 Wh
            await cp.send_meter_values(tx)
        tx.stop_reason = "Local"
        await cp.stop_transaction(tx)

    row = await database_sync_to_async(Transaction.objects.get)(pk=tx.transaction_id)
    assert row.state == Transaction.State.ENDED
    assert (row.meter_start, row.meter_stop) == (1000, 1000 + 3 * 183)
    assert row.energy_wh == 3 * 183
    assert row.id_tag == "TAG-1"
    assert row.stop_reason == "Local"
    energy = await database_sync_to_async(
        lambda: list(
            MeterValue.objects.filter(
                transaction=row, measurand="Energy.Active.Import.Register"
            ).values_list("numeric_value", flat=True)
        )
    )()
    # Three periodic samples, then the one in StopTransaction's transactionData.
    assert energy == [1183, 1366, 1549, 1549]


async def test_an_unknown_id_tag_is_invalid(daphne_server, cpo_a):
    await database_sync_to_async(make_station)("TX-2", cpo=cpo_a)

    async with open_simulator(charger(daphne_server, "TX-2"), output=quiet) as cp:
        await cp.boot()
        assert await cp.authorize("NOBODY") == "Invalid"


async def test_a_reconnect_finds_the_same_station_whatever_the_case(daphne_server):
    async with open_simulator(charger(daphne_server, "Case-1"), output=quiet) as cp:
        await cp.boot()
    first = await station("Case-1")

    def offline() -> bool:
        """the station is marked offline"""
        return not Station.objects.get(pk=first.pk).connected

    await eventually(offline)

    async with open_simulator(charger(daphne_server, "CASE-1"), output=quiet) as cp:
        assert (await cp.boot())[0] == "Pending"
        again = await station("case-1")
        assert again.pk == first.pk
        assert again.cbid == "Case-1"
        assert again.connected
    assert await database_sync_to_async(Station.objects.by_cbid("case-1").count)() == 1


async def test_a_second_connection_replaces_the_first(daphne_server, cpo_a):
    await database_sync_to_async(make_station)("DUP-1", cpo=cpo_a)

    async with open_simulator(charger(daphne_server, "DUP-1"), output=quiet) as first:
        assert (await first.boot())[0] == "Accepted"
        async with open_simulator(charger(daphne_server, "DUP-1"), output=quiet) as second:
            # No password: the newcomer takes over once it boots with the same serial number.
            assert (await second.boot())[0] == "Accepted"
            await asyncio.wait_for(first._connection.wait_closed(), 5)
            assert first._connection.close_code == CLOSE_REPLACED

            # The first connection's disconnect did not mark the station offline.
            await asyncio.sleep(0.3)
            assert (await station("DUP-1")).connected
            assert (await second.request(call16.Heartbeat())).current_time
            assert (await station("DUP-1")).connected


async def test_basic_auth_refuses_a_missing_or_wrong_password(daphne_server):
    await database_sync_to_async(make_station)(
        "AUTH-1", auth_password_hash=hash_password(PASSWORD), security_profile=1
    )

    with pytest.raises(HandshakeRefused):
        async with open_simulator(charger(daphne_server, "AUTH-1"), output=quiet):
            pass
    with pytest.raises(HandshakeRefused):
        options = charger(daphne_server, "AUTH-1", password="wrong-password-0123")
        async with open_simulator(options, output=quiet):
            pass

    reasons = await database_sync_to_async(
        lambda: list(ConnectionAttempt.objects.filter(cbid="AUTH-1").values_list("reason", "count"))
    )()
    # A missing password is no guess (never counted towards a lock-out); a wrong one is.
    assert sorted(reasons) == [
        (ConnectionAttempt.Reason.BAD_PASSWORD, 1),
        (ConnectionAttempt.Reason.NO_CREDENTIALS, 1),
    ]
    assert not (await station("AUTH-1")).connected


@pytest.mark.parametrize(
    "password", [PASSWORD, PASSWORD.encode().hex()], ids=["plain", "hex-encoded"]
)
async def test_basic_auth_accepts_the_right_password(daphne_server, password):
    await database_sync_to_async(make_station)(
        "AUTH-2", auth_password_hash=hash_password(PASSWORD), security_profile=1
    )

    options = charger(daphne_server, "AUTH-2", password=password)
    async with open_simulator(options, output=quiet) as cp:
        assert (await cp.boot())[0] == "Pending"
        assert (await station("AUTH-2")).connected
    assert not await database_sync_to_async(ConnectionAttempt.objects.exists)()


def test_simulate_charger_command_lands_in_the_pool(daphne_server):
    completed = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "simulate_charger",
            "SIM-CMD-1",
            "--url",
            daphne_server.ws_base_url,
            "--duration",
            "2",
        ],
        cwd=PROJECT_DIR,
        env=os.environ | server_environment(),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert completed.returncode == 0, completed.stderr
    assert "BootNotification result" in completed.stdout
    assert "Last registration status: Pending" in completed.stdout
    pooled = Station.objects.by_cbid("SIM-CMD-1").get()
    assert pooled.cpo_id is None
    assert pooled.vendor == "Virta Simulator"


def test_simulate_charger_charges_and_stops_cleanly_on_ctrl_c(daphne_server, cpo_a):
    make_station("SIM-CMD-2", cpo=cpo_a)
    IdTag.objects.create(cpo=cpo_a, tag="TAG-2")
    process = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "simulate_charger",
            "SIM-CMD-2",
            "--url",
            daphne_server.ws_base_url,
            "--transaction",
            "--id-tag",
            "TAG-2",
            "--meter-interval",
            "0.2",
        ],
        cwd=PROJECT_DIR,
        env=os.environ | server_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while not MeterValue.objects.filter(transaction__station__cbid="SIM-CMD-2").exists():
            assert time.monotonic() < deadline, "no meter values within 20 s"
            assert process.poll() is None, process.communicate()
            time.sleep(0.1)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()

    assert process.returncode == 0, stderr
    assert "stopped (Local)" in stdout
    charged = Transaction.objects.get(station__cbid="SIM-CMD-2")
    assert charged.state == Transaction.State.ENDED
    assert charged.stop_reason == "Local"
    assert charged.energy_wh > 0
