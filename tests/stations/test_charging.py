"""The charging services alone: id tags, connector status, transactions, meter values."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, connections
from django.utils import timezone

from stations.models import Connector, IdTag, MeterValue, Station, Transaction
from stations.services.charging import StatusReport, charging_data_write
from stations.services.id_tags import IdTagInfo, id_tag_authorize
from stations.services.meter_values import MeterReading, MeterSample, meter_readings_store
from stations.services.transactions import transaction_start, transaction_stop
from tests.factories import make_station

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 1, 2, 10, 0, tzinfo=UTC)


def connector_status_set(**report) -> None:
    """One StatusNotification, through the gateway's write path."""
    assert charging_data_write([StatusReport(**report)]) == [None]


@pytest.fixture
def station(cpo_a) -> Station:
    return make_station("CP-1", cpo=cpo_a)


def make_tag(cpo, tag="TAG-1", **fields) -> IdTag:
    return IdTag.objects.create(cpo=cpo, tag=tag, **fields)


# ---- authorization -------------------------------------------------------------------


def test_tag_of_the_station_cpo_is_accepted(station, cpo_a):
    make_tag(cpo_a, parent_id_tag="FLEET")
    info = id_tag_authorize(station_id=station.pk, id_tag="TAG-1")
    assert info == IdTagInfo(status="Accepted", parent_id_tag="FLEET")


def test_tags_match_whatever_their_case(station, cpo_a):
    make_tag(cpo_a, tag="AbC123")
    assert id_tag_authorize(station_id=station.pk, id_tag="abc123").status == "Accepted"


def test_accepted_tag_carries_its_expiry_date(station, cpo_a):
    expiry = timezone.now() + timedelta(days=3)
    make_tag(cpo_a, expiry_date=expiry)
    info = id_tag_authorize(station_id=station.pk, id_tag="TAG-1")
    assert info.status == "Accepted"
    assert info.expiry_date == expiry


def test_unknown_tag_is_invalid(station):
    assert id_tag_authorize(station_id=station.pk, id_tag="NOPE").status == "Invalid"


def test_tag_of_another_cpo_is_invalid(station, cpo_b):
    make_tag(cpo_b)
    assert id_tag_authorize(station_id=station.pk, id_tag="TAG-1").status == "Invalid"


def test_expired_tag_is_expired(station, cpo_a):
    make_tag(cpo_a, expiry_date=timezone.now() - timedelta(seconds=1))
    assert id_tag_authorize(station_id=station.pk, id_tag="TAG-1").status == "Expired"


def test_blocked_tag_is_blocked(station, cpo_a):
    make_tag(cpo_a, status="Blocked")
    assert id_tag_authorize(station_id=station.pk, id_tag="TAG-1").status == "Blocked"


def test_free_usage_accepts_any_tag(station, cpo_a):
    station.free_usage = True
    station.save()
    make_tag(cpo_a, status="Blocked")
    assert id_tag_authorize(station_id=station.pk, id_tag="TAG-1").status == "Accepted"
    assert id_tag_authorize(station_id=station.pk, id_tag="ANYONE").status == "Accepted"


def test_station_in_the_pool_accepts_no_tag(db):
    pooled = make_station("CP-POOL")
    assert id_tag_authorize(station_id=pooled.pk, id_tag="TAG-1").status == "Invalid"


def test_station_in_the_pool_with_free_usage_accepts(db):
    pooled = make_station("CP-POOL", free_usage=True)
    assert id_tag_authorize(station_id=pooled.pk, id_tag="TAG-1").status == "Accepted"


# ---- connector status ----------------------------------------------------------------


def test_connector_zero_is_the_station_itself(station):
    connector_status_set(
        station_id=station.pk, connector_id=0, status="Faulted", error_code="GroundFailure"
    )
    station.refresh_from_db()
    assert (station.status, station.error_code) == ("Faulted", "GroundFailure")
    assert station.status_updated_at is not None
    assert not Connector.objects.exists()


def test_first_status_of_a_connector_creates_it(station):
    connector_status_set(
        station_id=station.pk,
        connector_id=2,
        status="Charging",
        error_code="NoError",
        info="i" * 300,
        vendor_id="Acme",
        timestamp=T0,
    )
    connector = Connector.objects.get(station=station)
    assert (connector.connector_id, connector.evse_id) == (2, None)
    assert connector.status == "Charging"
    assert connector.info == "i" * 255  # cut to the field, not refused
    assert connector.vendor_id == "Acme"
    assert connector.status_timestamp == T0


def test_later_status_updates_the_same_connector(station):
    connector_status_set(station_id=station.pk, connector_id=1, status="Available", timestamp=T0)
    connector_status_set(
        station_id=station.pk, connector_id=1, status="Preparing", timestamp=T0 + timedelta(1)
    )
    assert list(Connector.objects.values_list("status", flat=True)) == ["Preparing"]


