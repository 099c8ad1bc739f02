"""The panel's pages: CPO isolation four ways over every URL, then each page's behaviour."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from cpo.models import Membership
from stations.models import ConnectionAttempt, Connector, Station, StationAssignment
from tests.factories import PASSWORD, make_cpo, make_member, make_station, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def station_a(cpo_a):
    return make_station("CP-A1", cpo=cpo_a, vendor="Acme", model="Fast 22")


@pytest.fixture
def pooled():
    return make_station("CP-POOL-9", vendor="Acme", model="Pool 11")


@pytest.fixture
def cpo_c(alice):
    """A second CPO alice is admin of, so she may move stations between A and C."""
    cpo = make_cpo("CPO C")
    make_member(alice, cpo, Membership.Role.ADMIN)
    return cpo


# Every panel URL: (url name, takes the station's pk, method, POST data for a valid write).
PANEL_URLS = [
    ("stations:list", False, "get", None),
    ("stations:connect", False, "get", None),
    ("stations:add", False, "get", None),
    ("stations:add", False, "post", {"protocol": "ocpp", "cbid": "CP-POOL-9"}),
    ("stations:detail", True, "get", None),
    ("stations:change_cpo", True, "post", "cpo_c"),
]
IDS = [f"{method} {name}" for name, _, method, _ in PANEL_URLS]
# Pages outside the CPO four-way table that need a login all the same.
OTHER_LOGIN_URLS = [
    ("stations:attempts", False, "get", None),
    ("password_change", False, "get", None),
    ("password_change_done", False, "get", None),
]
LOGIN_URLS = PANEL_URLS + OTHER_LOGIN_URLS
LOGIN_IDS = IDS + [f"{method} {name}" for name, _, method, _ in OTHER_LOGIN_URLS]


def _url(name: str, takes_pk: bool, station: Station) -> str:
    return reverse(name, args=[station.pk] if takes_pk else [])


def _data(data, request) -> dict | None:
    if data == "cpo_c":
        return {"cpo": request.getfixturevalue("cpo_c").pk}
    if data is not None:
        return dict(data, cpo=request.getfixturevalue("cpo_a").pk)
    return None


@pytest.mark.parametrize(("name", "takes_pk", "method", "data"), PANEL_URLS, ids=IDS)
def test_every_url_works_for_a_member(
    client, alice, station_a, pooled, name, takes_pk, method, data, request
):
    client.force_login(alice)
    data = _data(data, request)

    response = getattr(client, method)(_url(name, takes_pk, station_a), data)

    if method == "get":
        assert response.status_code == 200
    else:
        assert response.status_code == 302, response.content.decode()[:2000]


@pytest.mark.parametrize(("name", "takes_pk", "method", "data"), LOGIN_URLS, ids=LOGIN_IDS)
def test_every_url_requires_login(client, station_a, name, takes_pk, method, data):
    url = _url(name, takes_pk, station_a)

    response = getattr(client, method)(url, data if isinstance(data, dict) else {})

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url}"


@pytest.mark.parametrize(("name", "takes_pk", "method", "data"), PANEL_URLS, ids=IDS)
def test_another_cpos_user_never_reaches_cpo_a_stations(
    client, carol, station_a, pooled, name, takes_pk, method, data, request
):
    client.force_login(carol)
    data = {"protocol": "ocpp", "cbid": "CP-A1"} if name == "stations:add" else _data(data, request)

    response = getattr(client, method)(_url(name, takes_pk, station_a), data)

    if takes_pk:
        # Another CPO's station does not exist for carol: 404, not 403.
        assert response.status_code == 404
    else:
        assert response.status_code in (200, 400)
        assert "CPO A" not in response.content.decode()
    station_a.refresh_from_db()
    assert station_a.cpo.name == "CPO A"


@pytest.mark.parametrize(("name", "takes_pk", "method", "data"), PANEL_URLS, ids=IDS)
def test_a_viewer_reads_but_every_write_is_forbidden(
    client, bob, station_a, pooled, name, takes_pk, method, data, request
):
    client.force_login(bob)
    data = _data(data, request)

    response = getattr(client, method)(_url(name, takes_pk, station_a), data)

    if method == "post" or name == "stations:add":
        assert response.status_code == 403
    else:
        assert response.status_code == 200
    assert not StationAssignment.objects.exists()
    assert Station.objects.get(pk=pooled.pk).cpo is None


# --- auth pages -----------------------------------------------------------------------


def test_login_page_logs_in_and_lands_on_home(client, alice):
    page = client.get(reverse("login"))
    assert page.status_code == 200
    assert 'name="username"' in page.content.decode()

    response = client.post(reverse("login"), {"username": "alice", "password": PASSWORD})

    assert response.status_code == 302
    assert response["Location"] == reverse("stations:home")


def test_logout_is_a_post_from_the_navigation(client, alice):
    client.force_login(alice)
    assert f'action="{reverse("logout")}"' in client.get(reverse("stations:list")).content.decode()

    client.post(reverse("logout"))

    assert client.get(reverse("stations:list")).status_code == 302


def test_password_change_uses_the_projects_template(client, alice):
    client.force_login(alice)

    response = client.post(
        reverse("password_change"),
        {
            "old_password": PASSWORD,
            "new_password1": "another-long-passphrase",
            "new_password2": "another-long-passphrase",
        },
    )

    assert response.status_code == 302
    done = client.get(response["Location"])
    assert "Password changed" in done.content.decode()
    alice.refresh_from_db()
    assert alice.check_password("another-long-passphrase")


def test_the_navigation_reads_settings_then_station_list(client, alice):
    client.force_login(alice)

    html = client.get(reverse("stations:connect")).content.decode()

    assert "<summary>Settings</summary>" in html
    assert f'<a href="{reverse("stations:list")}">Station List</a>' in html


# --- Station List ---------------------------------------------------------------------


def test_the_list_shows_only_the_users_cpo_stations(client, alice, station_a, cpo_b, pooled):
    make_station("CP-B1", cpo=cpo_b)
    client.force_login(alice)

    response = client.get(reverse("stations:list"))

    assert [s.cbid for s in response.context["stations"]] == ["CP-A1"]


def test_a_superuser_sees_every_station_and_filters_the_pool(client, root, station_a, pooled):
    client.force_login(root)

    everything = client.get(reverse("stations:list"))
    only_pool = client.get(reverse("stations:list"), {"pool": "only"})
    with_cpo = client.get(reverse("stations:list"), {"pool": "exclude"})

    assert {s.cbid for s in everything.context["stations"]} == {"CP-A1", "CP-POOL-9"}
    assert [s.cbid for s in only_pool.context["stations"]] == ["CP-POOL-9"]
    assert [s.cbid for s in with_cpo.context["stations"]] == ["CP-A1"]


def test_the_pool_filter_is_ignored_for_cpo_staff(client, alice, station_a, pooled):
    client.force_login(alice)

    response = client.get(reverse("stations:list"), {"pool": "only"})

    assert [s.cbid for s in response.context["stations"]] == ["CP-A1"]


def test_the_list_searches_cbid_or_name(client, alice, cpo_a):
    make_station("CP-NORTH", cpo=cpo_a, name="Harbour")
    make_station("CP-SOUTH", cpo=cpo_a, name="Market square")
    client.force_login(alice)

    by_cbid = client.get(reverse("stations:list"), {"q": "north"})
    by_name = client.get(reverse("stations:list"), {"q": "MARKET"})

    assert [s.cbid for s in by_cbid.context["stations"]] == ["CP-NORTH"]
    assert [s.cbid for s in by_name.context["stations"]] == ["CP-SOUTH"]


def test_the_list_filters_stations_connected_during_the_last_month(client, alice, cpo_a):
    now = timezone.now()
    make_station("CP-ONLINE", cpo=cpo_a, connected=True, last_seen=now)
    make_station("CP-RECENT", cpo=cpo_a, last_seen=now - timedelta(days=3))
    make_station("CP-OLD", cpo=cpo_a, last_seen=now - timedelta(days=45))
    make_station("CP-NEVER", cpo=cpo_a)
    client.force_login(alice)

    response = client.get(reverse("stations:list"), {"recent": "1"})

    assert {s.cbid for s in response.context["stations"]} == {"CP-ONLINE", "CP-RECENT"}


def test_the_list_is_sorted_by_date_added_newest_first(client, alice, cpo_a):
    for cbid, days in [("CP-MIDDLE", 2), ("CP-OLDEST", 9), ("CP-NEWEST", 0)]:
        station = make_station(cbid, cpo=cpo_a)
        Station.objects.filter(pk=station.pk).update(
            created_at=timezone.now() - timedelta(days=days)
        )
    client.force_login(alice)

    response = client.get(reverse("stations:list"))

    assert [s.cbid for s in response.context["stations"]] == ["CP-NEWEST", "CP-MIDDLE", "CP-OLDEST"]


def test_the_list_is_paginated_and_keeps_its_filters(client, alice, cpo_a):
    for i in range(30):
        make_station(f"CP-{i:02}", cpo=cpo_a)
    client.force_login(alice)

    first = client.get(reverse("stations:list"), {"q": "CP-"})
    second = client.get(reverse("stations:list"), {"q": "CP-", "page": 2})

    assert len(first.context["stations"]) == 25
    assert len(second.context["stations"]) == 5
    assert "?q=CP-&amp;page=2" in first.content.decode()


def test_the_list_shows_the_columns(client, alice, cpo_a):
    station = make_station(
        "CP-COLS",
        cpo=cpo_a,
        name="Harbour",
        vendor="Acme",
        model="Fast 22",
        disconnected_at=timezone.now(),
    )
    Connector.objects.create(station=station, connector_id=1, status="Available")
    Connector.objects.create(station=station, connector_id=2, status="Faulted")
    client.force_login(alice)

    html = client.get(reverse("stations:list")).content.decode()

    for text in ["CP-COLS", "Harbour", "CPO A", "OCPP", "1.6", "Offline since", "Acme Fast 22"]:
        assert text in html
    assert "1 · Available" in html and "2 · Faulted" in html


@pytest.mark.parametrize("count", [2, 7])
def test_the_list_takes_a_fixed_number_of_queries(
    client, alice, cpo_a, count, django_assert_num_queries
):
    for i in range(count):
        station = make_station(f"CP-{i}", cpo=cpo_a, connected=i % 2 == 0)
        for connector_id in (1, 2):
            Connector.objects.create(station=station, connector_id=connector_id, status="Available")
    client.force_login(alice)

    # session, user, count, stations (+ CPO), connectors, "may add?", the menu's "Team?"
    # and "Add new station?", the uptime column's status history and planned maintenance
    # (alerts/station_list.py)
    with django_assert_num_queries(10):
        response = client.get(reverse("stations:list"))

    assert len(response.context["stations"]) == count


# --- Add new station ------------------------------------------------------------------


def test_the_add_form_hides_the_cpo_when_there_is_exactly_one(client, alice):
    client.force_login(alice)

    html = client.get(reverse("stations:add")).content.decode()

    assert "CBID (Chargebox Identity)" in html
    assert '<select name="cpo"' not in html
    assert 'type="hidden" name="cpo"' in html
    for option in ["Ensto", "OCPP", "Remotec"]:
        assert f">{option}</option>" in html
    assert ">Add</button>" in html


def test_the_add_form_offers_only_the_cpos_the_user_may_add_to(client, alice, cpo_b, cpo_c):
    client.force_login(alice)

    form = client.get(reverse("stations:add")).context["form"]

    assert [c.name for c in form.fields["cpo"].queryset] == ["CPO A", "CPO C"]


def test_adding_a_pooled_charger_goes_back_to_the_list_with_a_message(client, alice, cpo_a, pooled):
    client.force_login(alice)

    response = client.post(
        reverse("stations:add"),
        {"protocol": "ocpp", "cbid": " cp-pool-9 ", "cpo": cpo_a.pk},
        follow=True,
    )

    assert response.redirect_chain == [(reverse("stations:list"), 302)]
    html = response.content.decode()
    assert "Station CP-POOL-9 was added to CPO A." in html
    assert [s.cbid for s in response.context["stations"]] == ["CP-POOL-9"]
    assert Station.objects.get(pk=pooled.pk).cpo == cpo_a


def test_a_cbid_that_never_connected_shows_its_error_beside_the_field(client, alice, cpo_a):
    client.force_login(alice)

    response = client.post(
        reverse("stations:add"), {"protocol": "ocpp", "cbid": "NOPE-1", "cpo": cpo_a.pk}
    )

    assert response.status_code == 400
    assert response.context["form"].errors["cbid"] == [
        "No charger with the CBID “NOPE-1” is waiting to be added. Set the charger's OCPP "
        "backend URL to ws://127.0.0.1:8000/ocpp/NOPE-1 and restart it; once it has connected, "
        "add it here. If it connected already and cannot be added, contact support."
    ]
    assert 'id="id_cbid_error"' in response.content.decode()


def test_an_empty_cbid_is_required(client, alice, cpo_a):
    client.force_login(alice)

    response = client.post(reverse("stations:add"), {"protocol": "ocpp", "cbid": "  "})

    assert response.status_code == 400
    assert "cbid" in response.context["form"].errors


def test_a_user_in_no_cpo_sees_an_explanation_instead_of_the_form(client, db):
    client.force_login(make_user("dave"))

    response = client.get(reverse("stations:add"))

    assert response.status_code == 200
    assert "form" not in response.context
    assert "You are not a member of any CPO" in response.content.decode()


def test_an_ensto_station_is_shown_waiting_for_connection(client, alice, cpo_a):
    client.force_login(alice)

    response = client.post(
        reverse("stations:add"),
        {"protocol": "ensto", "cbid": "ENSTO-77", "cpo": cpo_a.pk},
        follow=True,
    )

    assert "Waiting for connection" in response.content.decode()
    assert Station.objects.get(cbid="ENSTO-77").protocol == "ensto"


# --- station page ---------------------------------------------------------------------


def test_the_station_page_shows_boot_facts_connectors_and_history(client, alice, cpo_a, pooled):
    Station.objects.filter(pk=pooled.pk).update(
        firmware_version="4.2.1", last_boot_at=timezone.now(), connected=True
    )
    Connector.objects.create(station=pooled, connector_id=1, status="Charging")
    client.force_login(alice)
    client.post(reverse("stations:add"), {"protocol": "ocpp", "cbid": "CP-POOL-9", "cpo": cpo_a.pk})

    html = client.get(reverse("stations:detail", args=[pooled.pk])).content.decode()

    for text in ["CP-POOL-9", "CPO A", "Online", "4.2.1", "Pool 11", "Charging", "Pool → CPO A"]:
        assert text in html
    assert "by alice (panel)" in html


def test_the_change_cpo_form_is_only_for_admins_of_the_station_cpo(
    client, alice, bob, station_a, cpo_c
):
    client.force_login(bob)
    assert (
        "Change CPO"
        not in client.get(reverse("stations:detail", args=[station_a.pk])).content.decode()
    )

    client.force_login(alice)
    response = client.get(reverse("stations:detail", args=[station_a.pk]))
    assert "Change CPO" in response.content.decode()
    assert [c.name for c in response.context["cpo_form"].fields["cpo"].queryset] == ["CPO C"]


def test_changing_the_cpo_moves_the_station_and_records_it(client, alice, station_a, cpo_c):
    client.force_login(alice)

    response = client.post(
        reverse("stations:change_cpo", args=[station_a.pk]), {"cpo": cpo_c.pk}, follow=True
    )

    assert "moved from CPO A to CPO C" in response.content.decode()
    assert Station.objects.get(pk=station_a.pk).cpo == cpo_c
    record = StationAssignment.objects.get(station=station_a)
    assert (record.from_cpo_name, record.to_cpo_name, record.by) == ("CPO A", "CPO C", alice)


def test_a_cpo_the_user_is_not_admin_of_is_not_a_choice(client, alice, station_a, cpo_b):
    client.force_login(alice)

    response = client.post(reverse("stations:change_cpo", args=[station_a.pk]), {"cpo": cpo_b.pk})

    assert response.status_code == 400
    assert Station.objects.get(pk=station_a.pk).cpo.name == "CPO A"


# --- Connect a charger, refused connections ---------------------------------------------


def test_connect_a_charger_shows_both_urls_and_every_supported_subprotocol(
    client, alice, settings, monkeypatch
):
    settings.OCPP_PUBLIC_URL = "wss://csms.example.com"
    monkeypatch.setitem(
        __import__("ocpp_spec.identity").identity.SUBPROTOCOLS, "ocpp2.0.1", "2.0.1"
    )
    client.force_login(alice)

    html = client.get(reverse("stations:connect")).content.decode()

    assert "wss://csms.example.com/ocpp/&lt;CBID&gt;" in html
    assert "ws://csms.example.com/ocpp/&lt;CBID&gt;" in html
    assert "<code>ocpp1.6</code>" in html and "<code>ocpp2.0.1</code>" in html
    assert "OCPP 2.0.1" in html
    assert "reboot" in html.lower()


def test_refused_connections_are_for_superusers_only(client, alice, root):
    ConnectionAttempt.objects.create(cbid="BAD CBID", reason=ConnectionAttempt.Reason.BAD_CBID)
    client.force_login(alice)
    assert client.get(reverse("stations:attempts")).status_code == 403

    client.force_login(root)
    response = client.get(reverse("stations:attempts"))

    assert response.status_code == 200
    assert "BAD CBID" in response.content.decode()
    assert "Invalid CBID" in response.content.decode()


def test_refused_connections_show_how_often_an_address_was_refused(client, root):
    ConnectionAttempt.objects.create(
        cbid="SPAM-1",
        remote_addr="203.0.113.9",
        reason=ConnectionAttempt.Reason.POOL_FULL,
        count=280,
    )
    client.force_login(root)

    html = client.get(reverse("stations:attempts")).content.decode()

    assert "203.0.113.9" in html
    assert ">280" in html


def test_static_files_are_served_by_the_project(client):
    response = client.get("/static/css/panel.css")

    assert response.status_code == 200
    assert b"--brand" in b"".join(response.streaming_content)
