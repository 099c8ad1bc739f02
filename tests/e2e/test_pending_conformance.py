"""Issue 19 against the real server, per OCPP version: daphne in a subprocess.

A station left Pending in the pool (the simulator told to stay so, two connectors) is read
while Pending (2.x: GetBaseReport answered with a three-part NotifyReport; 1.6: its
configuration) and triggered for every connector's status; all of it is stored and
logged as for an Accepted station. OCPP 2.1's CALLRESULTERROR and SEND go unanswered.

Commands travel from this process to daphne's through the channel layer: those tests
need Redis (`REDIS_URL`).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pytest
import websockets
from channels.db import database_sync_to_async
from django.test import Client
from django.urls import reverse
from ocpp.exceptions import SecurityError
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from simulator import SimulatorOptions, open_simulator
from stations.models import (
    Command,
    Connector,
    OcppMessage,
    RegistrationStatus,
    Station,
    StationVariable,
)
from stations.services.commands import command_request_system
from tests.e2e.conftest import server_environment
from tests.e2e.servers import PROJECT_DIR, DaphneServer
from tests.factories import make_station

pytestmark = pytest.mark.e2e

needs_redis = pytest.mark.skipif(
    not os.environ.get("REDIS_URL"),
    reason="commands reach daphne's process through the channel layer: set REDIS_URL",
)
VERSIONS = ["1.6", "2.0.1", "2.1"]
db = database_sync_to_async


def quiet(line: str) -> None:
    print(line)


async def eventually(check: Callable[[], bool], timeout: float = 15.0) -> None:
    """Poll a database condition the server reaches on its own time."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await db(check)():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{check.__doc__ or check} did not hold within {timeout} s")
        await asyncio.sleep(0.05)


async def system_command(station: Station, kind: str, **params) -> Command:
    command = await db(command_request_system)(station=station, kind=kind, params=params)
    assert command is not None

    def final() -> bool:
        """the command reached a final status"""
        return Command.objects.get(pk=command.pk).is_final

    await eventually(final)
    return await db(Command.objects.get)(pk=command.pk)


def log_of(station_id: int) -> list[tuple]:
    rows = OcppMessage.objects.filter(station_id=station_id).order_by("created_at", "pk")
    return [(m.direction, m.message_type, m.action) for m in rows]


def report_log(station_id: int) -> list[tuple]:
    """The station's log from the report's request on, up to its last part's answer."""
    log = log_of(station_id)
    start = log.index(("out", 2, "GetBaseReport"))
    return log[start : start + 8]


async def read_and_trigger(server: DaphneServer, version: str, cbid: str, cpo=None) -> dict:
    """Configuration (2.x: a GetBaseReport) and a whole-station status trigger, answered by
    a simulator that stays Pending (when in the pool) with its default two connectors."""
    if cpo is not None:
        await db(make_station)(cbid, cpo=cpo, ocpp_version=version)
    options = SimulatorOptions(
        cbid=cbid,
        url=server.ws_base_url,
        version=version,
        response_timeout=10,
        stay_pending=True,
    )
    assert options.connectors == 2
    async with open_simulator(options, output=quiet) as cp:
        status, _ = await cp.boot()
        assert status == ("Pending" if cpo is None else "Accepted")
        station = await db(Station.objects.by_cbid(cbid).get)()

        configuration = await system_command(station, "get_configuration", keys=[])
        assert configuration.status == Command.Status.ACCEPTED
        rows = len(cp.report_data()) if version != "1.6" else len(cp.state.configuration)

        def configuration_stored() -> bool:
            """every variable the charger reported is stored"""
            return StationVariable.objects.filter(station=station).count() == rows

        await eventually(configuration_stored)

        trigger = await system_command(station, "trigger_message", message="StatusNotification")
        assert trigger.status == Command.Status.ACCEPTED

        def statuses_stored() -> bool:
            """both connectors' triggered status is stored"""
            return Connector.objects.filter(station=station, status="Available").count() == 2

        await eventually(statuses_stored)

        unasked = call16.Heartbeat() if version == "1.6" else call201.Heartbeat()
        if cpo is None:
            with pytest.raises(SecurityError) as refused:
                await cp.request(unasked)
            assert refused.value.description == "Station is not accepted yet: Pending"

    # 1.6: the station itself (connector 0) and both connectors; 2.x: both EVSEs.
    statuses = 3 if version == "1.6" else 2

    def logged() -> bool:
        """the whole exchange has reached the log"""
        log = log_of(station.pk)
        return log.count(("out", 3, "StatusNotification")) == statuses and (
            cpo is not None or ("out", 4, "Heartbeat") in log
        )

    await eventually(logged)
    return {
        "station": await db(Station.objects.get)(pk=station.pk),
        "log": await db(log_of)(station.pk),
        "variables": await db(
            lambda: sorted(
                StationVariable.objects.filter(station=station).values_list(
                    "component", "variable", "value"
                )
            )
        )(),
    }


