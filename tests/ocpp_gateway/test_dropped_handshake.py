"""A socket daphne dropped while its session was opening does not leave the station online."""

from __future__ import annotations

import asyncio
import threading

import pytest

from ocpp_gateway import liveness
from stations.models import Station
from stations.services import sessions
from tests.ocpp_gateway.conftest import open_charger

pytestmark = [pytest.mark.django_db(transaction=True)]


async def opened_then_closed(cbid: str) -> Station | None:
    """The station once its session was opened and closed again (None if that never comes)."""
    for _ in range(100):
        station = await Station.objects.filter(cbid=cbid).afirst()
        if station is not None and station.connected_at is not None and not station.connected:
            return station
        await asyncio.sleep(0.05)
    return None


async def test_a_handshake_killed_while_the_session_opens_closes_it_again(monkeypatch):
    started, release = threading.Event(), threading.Event()

    def slow_open(**kwargs):
        started.set()
        release.wait(5)
        return sessions.station_open_session(**kwargs)

    monkeypatch.setattr("ocpp_gateway.consumers.station_open_session", slow_open)
    charger = open_charger("CP-DROPPED")
    await charger.ws.send_input({"type": "websocket.connect"})
    assert await asyncio.to_thread(started.wait, 5)
    # What daphne does to an application whose socket is gone after its close timeout.
    charger.ws.future.cancel()
    release.set()
    station = await opened_then_closed("CP-DROPPED")
    assert station is not None
    assert station.channel_name == ""


async def test_a_socket_dropped_while_the_session_opens_ends_offline(monkeypatch):
    started, release = threading.Event(), threading.Event()

    def slow_open(**kwargs):
        started.set()
        release.wait(5)
        return sessions.station_open_session(**kwargs)

    monkeypatch.setattr("ocpp_gateway.consumers.station_open_session", slow_open)
    charger = open_charger("CP-GONE")
    await charger.ws.send_input({"type": "websocket.connect"})
    assert await asyncio.to_thread(started.wait, 5)
    # Daphne dropped the handshake (connect timeout): the disconnect waits behind connect().
    await charger.ws.send_input({"type": "websocket.disconnect", "code": 1006})
    release.set()
    await asyncio.wait_for(charger.ws.future, 5)
    station = await opened_then_closed("CP-GONE")
    assert station is not None


async def test_a_connected_consumer_killed_without_a_disconnect_goes_offline():
    charger = open_charger("CP-KILLED")
    assert await charger.connect()
    charger.ws.future.cancel()
    station = await opened_then_closed("CP-KILLED")
    assert station is not None
    assert liveness.live_stations() == {}
