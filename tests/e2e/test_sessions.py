"""Sessions you can bill (issue 21) through the real server: daphne in a subprocess, the
simulator reordering, resending and signing over `websockets`, the rows read back.

The service tests (tests/stations/test_sessions.py) cover every case; these replay the
reorderings a charger really produces, over the wire, and check what was stored.
"""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
from typing import Any

import pytest
from channels.db import database_sync_to_async
from ocpp.exceptions import OCPPError
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from ocpp_spec.times import utc_now_iso
from simulator import SimulatorOptions, open_simulator
from stations.models import IdTag, MeterValue, Transaction
from tests.e2e.conftest import server_environment
from tests.e2e.servers import PROJECT_DIR, DaphneServer
from tests.factories import make_station

pytestmark = pytest.mark.e2e

db = database_sync_to_async
START_WH = 1000  # the simulator's meter when it starts


def charger(server: DaphneServer, cbid: str, version: str, **options: Any) -> SimulatorOptions:
    return SimulatorOptions(
        cbid=cbid,
        url=server.ws_base_url,
        version=version,
        connectors=1,
        response_timeout=10,
        meter_interval=0.2,
        **options,
    )


def quiet(line: str) -> None:
    """The simulator's play-by-play; pytest shows it (captured) when a test fails."""
    print(line)


@db
def claimed(cbid: str, cpo, version: str) -> None:
    make_station(cbid, cpo=cpo, ocpp_version=version)
    IdTag.objects.get_or_create(cpo=cpo, tag="TAG-1")


@db
def session_rows(cbid: str) -> list[dict]:
    rows = []
    for tx in Transaction.objects.filter(station__cbid=cbid).order_by("pk"):
        register = tx.meter_values.filter(measurand="Energy.Active.Import.Register")
        signed = register.exclude(signed_data="")
        rows.append(
            {
                "tx": tx,
                "events": list(tx.events.values_list("kind", "seq_no", "timestamp")),
                "signed": list(signed.values_list("signed_data", flat=True)),
                "register": register.exclude(normalized_value=None).count(),
                "unsigned_register": register.filter(signed_data="").count(),
            }
        )
    return rows


async def charge_once(cp, readings: int = 2) -> int:
    """One whole transaction on connector 1 with at least `readings` periodic meter values;
    returns the energy the simulator metered."""
    assert (await cp.boot())[0] == "Accepted"
    cp.begin_transaction(connector_id=1, id_tag="TAG-1")
    deadline = asyncio.get_running_loop().time() + 20
    # Each periodic reading adds at least 1 Wh to the simulated meter.
    while cp.state.meter_wh < START_WH + readings:
        assert asyncio.get_running_loop().time() < deadline, "the simulator did not charge"
        await asyncio.sleep(0.05)
    await cp.end_transaction(reason="EVDisconnected")
    return cp.state.meter_wh - START_WH


@pytest.mark.parametrize("order", ["reversed", "shuffled", "queued"])
async def test_201_events_sent_out_of_order_and_twice_make_one_whole_session(
    daphne_server, cpo_a, order
):
    cbid = f"E2E-ORDER-{order.upper()}"
    await claimed(cbid, cpo_a, "2.0.1")
    options = charger(daphne_server, cbid, "2.0.1", event_order=order, resend=True, signed=True)
    async with open_simulator(options, output=quiet) as cp:
        energy = await charge_once(cp)

    (row,) = await session_rows(cbid)
    tx = row["tx"]
    kinds = [kind for kind, _seq, _at in row["events"]]
    seq_nos = sorted(seq for _kind, seq, _at in row["events"])
    # Every event once, though each was sent twice and the Started arrived when it did.
    assert seq_nos == list(range(len(seq_nos))) and len(seq_nos) >= 4
    assert kinds.count("Started") == 1 and kinds.count("Ended") == 1
    started_at = next(at for kind, _seq, at in row["events"] if kind == "Started")
    assert (tx.state, tx.start_time, tx.id_tag, tx.id_tag_status) == (
        "ended",
        started_at,
        "TAG-1",
        "Accepted",
    )
    assert (tx.meter_start, tx.meter_stop, tx.energy_wh) == (START_WH, START_WH + energy, energy)
    assert (tx.incomplete, tx.orphan_stop, tx.meter_reset, tx.superseded) == (
        False,
        False,
        False,
        False,
    )
    assert (tx.seq_no_count, tx.first_seq_no, tx.last_seq_no) == (len(seq_nos), 0, len(seq_nos) - 1)
    # Every register reading came signed, and the signature is stored whole.
    assert len(row["signed"]) == row["register"] == len(seq_nos)
    assert all(base64.b64decode(data).startswith(b"OCMF|") for data in row["signed"])


