"""A daphne process killed with -9: its chargers move on, its stations do not stay online.

Two daphne processes on the test database, with a short liveness interval. Station A1
reconnects to the surviving process and keeps working; A2 never comes back and is
marked offline by the survivor's sweep (last_seen stopped moving).
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import websockets
from channels.db import database_sync_to_async

from stations.models import Station
from tests.e2e.conftest import server_environment
from tests.e2e.servers import DaphneServer
from tests.factories import make_cpo, make_station

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

LIVENESS = {"OCPP_LIVENESS_INTERVAL": "0.5", "OCPP_LIVENESS_STALE_AFTER": "2"}


async def call(ws, unique_id: str, action: str, payload: dict) -> list:
    await ws.send(json.dumps([2, unique_id, action, payload]))
    return json.loads(await asyncio.wait_for(ws.recv(), 10))


async def boot(ws) -> list:
    return await call(
        ws, "boot", "BootNotification", {"chargePointVendor": "A", "chargePointModel": "B"}
    )


async def station(cbid: str) -> Station:
    return await Station.objects.aget(cbid=cbid)


async def until(check, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.1)
    return False


async def test_chargers_of_a_killed_process_reconnect_and_its_stations_go_offline():
    def setup():
        cpo = make_cpo("Fleet")
        for cbid in ("A1", "A2"):
            make_station(cbid, cpo=cpo)

    await database_sync_to_async(setup)()
    first = DaphneServer(env=server_environment(**LIVENESS)).start()
    second = DaphneServer(env=server_environment(**LIVENESS)).start()
    try:
        a1 = await websockets.connect(first.ws_url("A1"), subprotocols=["ocpp1.6"])
        a2 = await websockets.connect(first.ws_url("A2"), subprotocols=["ocpp1.6"])
        assert (await boot(a1))[2]["status"] == "Accepted"
        assert (await boot(a2))[2]["status"] == "Accepted"
        assert (await station("A2")).connected

        first.process.kill()  # SIGKILL: no disconnect handler runs
        first.process.wait(10)
        for ws in (a1, a2):
            try:
                await ws.close()
            except Exception:
                pass

        # A1's charger reconnects to the surviving process and works there.
        async with websockets.connect(second.ws_url("A1"), subprotocols=["ocpp1.6"]) as ws:
            assert (await call(ws, "hb", "Heartbeat", {}))[0] == 3

            async def a2_offline() -> bool:
                return not (await station("A2")).connected

            assert await until(a2_offline), "A2 still shown online"
            a1 = await station("A1")
            assert a1.connected and a1.channel_name
            # A1 stays online while its socket lives, though it says nothing.
            await asyncio.sleep(2.0)
            assert (await station("A1")).connected
        a2_row = await station("A2")
        assert a2_row.channel_name == "" and a2_row.disconnected_at is not None
    finally:
        for server in (first, second):
            server.stop()
            print(f"--- daphne log ---\n{server.log_text()[-10000:]}")
            server.close()
