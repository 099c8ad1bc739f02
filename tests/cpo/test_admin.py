"""Django admin: the pool filter, search, the "Assign to CPO…" action, CPO memberships."""

from __future__ import annotations

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from stations.models import Connector, Station, StationAssignment
from tests.factories import make_station

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:stations_station_changelist"


def test_the_pool_filter_shows_stations_with_no_cpo(client, root, cpo_a):
    make_station("CP-POOLED")
    make_station("CP-OWNED", cpo=cpo_a)
    client.force_login(root)

    response = client.get(reverse(CHANGELIST), {"cpo": "pool"})

    assert [s.cbid for s in response.context["cl"].result_list] == ["CP-POOLED"]
    assert "No CPO (pool)" in response.content.decode()


@pytest.mark.parametrize("term", ["cp-find", "SER-123", "acme"])
def test_station_search_covers_cbid_serial_and_vendor(client, root, term):
    make_station("CP-FIND", serial_number="SER-123", vendor="Acme")
    make_station("CP-OTHER", serial_number="X", vendor="Other")
    client.force_login(root)

    response = client.get(reverse(CHANGELIST), {"q": term})

    assert [s.cbid for s in response.context["cl"].result_list] == ["CP-FIND"]


def test_the_station_list_shows_the_ocpp_facts(client, root):
    make_station(
        "CP-FACTS", vendor="Acme", model="Fast 22", firmware_version="4.2.1", connected=True
    )
    client.force_login(root)

    html = client.get(reverse(CHANGELIST)).content.decode()

    for header in ["CBID", "Vendor", "Model", "Charge point serial", "Firmware version",
                   "First connected at", "Last seen", "Online"]:  # fmt: skip
        assert header in html
    assert "4.2.1" in html


def test_the_station_page_has_connectors_inline_and_read_only_ocpp_details(client, root):
    station = make_station("CP-PAGE", vendor="Acme")
    Connector.objects.create(station=station, connector_id=1, status="Available")
    client.force_login(root)

    response = client.get(reverse("admin:stations_station_change", args=[station.pk]))

    html = response.content.decode()
    assert response.status_code == 200
    assert "Available" in html
    assert 'name="vendor"' not in html  # read-only: shown, not editable
    assert 'name="cpo"' not in html  # changes only through "Assign to CPO…"


def test_assign_to_cpo_asks_for_the_cpo_first(client, root, cpo_a):
    station = make_station("CP-POOLED")
    client.force_login(root)

    response = client.post(
        reverse(CHANGELIST), {"action": "assign_to_cpo", ACTION_CHECKBOX_NAME: [station.pk]}
    )

    assert response.status_code == 200
    assert "Assign to CPO" in response.content.decode()
    assert Station.objects.get(pk=station.pk).cpo is None


def test_assign_to_cpo_assigns_through_the_service(client, root, cpo_a, cpo_b):
    first = make_station("CP-ONE")
    second = make_station("CP-TWO", cpo=cpo_b)
    client.force_login(root)

    response = client.post(
        reverse(CHANGELIST),
        {
            "action": "assign_to_cpo",
            ACTION_CHECKBOX_NAME: [first.pk, second.pk],
            "apply": "1",
            "cpo": cpo_a.pk,
        },
        follow=True,
    )

    assert "2 station(s) assigned to CPO A." in response.content.decode()
    assert set(Station.objects.values_list("cpo__name", flat=True)) == {"CPO A"}
    records = StationAssignment.objects.order_by("station__cbid")
    assert [(r.station.cbid, r.from_cpo_name, r.source, r.by) for r in records] == [
        ("CP-ONE", "", "admin", root),
        ("CP-TWO", "CPO B", "admin", root),
    ]


def test_the_audit_trail_is_read_only_in_admin(client, root, cpo_a):
    station = make_station("CP-ONE")
    StationAssignment.objects.create(station=station, to_cpo=cpo_a, to_cpo_name="CPO A")
    client.force_login(root)

    listing = client.get(reverse("admin:stations_stationassignment_changelist"))
    add = client.get(reverse("admin:stations_stationassignment_add"))

    assert "CPO A" in listing.content.decode()
    assert add.status_code == 403


def test_the_cpo_admin_shows_memberships_inline(client, root, alice, cpo_a):
    client.force_login(root)

    html = client.get(reverse("admin:cpo_cpo_change", args=[cpo_a.pk])).content.decode()

    assert "memberships-TOTAL_FORMS" in html
    assert "alice" in html


def test_a_station_added_by_hand_starts_in_the_pool(client, root, cpo_a):
    client.force_login(root)

    html = client.get(reverse("admin:stations_station_add")).content.decode()

    assert 'name="cbid"' in html
    assert 'name="cpo"' not in html
