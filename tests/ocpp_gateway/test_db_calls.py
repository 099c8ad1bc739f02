"""The gateway's database calls run in parallel (ocpp_gateway/db.py), not on one thread."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest
from django.db import connection

from ocpp_gateway.db import db_call
from stations.services.boot import BootDecision
from tests.ocpp_gateway.conftest import open_charger

# Database access allowed: each call closes its thread's stale connection first, as
# channels' database_sync_to_async does.
pytestmark = [pytest.mark.django_db(transaction=True)]


async def test_two_calls_run_at_the_same_time():
    # Each call waits for the other: on one thread the barrier would time out.
    barrier = threading.Barrier(2, timeout=5)

    def meet() -> str:
        barrier.wait()
        return threading.current_thread().name

    names = await asyncio.gather(db_call(meet), db_call(meet))
    assert all(name.startswith("ocpp-db") for name in names)


async def test_exceptions_reach_the_caller():
    def fail(*, why: str) -> None:
        raise ValueError(why)

    with pytest.raises(ValueError, match="because"):
        await db_call(fail, why="because")


async def test_the_calls_close_their_connections():
    def query() -> bool:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return connection.connection is not None

    def still_open() -> bool:
        return connection.connection is not None

    assert await db_call(query)
    assert not await db_call(still_open)


async def test_two_chargers_boot_at_the_same_time(monkeypatch):
    """One charger's slow boot does not hold up another's: both handlers' calls overlap."""
    barrier = threading.Barrier(2, timeout=5)

    def slow_boot(*, station_id: int, info) -> BootDecision:
        barrier.wait()
        return BootDecision(status="Accepted", interval=300)

    monkeypatch.setattr("ocpp_gateway.takeover.station_boot", slow_boot)
    chargers = [open_charger(f"CP-PAR-{i}") for i in range(2)]
    for charger in chargers:
        assert await charger.connect()
    boot = {"chargePointVendor": "Acme", "chargePointModel": "Fast 22"}
    for charger in chargers:
        await charger.send_raw(json.dumps([2, "1", "BootNotification", boot]))
    replies = [await charger.receive() for charger in chargers]
    for charger in chargers:
        await charger.close()
    assert [reply[2]["status"] for reply in replies] == ["Accepted", "Accepted"]


async def test_frames_do_not_hop_to_the_sync_thread(monkeypatch):
    """Channels' dispatch would run close_old_connections on its one sync thread per frame."""
    hops = []

    async def counted() -> None:
        hops.append(1)

    monkeypatch.setattr("channels.consumer.aclose_old_connections", counted)
    charger = open_charger("CP-NO-HOP")
    assert await charger.connect()
    await charger.boot()
    await charger.call("Heartbeat", {})
    await charger.close()
    assert hops == []
