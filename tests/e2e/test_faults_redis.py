"""Redis down: charger traffic goes on, commands fail visibly, and recover when it returns.

A Redis the test starts itself on a free port (never the shared one), two daphne
processes using it as their channel layer, and this test process sending commands as the
panel would.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time

import pytest
import websockets
from channels.db import database_sync_to_async
from channels.layers import channel_layers

from stations.models import Command, Station
from stations.services.commands import command_request_system
from tests.e2e.conftest import server_environment
from tests.e2e.servers import HOST, DaphneServer, free_port
from tests.factories import make_cpo, make_station

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


class RedisServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def start(self) -> RedisServer:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                HOST,
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import socket

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((HOST, self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None


@pytest.fixture
def redis_server():
    if subprocess.run(["which", "redis-server"], capture_output=True).returncode:
        pytest.skip("redis-server is not installed")
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture
def panel_layer(settings, redis_server):
    """This process (the panel) sends commands through the test's Redis."""
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [redis_server.url], "capacity": 1000, "expiry": 60},
        }
    }
    yield
    channel_layers.backends = {}


async def call(ws, unique_id: str, action: str, payload: dict) -> list:
    await ws.send(json.dumps([2, unique_id, action, payload]))
    return json.loads(await asyncio.wait_for(ws.recv(), 15))


def trigger(station: Station) -> Command:
    return command_request_system(
        station=station, kind="trigger_message", params={"message": "Heartbeat"}
    )


async def command_round_trip(ws, station: Station) -> Command:
    """Ask for a command and answer it as the charger; returns the finished Command."""
    command = await database_sync_to_async(trigger)(station)
    if command.status in (Command.Status.QUEUED, Command.Status.SENT):
        frame = json.loads(await asyncio.wait_for(ws.recv(), 15))
        assert frame[2] == "TriggerMessage", frame
        await ws.send(json.dumps([3, frame[1], {"status": "Accepted"}]))
        for _ in range(300):
            await command.arefresh_from_db()
            if command.status not in (Command.Status.QUEUED, Command.Status.SENT):
                break
            await asyncio.sleep(0.05)
    return command


async def charger_traffic_is_answered(ws, tag: str) -> None:
    assert (await call(ws, f"hb-{tag}", "Heartbeat", {}))[0] == 3
    started = await call(
        ws,
        f"start-{tag}",
        "StartTransaction",
        {"connectorId": 1, "idTag": "TAG-1", "meterStart": 0, "timestamp": "2026-01-01T00:00:00Z"},
    )
    assert started[0] == 3, started
    stopped = await call(
        ws,
        f"stop-{tag}",
        "StopTransaction",
        {
            "transactionId": started[2]["transactionId"],
            "meterStop": 100,
            "timestamp": "2026-01-01T00:10:00Z",
        },
    )
    assert stopped[0] == 3, stopped


async def test_charger_traffic_survives_redis_and_commands_recover(redis_server, panel_layer):
    def setup():
        return make_station("CP-REDIS", cpo=make_cpo("Redis CPO"))

    station = await database_sync_to_async(setup)()
    env = server_environment(REDIS_URL=redis_server.url)
    servers = [DaphneServer(env=env).start(), DaphneServer(env=env).start()]
    try:
        async with websockets.connect(
            servers[1].ws_url("CP-REDIS"), subprotocols=["ocpp1.6"]
        ) as ws:
            boot = await call(
                ws, "boot", "BootNotification", {"chargePointVendor": "A", "chargePointModel": "B"}
            )
            assert boot[2]["status"] == "Accepted"
            first = await command_round_trip(ws, station)
            assert first.status == Command.Status.ACCEPTED, (
                first.status,
                first.error,
                first.response,
            )

            redis_server.stop()
            await charger_traffic_is_answered(ws, "down")
            failed = await command_round_trip(ws, station)
            assert failed.status == Command.Status.ERROR
            assert "Could not reach the gateway" in failed.error

            redis_server.process = None
            RedisServer.start(redis_server)  # same port
            await charger_traffic_is_answered(ws, "back")
            deadline = time.monotonic() + 30
            while True:
                command = await command_round_trip(ws, station)
                if command.status == Command.Status.ACCEPTED or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.5)
            assert command.status == Command.Status.ACCEPTED, command.error
            assert (await Station.objects.aget(pk=station.pk)).connected
    finally:
        for server in servers:
            server.stop()
            print(f"--- daphne log ---\n{server.log_text()[-10000:]}")
            server.close()