REPLAYS = [(0, 1, 2, 3), (3, 2, 1, 0), (1, 0, 3, 2), (2, 3, 0, 1), (3, 0, 2, 1)]


async def test_201_replayed_reorderings_all_give_the_same_row(daphne_server, cpo_a):
    await claimed("E2E-REPLAY", cpo_a, "2.0.1")

    def event(tx_id: str, seq_no: int) -> call201.TransactionEvent:
        kind = ("Started", "Updated", "Updated", "Ended")[seq_no]
        context = {"Started": "Transaction.Begin", "Ended": "Transaction.End"}.get(kind)
        at = f"2026-03-01T10:{10 * seq_no:02d}:00.000Z"
        return call201.TransactionEvent(
            event_type=kind,
            timestamp=at,
            trigger_reason="Authorized" if kind == "Started" else "MeterValuePeriodic",
            seq_no=seq_no,
            transaction_info={"transaction_id": tx_id},
            evse={"id": 1, "connector_id": 1} if kind == "Started" else None,
            id_token={"id_token": "TAG-1", "type": "ISO14443"} if kind == "Started" else None,
            meter_value=[
                {
                    "timestamp": at,
                    "sampled_value": [
                        {"value": 20000 + 2500 * seq_no}
                        | ({"context": context} if context else {}),
                    ],
                }
            ],
        )

    async with open_simulator(charger(daphne_server, "E2E-REPLAY", "2.0.1"), output=quiet) as cp:
        assert (await cp.boot())[0] == "Accepted"
        for n, order in enumerate(REPLAYS):
            for seq_no in order:
                await cp.request(event(f"REPLAY-{n}", seq_no))
            # A resend of the whole session afterwards changes nothing.
            for seq_no in order:
                await cp.request(event(f"REPLAY-{n}", seq_no))

    rows = await session_rows("E2E-REPLAY")
    assert len(rows) == len(REPLAYS)
    for row in rows:
        tx = row["tx"]
        assert (tx.start_time.isoformat(), tx.stop_time.isoformat()) == (
            "2026-03-01T10:00:00+00:00",
            "2026-03-01T10:30:00+00:00",
        ), tx
        assert (tx.meter_start, tx.meter_stop, tx.energy_wh, tx.id_tag) == (
            20000,
            27500,
            7500,
            "TAG-1",
        )
        assert (tx.state, tx.incomplete, tx.orphan_stop) == ("ended", False, False)
        assert tx.seq_no_count == 4
        assert len(row["events"]) == 4 and row["register"] == 4


async def test_201_an_unreadable_time_is_refused_over_the_wire(daphne_server, cpo_a):
    await claimed("E2E-BADTIME", cpo_a, "2.0.1")
    async with open_simulator(charger(daphne_server, "E2E-BADTIME", "2.0.1"), output=quiet) as cp:
        assert (await cp.boot())[0] == "Accepted"
        with pytest.raises(OCPPError) as refused:
            await cp.request(
                call201.TransactionEvent(
                    event_type="Started",
                    timestamp="half past ten",
                    trigger_reason="Authorized",
                    seq_no=0,
                    transaction_info={"transaction_id": "BAD"},
                )
            )
    assert refused.value.code == "PropertyConstraintViolation"
    assert await session_rows("E2E-BADTIME") == []


