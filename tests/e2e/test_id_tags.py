"""ID tags through the real server (issue 13): the simulator (`manage.py simulate_charger
--id-tag`) presents a tag at Authorize and StartTransaction and runs a session, a refused
tag runs none; the CPO's local list reaches the simulator, versions and all."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest
from channels.db import database_sync_to_async

from simulator import SimulatorOptions, open_simulator
from stations.models import IdTag, Station, Transaction
from stations.services.local_list import local_list_send, local_list_state
from tests.e2e.conftest import server_environment
from tests.e2e.servers import PROJECT_DIR, DaphneServer
from tests.e2e.test_ocpp201_server import command_outcome, needs_redis, quiet
from tests.factories import make_station

pytestmark = pytest.mark.e2e
db = database_sync_to_async


def simulate(server: DaphneServer, cbid: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "manage.py",
            "simulate_charger",
            cbid,
            "--url",
            server.ws_base_url,
            "--meter-interval",
            "0.3",
            # Long enough for a boot, a session and its meter values on a loaded machine.
            "--duration",
            "6",
            *args,
        ],
        cwd=PROJECT_DIR,
        env=os.environ | server_environment(),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
def test_the_simulator_presents_its_tag_and_charges(daphne_server, cpo_a, version):
    cbid = f"E2E-TAG-{version}"
    make_station(cbid, cpo=cpo_a, ocpp_version=version)
    IdTag.objects.create(cpo=cpo_a, tag="Van-12", label="Van 12", token_type="ISO14443")

    completed = simulate(
        daphne_server, cbid, "--version", version, "--transaction", "--id-tag", "VAN-12"
    )

    assert completed.returncode == 0, completed.stderr
    tx = Transaction.objects.get(station__cbid=cbid)
    assert (tx.id_tag, tx.id_tag_status) == ("VAN-12", "Accepted")
    assert tx.energy_wh and tx.energy_wh > 0
    assert IdTag.objects.get(tag="Van-12").last_used_at is not None


def test_a_blocked_tag_runs_no_session(daphne_server, cpo_a):
    make_station("E2E-TAG-BLOCKED", cpo=cpo_a, ocpp_version="1.6")
    IdTag.objects.create(cpo=cpo_a, tag="STOLEN", status="Blocked")

    completed = simulate(daphne_server, "E2E-TAG-BLOCKED", "--transaction", "--id-tag", "STOLEN")

    assert completed.returncode == 0, completed.stderr
    assert "id tag STOLEN is Blocked: no transaction" in completed.stdout
    assert not Transaction.objects.filter(station__cbid="E2E-TAG-BLOCKED").exists()


def _options(server: DaphneServer, cbid: str, version: str) -> SimulatorOptions:
    return SimulatorOptions(
        cbid=cbid, url=server.ws_base_url, version=version, connectors=1, response_timeout=10
    )


@needs_redis
@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_the_local_list_reaches_the_charger_full_then_changes(
    daphne_server, alice, cpo_a, version
):
    cbid = f"E2E-LIST-{version}"
    await db(make_station)(cbid, cpo=cpo_a, ocpp_version=version)
    await db(IdTag.objects.create)(cpo=cpo_a, tag="VAN-12")

    async def send(**kwargs: Any):
        station = await db(Station.objects.get)(cbid=cbid)
        command = await db(local_list_send)(station=station, user=alice, **kwargs)
        return await command_outcome(command)

    async def state():
        station = await db(Station.objects.get)(cbid=cbid)
        return await db(local_list_state)(station=station)

    async with open_simulator(_options(daphne_server, cbid, version), output=quiet) as cp:
        assert (await cp.boot())[0] == "Accepted"
        assert (await send()).status == "accepted"
        assert cp.state.local_list == {"van-12": "Accepted"}
        assert (await state()).in_sync

        await db(IdTag.objects.create)(cpo=cpo_a, tag="STOLEN", status="Blocked")
        assert not (await state()).in_sync
        changes = await send()
        assert changes.payload["updateType"] == "Differential"
        assert cp.state.local_list == {"van-12": "Accepted", "stolen": "Blocked"}
        assert cp.state.local_list_version == 2
        assert (await state()).in_sync

        # The charger lost its list (a factory reset): a differential update is refused.
        cp.state.local_list_version = 5
        await db(IdTag.objects.create)(cpo=cpo_a, tag="NEW-1")
        refused = await send()
        assert refused.status == "rejected"
        now = await state()
        assert (now.status, now.needs_full) == ("VersionMismatch", True)
        assert (await send(full=True)).status == "accepted"
        assert set(cp.state.local_list) == {"van-12", "stolen", "new-1"}
        assert (await state()).in_sync