def test_older_status_is_ignored(station):
    connector_status_set(station_id=station.pk, connector_id=1, status="Charging", timestamp=T0)
    connector_status_set(
        station_id=station.pk, connector_id=1, status="Available", timestamp=T0 - timedelta(1)
    )
    assert Connector.objects.get().status == "Charging"


def test_older_station_status_is_ignored(station):
    connector_status_set(station_id=station.pk, connector_id=0, status="Faulted", timestamp=T0)
    connector_status_set(
        station_id=station.pk, connector_id=0, status="Available", timestamp=T0 - timedelta(1)
    )
    station.refresh_from_db()
    assert station.status == "Faulted"


def test_status_from_a_clock_running_ahead_does_not_lock_out_later_reports(station):
    connector_status_set(
        station_id=station.pk,
        connector_id=1,
        status="Faulted",
        timestamp=timezone.now() + timedelta(days=365),
    )
    connector_status_set(
        station_id=station.pk, connector_id=1, status="Available", timestamp=timezone.now()
    )
    assert Connector.objects.get().status == "Available"


def test_evse_connector_zero_is_a_connector(station):
    connector_status_set(station_id=station.pk, connector_id=1, status="Available", evse_id=1)
    connector = Connector.objects.get()
    assert (connector.evse_id, connector.connector_id) == (1, 1)


# ---- transactions --------------------------------------------------------------------


def start(station, **overrides):
    arguments = {
        "station_id": station.pk,
        "connector_id": 1,
        "id_tag": "TAG-1",
        "meter_start": 1000,
        "timestamp": T0,
    } | overrides
    return transaction_start(**arguments)


def test_start_creates_an_active_transaction_on_its_connector(station, cpo_a):
    make_tag(cpo_a)
    tx, info = start(station)
    assert info.status == "Accepted"
    tx.refresh_from_db()
    assert tx.state == "active"
    assert tx.connector.connector_id == 1
    assert (tx.id_tag, tx.id_tag_status, tx.meter_start, tx.start_time) == (
        "TAG-1",
        "Accepted",
        1000,
        T0,
    )


def test_start_with_a_refused_tag_is_still_recorded(station):
    tx, info = start(station, id_tag="STRANGER")
    assert info.status == "Invalid"
    assert Transaction.objects.get().id_tag_status == "Invalid"


def test_resent_start_returns_the_same_transaction(station):
    first, _ = start(station)
    again, _ = start(station)
    assert again.pk == first.pk
    assert Transaction.objects.count() == 1


def test_a_different_start_is_a_new_transaction(station):
    first, _ = start(station)
    second, _ = start(station, meter_start=2000, timestamp=T0 + timedelta(hours=1))
    assert second.pk != first.pk


@pytest.mark.skipif(
    connection.vendor == "sqlite", reason="SQLite serialises writers; the race needs PostgreSQL"
)
@pytest.mark.django_db(transaction=True)
def test_concurrent_copies_of_one_start_make_one_row(cpo_a):
    station = make_station("CP-RACE", cpo=cpo_a)
    barrier = threading.Barrier(4)
    results: list[int] = []

    def resend() -> None:
        try:
            barrier.wait()
            tx, _ = start(station)
            results.append(tx.pk)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=resend) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4
    assert len(set(results)) == 1
    assert Transaction.objects.count() == 1


def test_stop_records_meter_energy_reason_and_samples(station, cpo_a):
    make_tag(cpo_a)
    tx, _ = start(station)
    samples = [
        MeterSample(timestamp=T0 + timedelta(minutes=30), value="5000.5", unit="Wh"),
        MeterSample(timestamp=T0 + timedelta(minutes=30), value="16.1", measurand="Current.Import"),
    ]
    info = transaction_stop(
        station_id=station.pk,
        transaction_id=tx.pk,
        meter_stop=12500,
        timestamp=T0 + timedelta(hours=1),
        reason="EVDisconnected",
        id_tag="TAG-1",
        samples=samples,
    )
    assert info.status == "Accepted"
    tx.refresh_from_db()
    assert tx.state == "ended"
    assert (tx.meter_stop, tx.energy_wh, tx.stop_reason) == (12500, 11500, "EVDisconnected")
    assert tx.stop_time == T0 + timedelta(hours=1)
    assert sorted(tx.meter_values.values_list("numeric_value", flat=True)) == [16.1, 5000.5]
    assert set(tx.meter_values.values_list("connector_id", flat=True)) == {1}


def test_stop_without_id_tag_answers_without_tag_info(station):
    tx, _ = start(station)
    info = transaction_stop(
        station_id=station.pk, transaction_id=tx.pk, meter_stop=1500, timestamp=T0
    )
    assert info is None