async def test_16_resent_and_signed_transaction_is_one_session(daphne_server, cpo_a):
    await claimed("E2E-16", cpo_a, "1.6")
    options = charger(daphne_server, "E2E-16", "1.6", resend=True, signed=True)
    async with open_simulator(options, output=quiet) as cp:
        energy = await charge_once(cp)

    (row,) = await session_rows("E2E-16")
    tx = row["tx"]
    assert (tx.state, tx.meter_start, tx.meter_stop, tx.energy_wh) == (
        "ended",
        START_WH,
        START_WH + energy,
        energy,
    )
    assert (tx.incomplete, tx.orphan_stop, tx.stop_reason) == (False, False, "EVDisconnected")
    assert [kind for kind, _seq, _at in row["events"]].count("Started") == 1
    # Each signed value (resent MeterValues included) whole; the raw readings beside them.
    assert row["signed"] and all(data.startswith("OCMF|") for data in row["signed"])
    assert row["unsigned_register"] == len(row["signed"])


async def test_16_every_stop_is_kept_and_an_open_session_is_superseded(daphne_server, cpo_a):
    await claimed("E2E-16-STOPS", cpo_a, "1.6")
    options = charger(daphne_server, "E2E-16-STOPS", "1.6")
    async with open_simulator(options, output=quiet) as cp:
        assert (await cp.boot())[0] == "Accepted"
        first = await cp.request(
            call16.StartTransaction(
                connector_id=1, id_tag="TAG-1", meter_start=100, timestamp=utc_now_iso()
            )
        )
        await cp.request(
            call16.MeterValues(
                connector_id=1,
                transaction_id=first.transaction_id,
                meter_value=[
                    {"timestamp": utc_now_iso(), "sampled_value": [{"value": "400"}]},
                ],
            )
        )
        # The charger lost the first session's stop and starts again on connector 1.
        second = await cp.request(
            call16.StartTransaction(
                connector_id=1, id_tag="TAG-1", meter_start=500, timestamp=utc_now_iso()
            )
        )
        # The 1.6 errata's stops for starts that never got an id: every one is kept.
        for meter in (600, 700, 700):
            await cp.request(
                call16.StopTransaction(
                    transaction_id=-1, meter_stop=meter, timestamp="2026-03-01T12:00:00Z"
                )
            )

    rows = {row["tx"].ocpp_id: row["tx"] for row in await session_rows("E2E-16-STOPS")}
    old, new = rows[str(first.transaction_id)], rows[str(second.transaction_id)]
    assert (old.state, old.superseded, old.superseded_by_id, old.energy_wh) == (
        "ended",
        True,
        new.pk,
        300,
    )
    assert old.stop_time == new.start_time
    assert new.state == "active"
    orphans = await db(list)(
        Transaction.objects.filter(station__cbid="E2E-16-STOPS", orphan_stop=True)
        .order_by("pk")
        .values_list("orphan_transaction_id", "meter_stop")
    )
    # 600 and 700 are two stops; the second 700 is the same stop resent.
    assert orphans == [(-1, 600), (-1, 700)]


def test_simulate_charger_can_reorder_resend_and_sign(daphne_server, cpo_a):
    make_station("E2E-CLI", cpo=cpo_a, ocpp_version="2.0.1")
    IdTag.objects.create(cpo=cpo_a, tag="TAG-CLI")
    completed = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "simulate_charger",
            "E2E-CLI",
            "--url",
            daphne_server.ws_base_url,
            "--version",
            "2.0.1",
            "--transaction",
            "--id-tag",
            "TAG-CLI",
            "--meter-interval",
            "0.3",
            "--event-order",
            "reversed",
            "--resend",
            "--signed",
            "--duration",
            "3",
        ],
        cwd=PROJECT_DIR,
        env=os.environ | server_environment(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    assert "sending the transaction's" in completed.stdout
    tx = Transaction.objects.get(station__cbid="E2E-CLI")
    assert (tx.state, tx.incomplete, tx.id_tag) == ("ended", False, "TAG-CLI")
    assert tx.energy_wh and tx.energy_wh > 0
    assert MeterValue.objects.filter(transaction=tx).exclude(signed_data="").exists()