@needs_redis
@pytest.mark.parametrize("version", VERSIONS)
async def test_a_pending_station_is_read_and_triggered_as_if_it_were_accepted(
    daphne_server, version, cpo_a
):
    pending = await read_and_trigger(daphne_server, version, f"E2E-PEND-{version}")
    accepted = await read_and_trigger(daphne_server, version, f"E2E-ACC-{version}", cpo_a)

    assert pending["station"].registration_status == RegistrationStatus.PENDING
    assert pending["variables"] == accepted["variables"]
    if version != "1.6":
        parts = [("in", 2, "NotifyReport"), ("out", 3, "NotifyReport")] * 3
        for result in (pending, accepted):
            assert await db(report_log)(result["station"].pk) == [
                ("out", 2, "GetBaseReport"),
                ("in", 3, "GetBaseReport"),
                *parts,
            ]
    statuses = [row for row in pending["log"] if row[2] == "StatusNotification"]
    count = 3 if version == "1.6" else 2
    assert statuses == [("in", 2, "StatusNotification"), ("out", 3, "StatusNotification")] * count
    # Nothing it was asked for was refused: the only CALLERROR is the unasked heartbeat's.
    assert [row for row in pending["log"] if row[1] == 4] == [("out", 4, "Heartbeat")]
    assert [row for row in accepted["log"] if row[1] == 4] == []


@needs_redis
async def test_the_station_log_page_shows_the_pending_report(daphne_server, root):
    result = await read_and_trigger(daphne_server, "2.0.1", "E2E-PEND-PAGE")

    def page() -> str:
        client = Client()
        client.force_login(root)
        return client.get(reverse("stations:log", args=[result["station"].pk])).content.decode()

    html = await db(page)()
    assert html.count('<strong class="log-action">NotifyReport</strong>') == 6
    assert "SecurityError" in html  # the unasked heartbeat, and only that:
    assert html.count('<span class="chip chip-msg-4">CALLERROR</span>') == 1


@needs_redis
def test_simulate_charger_stays_pending_and_reports_in_parts(daphne_server):
    process = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "simulate_charger",
            "SIM-STAY",
            "--url",
            daphne_server.ws_base_url,
            "--version",
            "2.1",
            "--stay-pending",
        ],
        cwd=PROJECT_DIR,
        env=os.environ | server_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while not Station.objects.filter(cbid="SIM-STAY", vendor="Virta Simulator").exists():
            assert time.monotonic() < deadline, "no boot within 20 s"
            assert process.poll() is None, process.communicate()
            time.sleep(0.1)
        pooled = Station.objects.get(cbid="SIM-STAY")
        command_request_system(station=pooled, kind="get_base_report", params={})
        answered = OcppMessage.objects.filter(
            station=pooled, direction="out", message_type=3, action="NotifyReport"
        )
        while answered.count() < 3:
            assert time.monotonic() < deadline, "no three-part report within 20 s"
            time.sleep(0.1)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()

    assert process.returncode == 0, stderr
    assert "Pending: staying so until the backend asks for a boot" in stdout
    assert "SecurityError" not in stdout
    parts = OcppMessage.objects.filter(station=pooled, direction="in", action="NotifyReport")
    assert sorted(m.payload["seqNo"] for m in parts) == [0, 1, 2]
    assert StationVariable.objects.filter(station=pooled, variable="VendorName").exists()
    assert Station.objects.get(pk=pooled.pk).registration_status == RegistrationStatus.PENDING


