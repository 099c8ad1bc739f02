"""The panel's Home, Sessions, a session's page, the CSV export, the current CPO and its
time zone."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from django.test import AsyncClient
from django.urls import reverse
from django.utils import timezone

from cpo.models import Membership
from stations.models import (
    Connector,
    MeterValue,
    OcppMessage,
    RegistrationStatus,
    Transaction,
)
from stations.services import session_list
from stations.services.transaction_timeline import TimelineSample
from stations.session_chart import nice_ticks, session_chart_svg
from tests.factories import make_cpo, make_member, make_station

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 10, 8, 0, tzinfo=UTC)


@pytest.fixture
def station(cpo_a):
    station = make_station("CP-V1", cpo=cpo_a, name="Harbour")
    Connector.objects.create(station=station, connector_id=1, status="Charging")
    return station


def _session(station, **fields) -> Transaction:
    fields.setdefault("state", Transaction.State.ENDED)
    fields.setdefault("start_time", T0)
    return Transaction.objects.create(
        station=station, connector=station.connectors.first(), **fields
    )


def _samples(tx, *, minutes=4):
    for i in range(minutes + 1):
        at = tx.start_time + timedelta(minutes=i)
        for measurand, value, unit in (
            ("Energy.Active.Import.Register", 1000 + i * 500, "Wh"),
            ("Power.Active.Import", 30000 if i else 0, "W"),
        ):
            MeterValue.objects.create(
                station=tx.station,
                transaction=tx,
                connector_id=1,
                timestamp=at,
                measurand=measurand,
                value=str(value),
                numeric_value=value,
                normalized_value=value,
                normalized_unit=unit,
                unit=unit,
                location="Outlet",
            )


# ---- Sessions --------------------------------------------------------------------------


def test_sessions_page_lists_the_cpos_sessions_with_kwh_and_state(client, alice, station):
    tx = _session(
        station, id_tag="CARD-9", energy_wh=7250, stop_time=T0 + timedelta(hours=1, minutes=5)
    )
    client.force_login(alice)

    response = client.get(reverse("stations:sessions"))

    html = response.content.decode()
    assert response.status_code == 200
    assert reverse("stations:session", args=[tx.pk]) in html
    assert "CARD-9" in html
    assert "7.25" in html
    assert "1 h 05 min" in html
    assert "Finished" in html


def test_sessions_page_requires_login(client):
    response = client.get(reverse("stations:sessions"))

    assert response.status_code == 302
    assert reverse("login") in response["Location"]


def test_carol_never_sees_cpo_as_sessions(client, carol, station):
    tx = _session(station, id_tag="A-SECRET-TAG")
    client.force_login(carol)

    listing = client.get(reverse("stations:sessions")).content.decode()
    page = client.get(reverse("stations:session", args=[tx.pk]))
    export = b"".join(client.get(reverse("stations:sessions_export")))

    assert "A-SECRET-TAG" not in listing
    assert page.status_code == 404
    assert b"A-SECRET-TAG" not in export


def test_the_state_filter_and_the_next_page_link_work_together(client, alice, station, monkeypatch):
    monkeypatch.setattr(session_list, "PAGE_SIZE", 2)
    running = [
        _session(station, state=Transaction.State.ACTIVE, start_time=T0 - timedelta(minutes=i))
        for i in range(3)
    ]
    _session(station, stop_time=T0)
    client.force_login(alice)

    first = client.get(reverse("stations:sessions"), {"state": "running"})
    cursor = first.context["next_cursor"]
    second = client.get(reverse("stations:sessions"), {"state": "running", "after": cursor})

    assert [tx.pk for tx in first.context["sessions"]] == [running[0].pk, running[1].pk]
    assert [tx.pk for tx in second.context["sessions"]] == [running[2].pk]
    assert second.context["next_cursor"] == ""
    assert f"state=running&amp;after={cursor}" in first.content.decode()


def test_invalid_filters_are_a_400_not_a_500(client, alice, station):
    client.force_login(alice)

    response = client.get(
        reverse("stations:sessions"), {"since": "2026-03-10", "until": "2026-03-01"}
    )

    assert response.status_code == 400


# ---- a session's page ------------------------------------------------------------------


def test_session_page_draws_the_chart_and_lists_samples_and_messages(client, alice, station):
    tx = _session(station, stop_time=T0 + timedelta(minutes=4), energy_wh=2000, meter_start=1000)
    _samples(tx)
    OcppMessage.objects.create(
        station=station,
        cbid=station.cbid,
        direction="in",
        message_type=2,
        action="StartTransaction",
        unique_id="m-1",
        payload={"connectorId": 1},
        created_at=T0,
    )
    OcppMessage.objects.create(
        station=station,
        cbid=station.cbid,
        direction="in",
        message_type=2,
        action="Heartbeat",
        unique_id="m-2",
        payload={},
        created_at=T0 + timedelta(minutes=1),
    )
    tx.start_received_at = T0
    tx.stop_received_at = T0 + timedelta(minutes=4)
    tx.save()
    client.force_login(alice)

    response = client.get(reverse("stations:session", args=[tx.pk]))

    html = response.content.decode()
    assert response.status_code == 200
    assert '<svg class="session-chart"' in html
    assert html.count("<polyline") == 2
    assert "Energy delivered (kWh)" in html
    assert "2.00 kWh" in html
    assert "Power.Active.Import" in html
    assert "StartTransaction" in html
    assert "Heartbeat" not in html


def test_the_chart_scales_energy_from_zero_and_says_what_it_shows():
    start = T0
    samples = [
        TimelineSample(start + timedelta(minutes=i), 10000 + i * 1000, 11000.0) for i in range(5)
    ]

    svg = session_chart_svg(samples, meter_start_wh=10000)

    assert svg.startswith("<svg")
    assert "<title" in svg and "<desc" in svg
    assert "Energy delivered: up to 4 kWh" in svg
    assert "Power: up to 11 kW" in svg
    assert session_chart_svg([], meter_start_wh=None) == ""
    assert nice_ticks(0, 11) == [0, 5, 10, 15]
    assert nice_ticks(0, 3.2) == [0, 1, 2, 3, 4]


# ---- CSV -------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_csv_export_streams_chunks_with_header_utf8_and_offsets(alice, station, monkeypatch):
    from asgiref.sync import sync_to_async

    monkeypatch.setattr(session_list, "CSV_CHUNK", 3)

    @sync_to_async
    def setup():
        station.cpo.time_zone = "Europe/Helsinki"
        station.cpo.save()
        station.name = "Satama Ö"
        station.save()
        for i in range(7):
            _session(
                station,
                start_time=T0 - timedelta(hours=i),
                stop_time=T0 - timedelta(hours=i) + timedelta(minutes=30),
                energy_wh=1000 * (i + 1),
                id_tag=f"TAG-{i}",
            )

    await setup()
    client = AsyncClient()
    await sync_to_async(client.force_login)(alice)

    response = await client.get(reverse("stations:sessions_export"))
    chunks = [chunk async for chunk in response.streaming_content]

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in response["Content-Disposition"]
    # The header, then one chunk per 3 sessions.
    assert len(chunks) == 1 + 3
    body = b"".join(chunks).decode("utf-8")
    assert body.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(body.lstrip("\ufeff"))))
    assert rows[0] == [name for name, _ in session_list.CSV_COLUMNS]
    assert len(rows) == 8
    first = dict(zip(rows[0], rows[1], strict=True))
    assert first["station_name"] == "Satama Ö"
    assert first["start"] == "2026-03-10T10:00:00+02:00"
    assert first["energy_kwh"] == "1.000"
    assert [row[5] for row in rows[1:]] == [f"TAG-{i}" for i in range(7)]


def test_csv_export_keeps_the_filters(client, alice, station):
    _session(station, id_tag="KEEP")
    _session(station, id_tag="DROP")
    client.force_login(alice)

    response = client.get(reverse("stations:sessions_export"), {"tag": "keep"})
    body = b"".join(response).decode()

    assert "KEEP" in body and "DROP" not in body


# ---- Home ------------------------------------------------------------------------------


def test_home_counts_stations_by_state_and_links_each_to_its_list(client, alice, cpo_a):
    long_ago = timezone.now() - timedelta(hours=3)
    online = make_station("ON-1", cpo=cpo_a, connected=True, first_connected_at=long_ago)
    make_station("OFF-1", cpo=cpo_a, first_connected_at=long_ago, disconnected_at=long_ago)
    make_station("WAIT-1", cpo=cpo_a)
    faulted = make_station("FLT-1", cpo=cpo_a, connected=True, first_connected_at=long_ago)
    Connector.objects.create(station=faulted, connector_id=2, status="Faulted")
    Connector.objects.create(station=online, connector_id=1, status="Charging")
    Transaction.objects.create(station=online, start_time=timezone.now())
    make_station(
        "REJ-1",
        cpo=cpo_a,
        connected=True,
        first_connected_at=long_ago,
        registration_status=RegistrationStatus.REJECTED,
    )
    client.force_login(alice)

    response = client.get(reverse("stations:home"))

    assert response.status_code == 200
    counts = response.context["counts"]
    assert (counts["online"], counts["offline"], counts["waiting"]) == (3, 1, 1)
    assert (counts["faulted"], counts["charging"]) == (1, 1)
    html = response.content.decode()
    assert f"{reverse('stations:list')}?state=faulted" in html
    problems = {(a.station.cbid, a.check) for a in response.context["attention"]}
    assert problems == {("OFF-1", "offline"), ("FLT-1", "faulted"), ("REJ-1", "rejected")}
    # The list behind a count shows the same stations.
    listed = client.get(reverse("stations:list"), {"state": "faulted"}).context["stations"]
    assert [s.cbid for s in listed] == ["FLT-1"]


def test_home_totals_count_sessions_and_energy_today_and_this_month(client, alice, station):
    now = timezone.now()
    _session(station, start_time=now - timedelta(minutes=5), energy_wh=1500)
    _session(station, start_time=now - timedelta(minutes=1), state=Transaction.State.ACTIVE)
    _session(station, start_time=now - timedelta(days=400), energy_wh=99000)
    client.force_login(alice)

    totals = client.get(reverse("stations:home")).context["totals"]

    assert totals.sessions_today == 2
    assert totals.energy_today_wh == 1500
    assert totals.sessions_month >= 2


def test_home_of_carol_shows_nothing_of_cpo_a(client, carol, station):
    station.connected = False
    station.first_connected_at = timezone.now() - timedelta(days=2)
    station.save()
    client.force_login(carol)

    response = client.get(reverse("stations:home"))

    assert response.context["counts"]["total"] == 0
    assert station.cbid not in response.content.decode()


# ---- current CPO and time zone ---------------------------------------------------------


def test_header_names_the_cpo_and_role_and_times_follow_its_zone(client, bob, station):
    station.cpo.time_zone = "Europe/Helsinki"
    station.cpo.save()
    _session(station)
    client.force_login(bob)

    html = client.get(reverse("stations:sessions")).content.decode()

    assert "CPO A · Viewer · Europe/Helsinki" in html
    assert "2026-03-10 10:00" in html  # 08:00 UTC


def test_a_member_of_two_cpos_switches_between_them(client, alice, station):
    other = make_cpo("CPO Other")
    make_member(alice, other, Membership.Role.TECHNICIAN)
    make_station("CP-OTHER", cpo=other)
    client.force_login(alice)
    assert client.get(reverse("stations:home")).context["counts"]["total"] == 1

    response = client.post(
        reverse("cpo:switch"), {"cpo": other.pk, "next": reverse("stations:sessions")}
    )

    assert response.status_code == 302
    assert response["Location"] == reverse("stations:sessions")
    home = client.get(reverse("stations:home"))
    assert home.context["current_cpo"].name == "CPO Other"
    assert "CPO Other · Technician" in home.content.decode()
    assert home.context["counts"]["total"] == 1
    assert "CP-OTHER" in client.get(reverse("stations:list")).content.decode()


def test_switching_to_a_cpo_not_ones_own_is_a_404(client, carol, alice, station):
    client.force_login(carol)

    response = client.post(reverse("cpo:switch"), {"cpo": station.cpo_id})

    assert response.status_code == 404


def test_switch_never_redirects_off_site(client, alice, station):
    client.force_login(alice)

    response = client.post(
        reverse("cpo:switch"), {"cpo": station.cpo_id, "next": "https://evil.example/"}
    )

    assert response["Location"] == reverse("stations:home")


# ---- station page ----------------------------------------------------------------------


def test_station_page_shows_live_power_energy_duration_and_links_its_sessions(
    client, alice, station
):
    tx = _session(
        station,
        state=Transaction.State.ACTIVE,
        start_time=timezone.now() - timedelta(minutes=4),
        meter_start=1000,
    )
    _samples(tx)
    client.force_login(alice)

    html = client.get(reverse("stations:detail", args=[station.pk])).content.decode()

    assert "30.0 kW" in html
    assert "2.00 kWh" in html
    assert "4 min" in html
    assert f"{reverse('stations:sessions')}?station={station.pk}" in html
    assert reverse("stations:session", args=[tx.pk]) in html


def test_a_cpo_admin_sets_the_time_zone_and_every_page_follows(client, alice, bob, station):
    from cpo.models import AuditEvent

    client.force_login(alice)
    url = reverse("cpo:settings", args=[station.cpo_id])

    response = client.post(url, {"time_zone": "America/New_York"})

    assert response.status_code == 302
    station.cpo.refresh_from_db()
    assert station.cpo.time_zone == "America/New_York"
    assert AuditEvent.objects.filter(action="cpo_settings_changed").count() == 1
    assert "America/New_York" in client.get(reverse("stations:home")).content.decode()
    assert client.post(url, {"time_zone": "Mars/Olympus"}).status_code == 400
    client.force_login(bob)
    assert client.post(url, {"time_zone": "UTC"}).status_code == 403


def test_a_charger_that_samples_only_energy_still_shows_power(client, alice, station):
    tx = _session(
        station,
        state=Transaction.State.ACTIVE,
        start_time=timezone.now() - timedelta(minutes=10),
        meter_start=0,
    )
    for minute, wh in ((2, 1000), (8, 2100)):  # 1.1 kWh in 6 min: 11 kW
        MeterValue.objects.create(
            station=station,
            transaction=tx,
            connector_id=1,
            timestamp=tx.start_time + timedelta(minutes=minute),
            value=str(wh),
            numeric_value=wh,
            normalized_value=wh,
            normalized_unit="Wh",
            unit="Wh",
            location="Outlet",
        )
    client.force_login(alice)

    station_page = client.get(reverse("stations:detail", args=[station.pk])).content.decode()
    session_page = client.get(reverse("stations:session", args=[tx.pk])).content.decode()

    assert "11.0 kW" in station_page
    assert "Power (from energy) (kW)" in session_page
    assert session_page.count("<polyline") == 2
