"""Status and meter values of many chargers written together (the gateway's group commit).

The batch functions must leave exactly what one-by-one writes would: these tests compare
both, on SQLite locally and on PostgreSQL (which takes the set-based SQL path) in CI.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from stations.models import Connector, MeterValue, Station, Transaction
from stations.services.charging import (
    StatusReport,
    charging_data_store,
    charging_data_write,
    connector_statuses_set,
)
from stations.services.meter_values import MeterReading, MeterSample, meter_readings_store
from stations.services.transaction_events import TransactionEventData, transaction_event_record
from stations.services.transactions import transaction_start, transaction_stop
from tests.factories import make_station

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 1, 2, 10, 0, tzinfo=UTC)


def status_of(station: Station, connector_id: int, evse_id: int | None = None) -> str:
    return Connector.objects.get(station=station, connector_id=connector_id, evse_id=evse_id).status


def test_one_batch_serves_many_stations_and_creates_their_connectors(cpo_a):
    a, b = make_station("CP-A", cpo=cpo_a), make_station("CP-B", cpo=cpo_a)
    reports = [
        StatusReport(a.pk, 1, "Available", timestamp=T0),
        StatusReport(a.pk, 2, "Charging", timestamp=T0),
        StatusReport(b.pk, 1, "Faulted", error_code="GroundFailure", timestamp=T0),
        StatusReport(b.pk, 1, "Available", timestamp=T0, evse_id=1),
        StatusReport(b.pk, 0, "Unavailable", timestamp=T0),
    ]
    assert connector_statuses_set(reports) == [None] * 5
    assert status_of(a, 1) == "Available"
    assert status_of(a, 2) == "Charging"
    assert status_of(b, 1) == "Faulted"
    assert Connector.objects.get(station=b, connector_id=1, evse_id=None).error_code == (
        "GroundFailure"
    )
    assert status_of(b, 1, evse_id=1) == "Available"
    b.refresh_from_db()
    assert b.status == "Unavailable"
    assert Connector.objects.count() == 4


def test_existing_connectors_are_updated_not_duplicated(station):
    connector_statuses_set([StatusReport(station.pk, 1, "Available", timestamp=T0)])
    connector_statuses_set(
        [StatusReport(station.pk, 1, "Charging", timestamp=T0 + timedelta(seconds=1))]
    )
    assert status_of(station, 1) == "Charging"
    assert Connector.objects.filter(station=station).count() == 1


def test_of_two_reports_in_one_batch_the_newer_wins_whatever_the_order(station):
    later = T0 + timedelta(seconds=5)
    connector_statuses_set(
        [
            StatusReport(station.pk, 1, "Charging", timestamp=later),
            StatusReport(station.pk, 1, "Available", timestamp=T0),
            StatusReport(station.pk, 0, "Faulted", timestamp=later),
            StatusReport(station.pk, 0, "Available", timestamp=T0),
        ]
    )
    assert status_of(station, 1) == "Charging"
    station.refresh_from_db()
    assert station.status == "Faulted"


def test_of_two_equal_times_in_one_batch_the_later_report_wins(station):
    connector_statuses_set(
        [
            StatusReport(station.pk, 1, "Available", timestamp=T0),
            StatusReport(station.pk, 1, "Preparing", timestamp=T0),
        ]
    )
    assert status_of(station, 1) == "Preparing"


def test_a_batch_older_than_the_stored_status_changes_nothing(station):
    connector_statuses_set(
        [
            StatusReport(station.pk, 1, "Charging", timestamp=T0),
            StatusReport(station.pk, 0, "Available", timestamp=T0),
        ]
    )
    older = T0 - timedelta(minutes=1)
    connector_statuses_set(
        [
            StatusReport(station.pk, 1, "Available", timestamp=older),
            StatusReport(station.pk, 2, "Available", timestamp=older),
            StatusReport(station.pk, 0, "Faulted", timestamp=older),
        ]
    )
    assert status_of(station, 1) == "Charging"
    # A connector seen for the first time takes even an old report.
    assert status_of(station, 2) == "Available"
    station.refresh_from_db()
    assert station.status == "Available"


def test_long_strings_are_cut_to_the_columns(station):
    connector_statuses_set(
        [StatusReport(station.pk, 1, "Available", info="i" * 400, vendor_id="v" * 400)]
    )
    connector = Connector.objects.get(station=station, connector_id=1)
    assert len(connector.info) == Connector._meta.get_field("info").max_length
    assert len(connector.vendor_id) == Connector._meta.get_field("vendor_id").max_length


def test_a_single_report_is_a_batch_of_one(station):
    report = StatusReport(station_id=station.pk, connector_id=3, status="Available", timestamp=T0)
    assert charging_data_write([report]) == [None]
    assert status_of(station, 3) == "Available"


# ---- meter values --------------------------------------------------------------------


def sample(value: str, at: datetime = T0) -> MeterSample:
    return MeterSample(timestamp=at, value=value, unit="Wh")


def test_one_insert_stores_every_reading_with_its_own_links(cpo_a):
    a, b = make_station("CP-A", cpo=cpo_a), make_station("CP-B", cpo=cpo_a)
    connector = Connector.objects.create(station=a, connector_id=2)
    tx = Transaction.objects.create(station=a, connector=connector, id_tag="T", start_time=T0)
    counts = meter_readings_store(
        [
            MeterReading(a.pk, [sample("10"), sample("11")], transaction_id=tx.pk),
            MeterReading(b.pk, [sample("20")], connector_id=1),
            MeterReading(b.pk, [sample("30")], evse_id=1),
            MeterReading(b.pk, []),
        ]
    )
    assert counts == [2, 1, 1, 0]
    linked = MeterValue.objects.filter(transaction=tx)
    assert sorted(v.value for v in linked) == ["10", "11"]
    # The transaction names the connector the frame left out.
    assert {v.connector_id for v in linked} == {2}
    assert MeterValue.objects.get(value="20").connector_id == 1
    assert MeterValue.objects.get(value="30").evse_id == 1
    assert MeterValue.objects.get(value="10").numeric_value == 10.0


def test_a_transaction_of_another_station_is_not_linked(cpo_a):
    a, b = make_station("CP-A", cpo=cpo_a), make_station("CP-B", cpo=cpo_a)
    tx = Transaction.objects.create(station=a, id_tag="T", start_time=T0)
    meter_readings_store(
        [
            MeterReading(b.pk, [sample("1")], transaction_id=tx.pk, connector_id=1),
            MeterReading(b.pk, [sample("2")], transaction_id=2**63, connector_id=1),
            MeterReading(b.pk, [sample("3")], transaction_id=-5, connector_id=1),
        ]
    )
    assert MeterValue.objects.filter(station=b).count() == 3
    assert not MeterValue.objects.filter(transaction__isnull=False).exists()


def test_status_and_meter_values_share_one_batch(station):
    results = charging_data_store(
        [
            MeterReading(station.pk, [sample("1"), sample("2")], connector_id=1),
            StatusReport(station.pk, 1, "Charging", timestamp=T0),
            MeterReading(station.pk, [sample("3")], connector_id=1),
        ]
    )
    assert results == [2, None, 1]
    assert status_of(station, 1) == "Charging"
    assert MeterValue.objects.filter(station=station).count() == 3


def test_anything_else_in_a_batch_is_refused(station):
    with pytest.raises(TypeError):
        charging_data_store([StatusReport(station.pk, 1, "Charging"), "stray"])


@pytest.fixture
def station(cpo_a) -> Station:
    return make_station("CP-1", cpo=cpo_a)


# ---- round trips of the session write path ---------------------------------------------
# Counted by django_assert_num_queries (the COPY of the samples is not: it bypasses Django's
# cursor wrapper). Services that open their own transaction add a SAVEPOINT and a RELEASE
# inside the test's transaction. Before issue 21: a TransactionEvent Updated took 8, an
# Ended 8, a StopTransaction 7; the batches 1 each.


postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="counts PostgreSQL's statements (COPY, one UPDATE)"
)


@postgresql_only
def test_a_batch_of_session_meter_values_is_one_query_and_the_copy(
    station, django_assert_num_queries
):
    tx = Transaction.objects.create(
        station=station, connector=Connector.objects.create(station=station, connector_id=1)
    )
    readings = [MeterReading(station.pk, [sample(str(n))], transaction_id=tx.pk) for n in range(5)]
    with django_assert_num_queries(1):
        assert charging_data_store(readings) == [1] * 5
    assert tx.meter_values.count() == 5


@postgresql_only
def test_a_status_batch_records_session_history_in_the_same_statement(
    station, django_assert_num_queries
):
    connector = Connector.objects.create(station=station, connector_id=1, status="Preparing")
    tx = Transaction.objects.create(station=station, connector=connector, start_time=T0)
    reports = [StatusReport(station.pk, 1, "Charging", timestamp=T0 + timedelta(seconds=1))]
    with django_assert_num_queries(1):
        charging_data_store(reports)
    assert list(tx.events.values_list("connector_status", "charging_state")) == [
        ("Charging", "Charging")
    ]


@postgresql_only
@pytest.mark.parametrize(
    ("event_type", "evse_id", "queries"),
    [
        # savepoint, lock the session, add the event, update the session, release
        ("Updated", None, 5),
        # + lock the EVSE's connectors first
        ("Updated", 1, 6),
        # + read the register series to settle the energy
        ("Ended", None, 6),
    ],
)
def test_a_transaction_event_takes_fewer_round_trips_than_before(
    cpo_a, django_assert_num_queries, event_type, evse_id, queries
):
    station = make_station("CP-2X", cpo=cpo_a, ocpp_version="2.0.1")

    def event(kind: str, seq: int, evse: int | None) -> TransactionEventData:
        return TransactionEventData(
            event_type=kind,
            timestamp=T0 + timedelta(minutes=seq),
            seq_no=seq,
            transaction_id="TX",
            evse_id=evse,
            samples=[sample(str(1000 + seq), T0 + timedelta(minutes=seq))],
        )

    transaction_event_record(station_id=station.pk, event=event("Started", 0, 1))
    with django_assert_num_queries(queries):
        transaction_event_record(station_id=station.pk, event=event(event_type, 1, evse_id))


@postgresql_only
def test_a_stop_takes_fewer_round_trips_than_before(station, django_assert_num_queries):
    tx, _ = transaction_start(
        station_id=station.pk, connector_id=1, id_tag="", meter_start=0, timestamp=T0
    )
    # savepoint, lock the session, read the register series, update it, add the event,
    # release (the stop carries no id tag to judge)
    with django_assert_num_queries(6):
        transaction_stop(
            station_id=station.pk,
            transaction_id=tx.pk,
            meter_stop=10,
            timestamp=T0 + timedelta(hours=1),
            samples=[sample("5", T0 + timedelta(minutes=30))],
        )
