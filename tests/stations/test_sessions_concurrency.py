"""Events of one session processed in parallel, as the gateway's database threads do when
a charger reconnects mid-frame or resends: the merge must not lose or double anything.

PostgreSQL only: SQLite serialises writers, so nothing here would run in parallel.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, connections, transaction

from stations.models import Transaction, TransactionEvent
from stations.services.charging import StatusReport, charging_data_store
from stations.services.meter_values import MeterSample
from stations.services.transaction_events import TransactionEventData, transaction_event_record
from stations.services.transactions import transaction_start
from tests.factories import make_station

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="needs a database with parallel writers"
    ),
]

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
ROUNDS = 6


def event(kind: str, seq: int, tx: str, wh: int, evse: int | None = 1) -> TransactionEventData:
    context = {"Started": "Transaction.Begin", "Ended": "Transaction.End"}.get(kind, "")
    return TransactionEventData(
        event_type=kind,
        timestamp=T0 + timedelta(minutes=10 * seq),
        seq_no=seq,
        transaction_id=tx,
        evse_id=evse,
        samples=[MeterSample(T0 + timedelta(minutes=10 * seq), str(wh), context=context)],
    )


def in_parallel(*calls: Callable[[], object]) -> list[BaseException]:
    """Run the calls at the same moment on threads of their own; return their errors."""
    barrier = threading.Barrier(len(calls))
    errors: list[BaseException] = []

    def run(call: Callable[[], object]) -> None:
        try:
            barrier.wait()
            call()
        except BaseException as exc:  # reported to the test
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


@pytest.fixture
def station(cpo_a):
    return make_station("CP-PAR", cpo=cpo_a, ocpp_version="2.0.1")


def record(station, data: TransactionEventData) -> Callable[[], object]:
    return lambda: transaction_event_record(station_id=station.pk, event=data)


@pytest.mark.parametrize(
    "kinds",
    [
        pytest.param(["Started", "Updated"], id="started-and-updated"),
        pytest.param(["Updated", "Updated"], id="two-updates-of-an-unknown-session"),
        pytest.param(["Started", "Updated", "Updated", "Ended"], id="the-whole-session"),
    ],
)
def test_events_of_one_session_in_parallel_merge_into_one_row(station, kinds):
    for n in range(ROUNDS):
        tx_id = f"TX-{n}"
        events = [
            # Only some name their EVSE: the ones that do lock it first, the others not.
            event(kind, seq, tx_id, 20000 + 1000 * seq, evse=1 if seq % 2 == 0 else None)
            for seq, kind in enumerate(kinds)
        ]
        assert in_parallel(*(record(station, e) for e in events)) == []
        tx = Transaction.objects.get(charger_transaction_id=tx_id)
        assert tx.seq_no_count == len(kinds)
        assert tx.events.count() == len(kinds)
        assert tx.meter_values.count() == len(kinds)
        if kinds[-1] == "Ended":
            assert (tx.state, tx.energy_wh, tx.incomplete) == ("ended", 3000, False)


def test_the_same_event_resent_in_parallel_is_recorded_once(station):
    for n in range(ROUNDS):
        started = event("Started", 0, f"TX-{n}", 20000)
        assert in_parallel(*(record(station, started) for _ in range(3))) == []
        tx = Transaction.objects.get(charger_transaction_id=f"TX-{n}")
        assert (tx.seq_no_count, tx.events.count(), tx.meter_values.count()) == (1, 1, 1)


def test_two_sessions_starting_in_parallel_on_one_evse_leave_one_running(station):
    for n in range(ROUNDS):
        older = event("Started", 0, f"OLD-{n}", 1000)
        newer = event("Started", 0, f"NEW-{n}", 2000)
        newer.timestamp = older.timestamp + timedelta(minutes=1)
        assert in_parallel(record(station, older), record(station, newer)) == []
        running = Transaction.objects.filter(state="active").values_list(
            "charger_transaction_id", flat=True
        )
        assert list(running) == [f"NEW-{n}"]
        old = Transaction.objects.get(charger_transaction_id=f"OLD-{n}")
        assert (old.superseded, old.stop_time) == (True, newer.timestamp)


def test_status_batches_and_session_events_in_parallel_do_not_deadlock(cpo_a):
    """A 1.6 status batch writes connector rows and session history in one statement while
    2.x events lock connectors and sessions: the lock order must never form a cycle."""
    v16 = make_station("CP-16", cpo=cpo_a, ocpp_version="1.6")
    v2 = make_station("CP-2X", cpo=cpo_a, ocpp_version="2.0.1")
    tx16, _ = transaction_start(
        station_id=v16.pk, connector_id=1, id_tag="T", meter_start=0, timestamp=T0
    )
    for n in range(ROUNDS):
        at = T0 + timedelta(minutes=n + 1)
        statuses = [StatusReport(v16.pk, 1, "Charging", timestamp=at)] + [
            StatusReport(v2.pk, 1, "Occupied", timestamp=at, evse_id=1)
        ]
        errors = in_parallel(
            lambda statuses=statuses: _batch(statuses),
            record(v2, event("Started", 0, f"TX-{n}", 1000)),
            record(v2, event("Updated", 1, f"TX-{n}", 1100)),
        )
        assert errors == []
    assert TransactionEvent.objects.filter(transaction=tx16, kind="Status").count() == ROUNDS


def _batch(items: list[StatusReport]) -> None:
    with transaction.atomic():
        charging_data_store(items)
