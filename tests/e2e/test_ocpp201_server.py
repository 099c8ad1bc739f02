"""OCPP 2.0.1 against the real server: daphne in a subprocess, the `ocpp` library's 2.0.1
client (the simulator's Simulator201) over `websockets`, the test database checked directly.

Commands travel from this process to daphne's through the channel layer, so the command
tests need Redis (`REDIS_URL`); without it they are skipped, saying so.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from channels.db import database_sync_to_async
from ocpp.exceptions import SecurityError
from ocpp.v201 import call as call201

from simulator import SimulatorOptions, TransactionState, open_simulator
from stations.models import (
    Command,
    IdTag,
    MeterValue,
    RegistrationStatus,
    Station,
    StationVariable,
    Transaction,
)
from stations.services.claiming import station_claim
from stations.services.commands import command_request
from tests.e2e.servers import DaphneServer
from tests.factories import make_station

pytestmark = pytest.mark.e2e

needs_redis = pytest.mark.skipif(
    not os.environ.get("REDIS_URL"),
    reason="commands reach daphne's process through the channel layer: set REDIS_URL",
)


def charger(server: DaphneServer, cbid: str, **options: Any) -> SimulatorOptions:
    return SimulatorOptions(
        cbid=cbid,
        url=server.ws_base_url,
        version="2.0.1",
        connectors=1,
        response_timeout=10,
        **options,
    )


# Not the async ORM: its thread keeps a connection open, and PostgreSQL then refuses to
# drop the test database. database_sync_to_async closes connections after each call.
db = database_sync_to_async


def quiet(line: str) -> None:
    """The simulator's play-by-play; pytest shows it (captured) when a test fails."""
    print(line)


@database_sync_to_async
def station(cbid: str) -> Station:
    return Station.objects.by_cbid(cbid).get()


async def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll a database condition the server reaches on its own time."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await database_sync_to_async(check)():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{check.__doc__ or check} did not hold within {timeout} s")
        await asyncio.sleep(0.05)


async def command_outcome(command: Command) -> Command:
    """The Command once the gateway has recorded what the charger answered."""

    def final() -> bool:
        """the command reached a final status"""
        return Command.objects.get(pk=command.pk).is_final

    await eventually(final)
    return await db(Command.objects.get)(pk=command.pk)


async def test_pool_claim_accepted_transaction(daphne_server, alice, cpo_a):
    await db(IdTag.objects.create)(cpo=cpo_a, tag="CARD-201", token_type="ISO14443")

    async with open_simulator(charger(daphne_server, "E2E-201"), output=quiet) as cp:
        # A new charger lands in the pool and may only boot.
        assert (await cp.boot())[0] == "Pending"
        pooled = await station("E2E-201")
        assert (pooled.cpo_id, pooled.ocpp_version, pooled.vendor) == (
            None,
            "2.0.1",
            "Virta Simulator",
        )
        with pytest.raises(SecurityError):
            await cp.request(call201.Heartbeat())

        # Alice adds it to CPO A; its next boot is Accepted.
        await database_sync_to_async(station_claim)(
            user=alice, protocol="ocpp", cbid="e2e-201", cpo=cpo_a
        )
        assert (await cp.boot())[0] == "Accepted"
        assert (await cp.request(call201.Heartbeat())).current_time
        await cp.report_all_statuses()
        assert await cp.authorize("CARD-201") == "Accepted"

        tx = TransactionState(
            connector_id=1,
            id_tag="CARD-201",
            meter_start=cp.state.meter_wh,
            transaction_id=str(uuid.uuid4()),
        )
        await cp.start_transaction(tx)
        for _ in range(2):
            cp.charge(60)  # a minute at 11 kW: 183 Wh
            await cp.send_meter_values(tx)
        # The charger did not hear our answer and sends the last update again.
        tx.seq_no -= 1
        await cp.send_meter_values(tx)
        tx.stop_reason = "EVDisconnected"
        await cp.stop_transaction(tx)

    claimed = await station("E2E-201")
    assert claimed.cpo_id == cpo_a.pk
    assert claimed.registration_status == RegistrationStatus.ACCEPTED
    row = await db(Transaction.objects.select_related("connector").get)(
        station=claimed, charger_transaction_id=tx.transaction_id
    )
    assert row.state == Transaction.State.ENDED
    assert (row.connector.evse_id, row.connector.connector_id) == (1, 1)
    assert (row.id_tag, row.id_tag_status) == ("CARD-201", "Accepted")
    assert (row.meter_start, row.meter_stop, row.energy_wh) == (1000, 1366, 366)
    assert row.stop_reason == "EVDisconnected"
    assert row.last_seq_no == 3
    energy = await database_sync_to_async(
        lambda: list(
            MeterValue.objects.filter(
                transaction=row, measurand="Energy.Active.Import.Register"
            ).values_list("numeric_value", flat=True)
        )
    )()
    # Begin, two periodic samples (the resent one is not stored twice), end.
    assert energy == [1000, 1183, 1366, 1366]


