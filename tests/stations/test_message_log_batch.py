"""A message-log flush sets every station's last_seen in one statement."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from ocpp_gateway.message_log import MessageLog
from stations.models import OcppMessage, Station
from stations.services.liveness import stations_last_seen_set
from stations.services.station_log import ocpp_log_write
from tests.factories import make_station

pytestmark = [pytest.mark.django_db]


def station_updates(queries) -> list[str]:
    return [q["sql"] for q in queries if q["sql"].startswith('UPDATE "stations_station"')]


def test_one_update_for_all_stations_seen_in_a_flush():
    stations = [make_station(f"CP-{i}") for i in range(5)]
    log = MessageLog()
    for station in stations:
        log.record(station_id=station.pk, cbid=station.cbid, direction="in", message_type=2)
    with CaptureQueriesContext(connection) as queries:
        ocpp_log_write(rows=log._rows, seen=log._seen)
    assert len(station_updates(queries.captured_queries)) == 1
    assert OcppMessage.objects.count() == 5
    for station in stations:
        station.refresh_from_db()
        assert station.last_seen == log._seen[station.pk]


def test_each_station_gets_its_own_time():
    base = timezone.now() - timedelta(hours=1)
    stations = [make_station(f"CP-{i}") for i in range(3)]
    seen = {s.pk: base + timedelta(minutes=i) for i, s in enumerate(stations)}
    stations_last_seen_set(seen)
    assert {s.pk: s.last_seen for s in Station.objects.all()} == seen


def test_many_stations_on_sqlite_take_few_statements():
    stations = [make_station(f"CP-{i}") for i in range(700)]
    now = timezone.now()
    with CaptureQueriesContext(connection) as queries:
        stations_last_seen_set({s.pk: now for s in stations})
    expected = 1 if connection.vendor == "postgresql" else 3
    assert len(station_updates(queries.captured_queries)) == expected
    assert Station.objects.filter(last_seen=now).count() == 700