def test_repeated_stop_changes_nothing(station):
    tx, _ = start(station)
    sample = [MeterSample(timestamp=T0, value="1500")]
    for _ in range(2):
        transaction_stop(
            station_id=station.pk,
            transaction_id=tx.pk,
            meter_stop=2000,
            timestamp=T0,
            samples=sample,
        )
    tx.refresh_from_db()
    assert (tx.meter_stop, tx.energy_wh) == (2000, 1000)
    assert MeterValue.objects.count() == 1
    assert Transaction.objects.count() == 1


def test_a_different_second_stop_of_a_session_is_kept_apart(station):
    tx, _ = start(station)
    transaction_stop(station_id=station.pk, transaction_id=tx.pk, meter_stop=2000, timestamp=T0)
    # A restored database gave the id out again: this stop is another session's.
    transaction_stop(
        station_id=station.pk,
        transaction_id=tx.pk,
        meter_stop=9999,
        timestamp=T0 + timedelta(hours=2),
    )
    tx.refresh_from_db()
    assert (tx.meter_stop, tx.energy_wh) == (2000, 1000)
    clash = Transaction.objects.get(orphan_stop=True)
    assert (clash.ocpp_id, clash.meter_stop, clash.incomplete) == (str(tx.pk), 9999, True)


def test_stop_of_an_unknown_transaction_is_recorded_as_orphan(station):
    info = transaction_stop(
        station_id=station.pk,
        transaction_id=424242,
        meter_stop=777,
        timestamp=T0,
        reason="PowerLoss",
        samples=[MeterSample(timestamp=T0, value="777")],
    )
    assert info is None
    orphan = Transaction.objects.get()
    assert orphan.orphan_stop is True
    assert (orphan.orphan_transaction_id, orphan.ocpp_id) == (424242, "424242")
    assert orphan.charger_transaction_id == ""
    assert (orphan.meter_stop, orphan.stop_reason, orphan.state) == (777, "PowerLoss", "ended")
    assert orphan.meter_values.count() == 1


def test_repeated_orphan_stop_is_recorded_once(station):
    for _ in range(2):
        transaction_stop(station_id=station.pk, transaction_id=5, meter_stop=1, timestamp=T0)
    assert Transaction.objects.filter(orphan_stop=True).count() == 1


def test_stop_of_another_stations_transaction_is_an_orphan(station, cpo_a):
    other = make_station("CP-OTHER", cpo=cpo_a)
    tx, _ = start(other)
    transaction_stop(station_id=station.pk, transaction_id=tx.pk, meter_stop=5000, timestamp=T0)
    tx.refresh_from_db()
    assert tx.stop_time is None
    assert Transaction.objects.filter(station=station, orphan_stop=True).count() == 1


def test_meter_that_went_backwards_is_flagged_and_counts_what_it_can(station):
    tx, _ = start(station, meter_start=5000)
    transaction_stop(station_id=station.pk, transaction_id=tx.pk, meter_stop=10, timestamp=T0)
    tx.refresh_from_db()
    assert (tx.meter_stop, tx.energy_wh, tx.meter_reset) == (10, 0, True)


# ---- meter values --------------------------------------------------------------------


def meter_values_store(*, station_id: int, samples: list[MeterSample], **links) -> int:
    return meter_readings_store([MeterReading(station_id, samples, **links)])[0]


def test_meter_values_link_a_known_transaction(station):
    tx, _ = start(station)
    stored = meter_values_store(
        station_id=station.pk,
        samples=[
            MeterSample(
                timestamp=T0, value="1234", unit="Wh", phase="L1", context="Sample.Periodic"
            )
        ],
        transaction_id=tx.pk,
        connector_id=1,
    )
    assert stored == 1
    value = MeterValue.objects.get()
    assert value.transaction_id == tx.pk
    assert (value.normalized_value, value.unit, value.phase, value.context) == (
        1234.0,
        "Wh",
        "L1",
        "Sample.Periodic",
    )


def test_meter_values_of_an_unknown_transaction_are_kept_unlinked(station):
    meter_values_store(
        station_id=station.pk, samples=[MeterSample(timestamp=T0, value="1")], transaction_id=99
    )
    assert MeterValue.objects.get().transaction_id is None


@pytest.mark.parametrize("value", ["abcdef0123", "nan", "inf", ""])
def test_non_numeric_values_are_kept_as_text(station, value):
    meter_values_store(station_id=station.pk, samples=[MeterSample(timestamp=T0, value=value)])
    stored = MeterValue.objects.get()
    assert stored.value == value
    assert stored.numeric_value is None


def test_no_samples_store_nothing(station):
    assert meter_values_store(station_id=station.pk, samples=[]) == 0