@needs_redis
async def test_commands_reach_the_charger_and_their_results_are_stored(daphne_server, alice, cpo_a):
    claimed = await database_sync_to_async(make_station)("E2E-CMD", cpo=cpo_a, ocpp_version="2.0.1")
    await db(IdTag.objects.create)(cpo=cpo_a, tag="REMOTE-1")

    async with open_simulator(charger(daphne_server, "E2E-CMD"), output=quiet) as cp:
        assert (await cp.boot())[0] == "Accepted"
        claimed = await station("E2E-CMD")

        async def command(kind: str, **params: Any) -> Command:
            requested = await database_sync_to_async(command_request)(
                station=claimed, kind=kind, params=params, user=alice
            )
            return await command_outcome(requested)

        # GetBaseReport: the charger answers, then sends its variables in NotifyReport.
        report = await command("get_base_report", report_base="FullInventory")
        assert (report.action, report.status) == ("GetBaseReport", "accepted")

        def reported() -> bool:
            """the NotifyReport's variables are stored"""
            return StationVariable.objects.filter(
                station_id=claimed.pk, component="ChargingStation", variable="Model"
            ).exists()

        await eventually(reported)

        # SetVariables, then GetVariables reads the new value back.
        changed = await command(
            "change_configuration", key="OCPPCommCtrlr.HeartbeatInterval", value="600"
        )
        assert (changed.action, changed.status) == ("SetVariables", "accepted")
        read = await command("get_configuration", keys=["OCPPCommCtrlr.HeartbeatInterval"])
        assert (read.action, read.status) == ("GetVariables", "accepted")
        heartbeat = await db(StationVariable.objects.get)(
            station_id=claimed.pk, component="OCPPCommCtrlr", variable="HeartbeatInterval"
        )
        assert heartbeat.value == "600"

        # RequestStartTransaction: the charger starts a session with a Central token.
        started = await command("remote_start", id_tag="REMOTE-1", evse_id=1)
        assert (started.action, started.status) == ("RequestStartTransaction", "accepted")

        def running() -> bool:
            """the remote-started transaction is recorded"""
            return Transaction.objects.filter(station_id=claimed.pk, state="active").exists()

        await eventually(running)
        tx = await db(Transaction.objects.get)(station_id=claimed.pk)
        assert (tx.id_tag, tx.id_tag_status) == ("REMOTE-1", "Accepted")

        stopped = await command("remote_stop", transaction_id=tx.charger_transaction_id)
        assert (stopped.action, stopped.status) == ("RequestStopTransaction", "accepted")

        def ended() -> bool:
            """the transaction ended remotely"""
            return Transaction.objects.filter(pk=tx.pk, state="ended").exists()

        await eventually(ended)
        assert (await db(Transaction.objects.get)(pk=tx.pk)).stop_reason == "Remote"

        reset = await command("reset", type="soft")
        assert (reset.action, reset.payload, reset.status) == (
            "Reset",
            {"type": "OnIdle"},
            "accepted",
        )
