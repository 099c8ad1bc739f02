"""Uptime on a synthetic status history with a known answer, maintenance excluded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alerts.models import ConnectorState, PlannedMaintenance, StatusPeriod
from alerts.services.uptime import (
    station_uptime_percent,
    status_history_record,
    uptime_compute,
    uptime_report,
)
from stations.models import Connector
from tests.factories import make_station

H = timedelta(hours=1)
DAY0 = datetime(2026, 6, 1, tzinfo=UTC)
JUNE = (DAY0, datetime(2026, 7, 1, tzinfo=UTC))
AFTER = datetime(2026, 8, 1, tzinfo=UTC)


def test_known_answer_with_maintenance_excluded():
    # One day: 10 h available, 4 h charging, 2 h faulted, 4 h offline, 4 h not sampled.
    periods = [
        (ConnectorState.AVAILABLE, DAY0, DAY0 + 10 * H),
        (ConnectorState.CHARGING, DAY0 + 10 * H, DAY0 + 14 * H),
        (ConnectorState.FAULTED, DAY0 + 14 * H, DAY0 + 16 * H),
        (ConnectorState.OFFLINE, DAY0 + 16 * H, DAY0 + 20 * H),
    ]
    day = (DAY0, DAY0 + 24 * H)
    plain = uptime_compute(periods=periods, maintenance=[], window=day, now=AFTER)
    assert (plain.up, plain.down, plain.unknown) == (14 * 3600, 6 * 3600, 4 * 3600)
    assert plain.percent == pytest.approx(100 * 14 / 20)  # 70 %
    # Planned maintenance over the offline hours (and one unknown hour): excluded.
    planned = [(DAY0 + 16 * H, DAY0 + 21 * H)]
    kept = uptime_compute(periods=periods, maintenance=planned, window=day, now=AFTER)
    assert kept.maintenance == 5 * 3600
    assert kept.down == 2 * 3600
    assert kept.percent == pytest.approx(100 * 14 / 16)  # 87.5 %
    assert kept.unknown == 3 * 3600


def test_an_open_period_runs_until_now():
    now = DAY0 + 6 * H
    periods = [(ConnectorState.AVAILABLE, DAY0 - 5 * H, None)]
    result = uptime_compute(periods=periods, maintenance=[], window=JUNE, now=now)
    assert result.up == 6 * 3600 and result.total == 6 * 3600
    assert result.percent == 100.0


def test_nothing_known_is_no_figure():
    assert uptime_compute(periods=[], maintenance=[], window=JUNE, now=AFTER).percent is None


@pytest.mark.django_db
def test_month_and_days_from_the_database(cpo_a):
    station = make_station("CP-U", cpo=cpo_a)
    connector = Connector.objects.create(station=station, connector_id=1)
    # June: available all month but 3 days (72 h) faulted, of which 24 h planned maintenance.
    rows = [
        (ConnectorState.AVAILABLE, DAY0, DAY0 + timedelta(days=10)),
        (ConnectorState.FAULTED, DAY0 + timedelta(days=10), DAY0 + timedelta(days=13)),
        (ConnectorState.AVAILABLE, DAY0 + timedelta(days=13), None),
    ]
    StatusPeriod.objects.bulk_create(
        StatusPeriod(station=station, connector=connector, state=s, started_at=a, ended_at=b)
        for s, a, b in rows
    )
    PlannedMaintenance.objects.create(
        cpo=cpo_a,
        station=station,
        starts_at=DAY0 + timedelta(days=10),
        ends_at=DAY0 + timedelta(days=11),
        reason="Cable replaced",
    )
    [row] = uptime_report(connectors=[connector], start=JUNE[0], end=JUNE[1], now=AFTER)
    assert row.month.percent == pytest.approx(100 * (30 - 3) / (30 - 1))
    assert len(row.days) == 30
    assert row.days[9][1].percent == 100.0
    assert row.days[10][1].percent is None  # maintenance all day
    assert row.days[11][1].percent == 0.0
    assert station_uptime_percent(
        station_ids=[station.pk], start=JUNE[0], end=JUNE[1], now=AFTER
    ) == {station.pk: pytest.approx(100 * 27 / 29)}


@pytest.mark.django_db
def test_the_worker_samples_state_changes_and_gaps(cpo_a, settings):
    settings.ALERTS_INTERVAL = 10
    station = make_station("CP-S", cpo=cpo_a, connected=True)
    connector = Connector.objects.create(station=station, connector_id=1, status="Available")
    Connector.objects.create(station=station, connector_id=0, status="Available")  # not counted
    assert status_history_record(now=DAY0) == 1
    assert status_history_record(now=DAY0 + timedelta(seconds=10)) == 0  # unchanged
    connector.status = "Charging"
    connector.save()
    status_history_record(now=DAY0 + timedelta(seconds=20))
    station.connected = False
    station.save()
    status_history_record(now=DAY0 + timedelta(seconds=30))
    # The worker stops for an hour; then the station is back.
    station.connected = True
    station.save()
    status_history_record(now=DAY0 + H)
    history = list(
        StatusPeriod.objects.order_by("started_at").values_list("state", "started_at", "ended_at")
    )
    s = timedelta(seconds=1)
    assert history == [
        ("available", DAY0, DAY0 + 20 * s),
        ("charging", DAY0 + 20 * s, DAY0 + 30 * s),
        ("offline", DAY0 + 30 * s, DAY0 + 30 * s),  # closed at the last sample: gap unknown
        ("charging", DAY0 + H, None),
    ]