# ---- OCPP 2.1 CALLRESULTERROR and SEND ---------------------------------------------------

BOOT_16 = {"chargePointVendor": "Acme", "chargePointModel": "Fast 22"}
BOOT_2X = {"reason": "PowerUp", "chargingStation": {"model": "Wall 22", "vendorName": "Acme"}}
STREAM = {"id": 1, "pending": 0, "basetime": "2026-01-01T00:00:00Z", "data": [{"t": 0, "v": "1"}]}


async def raw_charger(server: DaphneServer, cbid: str, version: str):
    connection = await websockets.connect(server.ws_url(cbid), subprotocols=[f"ocpp{version}"])
    assert connection.subprotocol == f"ocpp{version}"
    boot = BOOT_16 if version == "1.6" else BOOT_2X
    await connection.send(json.dumps([2, "boot", "BootNotification", boot]))
    assert json.loads(await connection.recv())[2]["status"] == "Accepted"
    return connection


async def test_ocpp21_callresulterror_and_send_are_never_answered(daphne_server, cpo_a):
    station = await db(make_station)("E2E-21-RPC", cpo=cpo_a, ocpp_version="2.1")
    connection = await raw_charger(daphne_server, "E2E-21-RPC", "2.1")
    try:
        await connection.send(json.dumps([2, "hb-1", "Heartbeat", {}]))
        assert json.loads(await connection.recv())[:2] == [3, "hb-1"]
        await connection.send(json.dumps([5, "hb-1", "FormatViolation", "currentTime?", {}]))
        await connection.send(json.dumps([6, "s-1", "NotifyPeriodicEventStream", STREAM]))
        await connection.send(json.dumps([6, "s-2", "NotifyPeriodicEventStream"]))
        await connection.send(json.dumps([2, "hb-2", "Heartbeat", {}]))
        # The next frame is the second heartbeat's answer: nothing answered the others.
        assert json.loads(await asyncio.wait_for(connection.recv(), 10))[:2] == [3, "hb-2"]
    finally:
        await connection.close()

    def logged() -> bool:
        """the 2.1 frames are in the station's log"""
        return OcppMessage.objects.filter(station=station, message_type__in=[5, 6]).count() == 2

    await eventually(logged)
    rows = await db(
        lambda: list(
            OcppMessage.objects.filter(station=station, message_type__in=[5, 6])
            .order_by("pk")
            .values_list("message_type", "action", "unique_id")
        )
    )()
    assert rows == [(5, "Heartbeat", "hb-1"), (6, "NotifyPeriodicEventStream", "s-1")]


@pytest.mark.parametrize(
    ("version", "code"), [("1.6", "FormationViolation"), ("2.0.1", "MessageTypeNotSupported")]
)
async def test_older_versions_still_refuse_the_21_frame_types(daphne_server, cpo_a, version, code):
    cbid = f"E2E-RPC-{version}"
    await db(make_station)(cbid, cpo=cpo_a, ocpp_version=version)
    connection = await raw_charger(daphne_server, cbid, version)
    try:
        await connection.send(json.dumps([5, "e-1", "GenericError", "", {}]))
        first = json.loads(await asyncio.wait_for(connection.recv(), 10))
        await connection.send(json.dumps([6, "e-2", "NotifyPeriodicEventStream", STREAM]))
        second = json.loads(await asyncio.wait_for(connection.recv(), 10))
    finally:
        await connection.close()

    assert first[:3] == [4, "e-1", code]
    assert second[:3] == [4, "e-2", code]
