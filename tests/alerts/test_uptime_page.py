"""The Uptime page: table, CSV, chart; planned maintenance; the four ways."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from alerts.models import ConnectorState, PlannedMaintenance, StatusPeriod
from stations.models import Connector
from tests.factories import PASSWORD, make_station

pytestmark = pytest.mark.django_db

JUNE = datetime(2026, 6, 1, tzinfo=UTC)


def login(client, user):
    client.login(username=user.username, password=PASSWORD)


@pytest.fixture
def history(cpo_a):
    station = make_station("CP-UP", cpo=cpo_a, name="Depot")
    connector = Connector.objects.create(station=station, connector_id=1)
    StatusPeriod.objects.create(
        station=station,
        connector=connector,
        state=ConnectorState.AVAILABLE,
        started_at=JUNE,
        ended_at=JUNE + timedelta(days=27),
    )
    StatusPeriod.objects.create(
        station=station,
        connector=connector,
        state=ConnectorState.FAULTED,
        started_at=JUNE + timedelta(days=27),
        ended_at=JUNE + timedelta(days=30),
    )
    return station


def test_alice_sees_the_month_and_its_chart(client, alice, history):
    login(client, alice)
    page = client.get(reverse("alerts:uptime"), {"month": "2026-06"})
    assert page.status_code == 200
    assert b"Depot" in page.content
    assert b"90.00" in page.content  # 27 of 30 days
    assert page.content.count(b"<rect") == 31  # background + 30 days
    assert b"2026-06-28: 0.0 %" in page.content


def test_csv_export(client, alice, history):
    login(client, alice)
    response = client.get(reverse("alerts:uptime"), {"month": "2026-06", "format": "csv"})
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert len(rows) == 1
    assert (rows[0]["cbid"], rows[0]["uptime_percent"]) == ("CP-UP", "90.00")
    assert rows[0]["available_hours"] == "648.0" and rows[0]["faulted_hours"] == "72.0"


def test_planned_maintenance_is_excluded(client, alice, history):
    login(client, alice)
    response = client.post(
        reverse("alerts:maintenance_add"),
        {
            "station": history.pk,
            "connector_id": "1",
            "starts_at": "2026-06-28 00:00",
            "ends_at": "2026-07-01 00:00",
            "reason": "Power module swap",
        },
    )
    assert response.status_code == 302
    planned = PlannedMaintenance.objects.get()
    assert planned.reason == "Power module swap" and planned.created_by == alice
    page = client.get(reverse("alerts:uptime"), {"month": "2026-06"})
    assert b"100.00" in page.content and b"Power module swap" in page.content


def test_login_required(client):
    response = client.get(reverse("alerts:uptime"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_carol_sees_nothing_and_cannot_plan_for_cpo_a(client, carol, history):
    login(client, carol)
    assert b"Depot" not in client.get(reverse("alerts:uptime"), {"month": "2026-06"}).content
    client.post(
        reverse("alerts:maintenance_add"),
        {
            "station": history.pk,
            "starts_at": "2026-06-01 00:00",
            "ends_at": "2026-06-02 00:00",
            "reason": "x",
        },
    )
    assert PlannedMaintenance.objects.count() == 0


def test_bob_reads_but_may_not_plan(client, bob, history):
    login(client, bob)
    page = client.get(reverse("alerts:uptime"), {"month": "2026-06"})
    assert b"Depot" in page.content and b"Plan maintenance" not in page.content
    response = client.post(
        reverse("alerts:maintenance_add"),
        {
            "station": history.pk,
            "starts_at": "2026-06-01 00:00",
            "ends_at": "2026-06-02 00:00",
            "reason": "x",
        },
    )
    assert response.status_code == 403


def test_station_list_shows_the_months_uptime(client, alice, cpo_a):
    from django.utils import timezone

    station = make_station("CP-LIST", cpo=cpo_a)
    connector = Connector.objects.create(station=station, connector_id=1)
    now = timezone.now()
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    middle = start + (now - start) / 2
    StatusPeriod.objects.create(
        station=station, connector=connector, state="available", started_at=start, ended_at=middle
    )
    StatusPeriod.objects.create(
        station=station, connector=connector, state="offline", started_at=middle, ended_at=now
    )
    login(client, alice)
    page = client.get(reverse("stations:list"))
    assert b"Uptime this month" in page.content
    assert b"50.0 %" in page.content
