"""`make run` starting beside a running server on the same database: its start-up sweep
leaves the running server's chargers online."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from simulator import SimulatorOptions, open_simulator
from stations.models import Station
from tests.e2e.conftest import server_environment
from tests.e2e.servers import PROJECT_DIR
from tests.factories import make_station

pytestmark = pytest.mark.e2e

# The running server refreshes last_seen of its chargers every second (and sweeps only
# stations unseen for 1000 s itself: the left-over below is the start-up sweep's to find).
LIVENESS = {"OCPP_LIVENESS_INTERVAL": "1", "OCPP_LIVENESS_STALE_AFTER": "1000"}


@pytest.fixture
def daphne_env() -> dict[str, str]:
    return LIVENESS


def sweep_at_start_up() -> str:
    """What `make run` runs before its daphne starts, as another process."""
    completed = subprocess.run(
        [sys.executable, "manage.py", "sweep_stale_connections", "--unheld"],
        cwd=PROJECT_DIR,
        env=os.environ | server_environment(**LIVENESS),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


async def test_a_second_start_keeps_the_running_servers_chargers_online(daphne_server):
    await database_sync_to_async(make_station)(
        "LEFT-OVER",
        connected=True,
        channel_name="x!1",
        last_seen=timezone.now() - timedelta(minutes=5),
    )
    options = SimulatorOptions(cbid="HELD-1", url=daphne_server.ws_base_url, response_timeout=10)
    async with open_simulator(options, output=print) as charger:
        await charger.boot()
        # Long past its connect time: only the server's refresh keeps last_seen recent.
        await asyncio.sleep(3)

        output = await asyncio.to_thread(sweep_at_start_up)

        held = await Station.objects.aget(cbid="HELD-1")
        left = await Station.objects.aget(cbid="LEFT-OVER")
    assert "Marked 1 stale" in output
    assert held.connected
    assert not left.connected
