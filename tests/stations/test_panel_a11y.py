"""What issue 20 and issue 14's "Errors and permissions" ask of the server's HTML: menus by
role, the error summary and "Error: " title, labelled keyboard-scrollable payloads, the
"Visible to customers" rule, decimal commas and a CBID error that names the character."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from cpo.models import Membership
from stations.models import Command, Connector, OcppMessage, Station
from stations.services.station_settings import visibility_missing
from tests.factories import make_member, make_station, make_user
from tests.stations.test_views_operations import settings_data

pytestmark = pytest.mark.django_db


@pytest.fixture
def station_a(cpo_a):
    station = make_station("CP-A11Y-1", cpo=cpo_a, connected=True, channel_name="chan.a11y")
    Connector.objects.create(station=station, connector_id=1, status="Available")
    return station


# --- menus show what the role can do -----------------------------------------------------


@pytest.mark.parametrize(
    ("role", "offers_add"),
    [
        (Membership.Role.ADMIN, True),
        (Membership.Role.TECHNICIAN, False),
        (Membership.Role.VIEWER, False),
    ],
)
def test_the_settings_menu_offers_add_new_station_only_to_those_who_may(
    client, cpo_a, role, offers_add
):
    user = make_user(f"user-{role}")
    make_member(user, cpo_a, role)
    client.force_login(user)

    html = client.get(reverse("stations:list")).content.decode()

    start = html.index('id="settings-menu"')
    menu = html[start : html.index("</details>", start)]
    assert ("Add new station" in menu) is offers_add


def test_a_superuser_and_a_user_without_a_cpo_are_offered_add_new_station(client, root):
    client.force_login(root)
    assert "Add new station</a>" in client.get(reverse("stations:list")).content.decode()
    loner = make_user("loner")
    client.force_login(loner)
    assert "Add new station</a>" in client.get(reverse("stations:list")).content.decode()


def test_every_page_loads_the_menu_script(client, alice):
    client.force_login(alice)

    html = client.get(reverse("stations:list")).content.decode()

    assert re.search(r'<script src="[^"]*js/panel\.js" defer></script>', html)


# --- error summary -----------------------------------------------------------------------


def test_a_failed_settings_form_starts_with_a_linked_error_summary(client, alice, station_a):
    client.force_login(alice)

    response = client.post(
        reverse("stations:settings", args=[station_a.pk]),
        settings_data(station_a, latitude="north", country="Finland"),
    )

    html = response.content.decode()
    assert response.status_code == 400
    assert "<title>Error: Station settings · CP-A11Y-1 · Virta CSMS</title>" in html
    summary = html[
        html.index('class="error-summary"') : html.index(
            "</ul>", html.index('class="error-summary"')
        )
    ]
    assert 'tabindex="-1"' in summary
    assert "There are problems" in summary
    assert '<a href="#id_latitude">Latitude: Enter a number.</a>' in summary
    assert 'href="#id_country"' in summary
    # The summary comes first in the form, before the fields.
    assert html.index('class="error-summary"') < html.index('id="id_name"')


def test_a_page_without_errors_has_no_error_title(client, alice, station_a):
    client.force_login(alice)

    html = client.get(reverse("stations:settings", args=[station_a.pk])).content.decode()

    assert "<title>Station settings" in html
    assert "error-summary" not in html


def test_a_failed_login_has_the_summary_and_the_error_title(client, alice):
    response = client.post(reverse("login"), {"username": "alice", "password": "wrong"})

    html = response.content.decode()
    assert "<title>Error: Log in" in html
    assert 'class="error-summary"' in html


def test_a_failed_command_comes_back_at_its_form_with_its_summary(client, alice, station_a):
    client.force_login(alice)

    response = client.post(
        reverse("stations:command", args=[station_a.pk]),
        {"kind": "reset", "reset-type": "Sideways"},
    )

    html = response.content.decode()
    assert response.status_code == 400
    assert html.startswith("<!doctype html>") or "<!doctype html>" in html[:40]
    assert "<title>Error: CP-A11Y-1" in html
    form_at = html.index('id="command-reset"')
    summary_at = html.index('class="error-summary"')
    assert summary_at > form_at
    assert html.index("</form>", form_at) > summary_at
    # The form posts to its own position: a failed submit comes back scrolled to it.
    assert f'action="{reverse("stations:command", args=[station_a.pk])}#command-reset"' in html
    assert 'href="#id_reset-type_0"' in html


# --- live parts and payloads --------------------------------------------------------------


def test_the_live_parts_are_aria_live_regions(client, alice, station_a):
    client.force_login(alice)

    html = client.get(reverse("stations:detail", args=[station_a.pk])).content.decode()

    assert '<span data-live-part="connection" aria-live="polite">' in html
    assert '<div data-live-part="connectors" aria-live="polite">' in html
    # The command history, not the configuration table (hundreds of rows) beside it.
    assert 'id="command-history" aria-labelledby="command-history-title" aria-live="polite"' in html
    assert 'id="configuration" aria-labelledby="configuration-title">' in html


def test_long_payloads_are_labelled_keyboard_scrollable_regions(client, alice, station_a):
    Command.objects.create(
        station=station_a,
        action="GetConfiguration",
        payload={},
        status="accepted",
        response={"configurationKey": [{"key": f"K{i}", "value": "x" * 40} for i in range(6)]},
    )
    OcppMessage.objects.create(
        station=station_a,
        cbid=station_a.cbid,
        direction="in",
        message_type=2,
        action="BootNotification",
        unique_id="u-1",
        payload={"chargePointVendor": "Acme"},
    )
    client.force_login(alice)

    detail = client.get(reverse("stations:detail", args=[station_a.pk])).content.decode()
    log = client.get(reverse("stations:log", args=[station_a.pk])).content.decode()

    for html, label in (
        (detail, "Answer to GetConfiguration of"),
        (log, "Payload of BootNotification at"),
    ):
        pres = re.findall(r"<pre[^>]*>", html)
        assert pres
        for pre in pres:
            assert 'tabindex="0"' in pre and 'role="region"' in pre and "aria-label=" in pre
        assert label in html


# --- station settings rules -------------------------------------------------------------


def test_visible_is_not_tickable_while_requirements_are_missing(client, alice, station_a):
    client.force_login(alice)

    html = client.get(reverse("stations:settings", args=[station_a.pk])).content.decode()

    box = re.search(r'<input type="checkbox" name="visible"[^>]*>', html).group(0)
    assert " disabled" in box
    assert 'aria-describedby="id_visible_helptext visible-missing"' in box
    assert 'id="visible-missing"' in html
    assert re.search(r'<script src="[^"]*js/station_settings\.js" defer>', html)


def test_visible_is_tickable_once_the_station_has_what_it_needs(client, alice, station_a):
    Station.objects.filter(pk=station_a.pk).update(
        name="Harbour",
        street="Satamakatu 1",
        city="Helsinki",
        country="FI",
        latitude="60.1",
        longitude="24.9",
    )
    client.force_login(alice)

    html = client.get(reverse("stations:settings", args=[station_a.pk])).content.decode()

    box = re.search(r'<input type="checkbox" name="visible"[^>]*>', html).group(0)
    assert "disabled" not in box


def test_a_station_still_named_created_cannot_go_public(client, alice, station_a):
    client.force_login(alice)

    response = client.post(
        reverse("stations:settings", args=[station_a.pk]),
        settings_data(station_a, name="Created 2026-11-29 10:15", visible="on"),
    )

    assert response.status_code == 400
    assert "a name of its own" in response.context["form"].errors["visible"][0]
    assert not Station.objects.get(pk=station_a.pk).visible
    station_a.refresh_from_db()
    station_a.name = "Created 2026-11-29 10:15"
    assert any("name of its own" in m for m in visibility_missing(station_a))


def test_a_decimal_comma_is_accepted_in_coordinates_and_power(client, alice, station_a):
    connector = station_a.connectors.get()
    client.force_login(alice)

    response = client.post(
        reverse("stations:settings", args=[station_a.pk]),
        settings_data(
            station_a,
            latitude="60,1699",
            longitude=" 24,9384 ",
            **{f"connector_{connector.pk}_max_power_kw": "22,5"},
        ),
    )

    assert response.status_code == 302
    station = Station.objects.get(pk=station_a.pk)
    assert (str(station.latitude), str(station.longitude)) == ("60.169900", "24.938400")
    assert str(Connector.objects.get(pk=connector.pk).max_power_kw) == "22.5"


# --- CBID errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cbid", "said"),
    [
        ("CP 1", "spaces are not allowed"),
        ("Lähde-1", "'ä' is not allowed"),
        ("CP#1", "'#' is not allowed"),
    ],
)
def test_the_cbid_error_names_the_offending_character(client, alice, cpo_a, cbid, said):
    client.force_login(alice)

    response = client.post(
        reverse("stations:add"), {"protocol": "ocpp", "cbid": cbid, "cpo": cpo_a.pk}
    )

    errors = " ".join(response.context["form"].errors["cbid"])
    assert said in errors
    assert ".." not in errors
