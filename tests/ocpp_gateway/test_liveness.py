"""Stale connection state: stations of a dead process do not stay online."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from io import StringIO

import pytest
from channels.db import database_sync_to_async
from django.core.management import call_command
from django.utils import timezone

from ocpp_gateway import liveness
from stations.models import Command, Station
from stations.services import liveness as liveness_service
from tests.factories import make_cpo, make_station
from tests.ocpp_gateway.conftest import open_charger

pytestmark = [pytest.mark.django_db(transaction=True)]


def long_ago() -> object:
    return timezone.now() - timedelta(hours=1)


async def orphan(cbid: str) -> Station:
    """A station its (dead) process left marked connected."""
    return await database_sync_to_async(make_station)(
        cbid, connected=True, channel_name="specific.dead!1", last_seen=long_ago()
    )


async def live_charger(cbid: str):
    await database_sync_to_async(make_station)(
        cbid, cpo=await database_sync_to_async(make_cpo)(f"CPO {cbid}")
    )
    charger = open_charger(cbid)
    assert await charger.connect()
    return charger


async def test_a_tick_marks_orphans_offline_and_keeps_live_stations_online():
    await orphan("CP-ORPHAN")
    charger = await live_charger("CP-LIVE")
    # The live station has not said anything for an hour either.
    await Station.objects.filter(cbid="CP-LIVE").aupdate(last_seen=long_ago())
    swept = await liveness.tick()
    live = await Station.objects.aget(cbid="CP-LIVE")
    gone = await Station.objects.aget(cbid="CP-ORPHAN")
    await charger.close()
    assert swept == 1
    assert (gone.connected, gone.channel_name) == (False, "")
    assert gone.disconnected_at is not None
    assert live.connected is True
    assert live.last_seen > timezone.now() - timedelta(minutes=1)


async def test_a_tick_finishes_commands_whose_outcome_can_no_longer_come(settings):
    settings.OCPP_CALL_TIMEOUT = 30
    station = await orphan("CP-GONE")
    stuck = await Command.objects.acreate(
        station=station, action="Reset", payload={}, status="sent", sent_at=long_ago()
    )
    await Command.objects.filter(pk=stuck.pk).aupdate(created_at=long_ago())
    await liveness.tick()
    stuck = await Command.objects.aget(pk=stuck.pk)
    assert stuck.status == Command.Status.TIMED_OUT


async def test_a_live_station_swept_while_the_database_was_away_comes_back_online():
    charger = await live_charger("CP-BACK")
    channel = (await Station.objects.aget(cbid="CP-BACK")).channel_name
    await Station.objects.filter(cbid="CP-BACK").aupdate(connected=False, channel_name="")
    await liveness.tick()
    station = await Station.objects.aget(cbid="CP-BACK")
    await charger.close()
    assert (station.connected, station.channel_name) == (True, channel)


async def test_the_periodic_task_runs_while_chargers_are_connected(settings):
    settings.OCPP_LIVENESS_INTERVAL = 0.05
    # 1 s: a round's refresh and sweep are two database calls, which a loaded machine may
    # space by more than two 50 ms intervals (the live station would be swept, then revived).
    settings.OCPP_LIVENESS_STALE_AFTER = 20
    await orphan("CP-ORPHAN")
    charger = await live_charger("CP-LIVE")
    for _ in range(100):
        await asyncio.sleep(0.05)
        if not (await Station.objects.aget(cbid="CP-ORPHAN")).connected:
            break
    live = await Station.objects.aget(cbid="CP-LIVE")
    await charger.close()
    assert not (await Station.objects.aget(cbid="CP-ORPHAN")).connected
    assert live.connected


async def test_the_task_stops_with_the_last_connection():
    charger = await live_charger("CP-ONLY")
    state = liveness._state()
    task = state.task
    assert task is not None and not task.done()
    await charger.close()
    await asyncio.sleep(0)
    assert task.cancelled() or task.done()
    assert state.consumers == set()


def test_the_management_command_sweeps_stale_connections():
    make_station("CP-STALE", connected=True, channel_name="x!1", last_seen=long_ago())
    make_station("CP-FRESH", connected=True, channel_name="x!2", last_seen=timezone.now())
    out = StringIO()
    stuck = Command.objects.create(
        station=Station.objects.get(cbid="CP-STALE"), action="Reset", status="sent"
    )
    Command.objects.filter(pk=stuck.pk).update(created_at=long_ago(), sent_at=long_ago())
    call_command("sweep_stale_connections", stdout=out)
    assert "Marked 1 stale" in out.getvalue()
    assert "Finished 1 command(s)" in out.getvalue()
    assert set(Station.objects.online().values_list("cbid", flat=True)) == {"CP-FRESH"}


def test_the_management_command_takes_its_own_age():
    make_station("CP-RECENT", connected=True, channel_name="x!1", last_seen=timezone.now())
    call_command("sweep_stale_connections", "--older-than", "0", stdout=StringIO())
    assert not Station.objects.online().exists()


def test_a_refresh_does_not_revive_a_station_that_disconnected_after_the_snapshot():
    # The tick took its snapshot; the charger disconnected and its close ran first.
    as_of = timezone.now()
    station = make_station("CP-LEFT", connected=False, channel_name="")
    Station.objects.filter(pk=station.pk).update(disconnected_at=timezone.now())
    liveness_service.station_liveness_refresh(live={station.pk: "old!1"}, as_of=as_of)
    station.refresh_from_db()
    assert (station.connected, station.channel_name) == (False, "")


def test_at_start_up_only_stations_no_live_process_holds_are_swept(settings):
    settings.OCPP_LIVENESS_INTERVAL = 60
    now = timezone.now()
    # Another server on this database refreshed it 50 s ago: within its interval.
    make_station(
        "CP-HELD", connected=True, channel_name="x!1", last_seen=now - timedelta(seconds=50)
    )
    # A previous run left it "online" and nobody refreshed it for 100 s.
    make_station(
        "CP-LEFT", connected=True, channel_name="x!2", last_seen=now - timedelta(seconds=100)
    )
    out = StringIO()

    call_command("sweep_stale_connections", "--unheld", stdout=out)

    assert "Marked 1 stale" in out.getvalue()
    assert set(Station.objects.online().values_list("cbid", flat=True)) == {"CP-HELD"}
