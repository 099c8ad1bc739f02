"""stations/bulk.py: the bulk update the hot paths share, and a batch written as one."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, OperationalError
from django.utils import timezone

from stations.bulk import bulk_update, write_batch
from stations.models import Connector, Station
from tests.factories import make_station

pytestmark = pytest.mark.django_db


def test_each_row_gets_its_own_values_and_the_common_ones():
    stations = [make_station(f"CP-{i}") for i in range(3)]
    base = timezone.now() - timedelta(hours=1)
    bulk_update(
        Station,
        keys=("id",),
        columns=("status", "status_updated_at"),
        rows=[(s.pk, f"S{i}", base + timedelta(minutes=i)) for i, s in enumerate(stations)],
        also={"error_code": "NoError"},
    )
    for i, station in enumerate(stations):
        station.refresh_from_db()
        assert (station.status, station.status_updated_at, station.error_code) == (
            f"S{i}",
            base + timedelta(minutes=i),
            "NoError",
        )


def test_an_older_value_does_not_overwrite_a_newer_one():
    now = timezone.now()
    station = make_station("CP-1", status="Faulted", status_updated_at=now)
    bulk_update(
        Station,
        keys=("id",),
        columns=("status", "status_updated_at"),
        rows=[(station.pk, "Available", now - timedelta(minutes=1))],
        not_newer="status_updated_at",
    )
    station.refresh_from_db()
    assert station.status == "Faulted"


def test_a_null_key_matches_null_and_the_updated_keys_come_back():
    station = make_station("CP-1")
    Connector.objects.create(station=station, connector_id=1)
    Connector.objects.create(station=station, evse_id=1, connector_id=1)
    updated = bulk_update(
        Connector,
        keys=("station_id", "evse_id", "connector_id"),
        columns=("status",),
        rows=[(station.pk, None, 1, "Charging"), (station.pk, 2, 1, "Available")],
        returning=True,
    )
    assert updated == {(station.pk, None, 1)}
    assert Connector.objects.get(evse_id__isnull=True).status == "Charging"
    assert Connector.objects.get(evse_id=1).status == ""


def test_nothing_to_update_costs_nothing(django_assert_num_queries):
    with django_assert_num_queries(0):
        assert bulk_update(Station, keys=("id",), columns=("status",), rows=[]) is None


def test_a_batch_is_one_write_and_a_refused_one_is_written_item_by_item():
    calls = []

    def write_many(items):
        calls.append(list(items))
        if 3 in items:
            raise IntegrityError("refused")
        return [item * 10 for item in items]

    assert write_batch(write_many, [1, 2], name="t") == [10, 20]
    results = write_batch(write_many, [1, 3, 4], name="t")
    assert results[0] == 10 and results[2] == 40 and isinstance(results[1], IntegrityError)
    assert calls == [[1, 2], [1, 3, 4], [1], [3], [4]]


def test_a_database_away_fails_the_batch():
    def away(items):
        raise OperationalError("gone")

    with pytest.raises(OperationalError):
        write_batch(away, [1, 2], name="t")
