"""Charger passwords issued from the panel: at claim time and from the station page."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from cpo.models import AuditEvent, Membership
from ocpp_spec.passwords import verify_password
from stations.models import Command, Protocol, Station
from stations.services.passwords import station_password_set
from tests.factories import make_member, make_station, make_user

pytestmark = pytest.mark.django_db


def shown_password(response) -> str:
    match = re.search(r'id="charger-password">([A-Za-z0-9]+)<', response.content.decode())
    assert match, "the password is not shown"
    return match.group(1)


def test_claim_with_a_generated_password_shows_it_once_and_requires_it(client, alice, cpo_a):
    make_station("CP-POOL-1", cpo=None)
    client.force_login(alice)

    response = client.post(
        reverse("stations:add"),
        {"protocol": "ocpp", "cbid": "cp-pool-1", "cpo": cpo_a.pk, "generate_password": "on"},
    )

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    password = shown_password(response)
    assert 16 <= len(password) <= 40
    station = Station.objects.get(cbid="CP-POOL-1")
    assert station.cpo == cpo_a
    assert station.security_profile == 1
    assert verify_password(password, station.auth_password_hash, version="1.6")
    assert "offline" in response.content.decode()
    assert password not in str(response.cookies)
    assert AuditEvent.objects.filter(
        action=AuditEvent.Action.STATION_PASSWORD_ISSUED, target="CP-POOL-1"
    ).exists()


def test_claim_without_the_box_sets_no_password(client, alice, cpo_a):
    make_station("CP-POOL-2", cpo=None)
    client.force_login(alice)

    response = client.post(
        reverse("stations:add"), {"protocol": "ocpp", "cbid": "CP-POOL-2", "cpo": cpo_a.pk}
    )

    assert response.status_code == 302
    assert Station.objects.get(cbid="CP-POOL-2").auth_password_hash == ""


def test_a_connected_charger_is_sent_its_new_password_and_keeps_working(client, alice, cpo_a):
    station = make_station("CP-LIVE", cpo=cpo_a, connected=True, channel_name="nobody.here")
    client.force_login(alice)

    response = client.post(reverse("stations:password", args=[station.pk]))

    assert response.status_code == 200
    password = shown_password(response)
    station.refresh_from_db()
    # Not required until the charger confirms: the pending password waits beside "none".
    assert station.auth_password_hash == ""
    assert verify_password(password, station.auth_password_pending_hash, version="1.6")
    command = Command.objects.get(station=station, action="ChangeConfiguration")
    assert command.payload["key"] == "AuthorizationKey"
    assert "sent" in response.content.decode()


def test_a_technician_may_issue_a_password(client, cpo_a):
    tech = make_user("terry")
    make_member(tech, cpo_a, Membership.Role.TECHNICIAN)
    station = make_station("CP-T", cpo=cpo_a)
    client.force_login(tech)

    response = client.post(reverse("stations:password", args=[station.pk]))

    assert response.status_code == 200
    station.refresh_from_db()
    assert verify_password(shown_password(response), station.auth_password_hash, version="1.6")


def test_a_viewer_gets_403_and_nothing_changes(client, bob, cpo_a):
    station = make_station("CP-V", cpo=cpo_a)
    client.force_login(bob)

    assert client.post(reverse("stations:password", args=[station.pk])).status_code == 403
    station.refresh_from_db()
    assert station.auth_password_hash == ""


def test_another_cpo_gets_404(client, carol, cpo_a):
    station = make_station("CP-O", cpo=cpo_a)
    client.force_login(carol)

    assert client.post(reverse("stations:password", args=[station.pk])).status_code == 404


def test_login_is_required(client, cpo_a):
    station = make_station("CP-L", cpo=cpo_a)

    response = client.post(reverse("stations:password", args=[station.pk]))

    assert response.status_code == 302
    assert reverse("login") in response["Location"]


def test_a_get_is_not_allowed(client, alice, cpo_a):
    station = make_station("CP-G", cpo=cpo_a)
    client.force_login(alice)

    assert client.get(reverse("stations:password", args=[station.pk])).status_code == 405


def test_vendor_protocol_stations_have_no_charger_password(client, alice, cpo_a):
    station = make_station("ENSTO-1", cpo=cpo_a, protocol=Protocol.ENSTO, ocpp_version="")
    client.force_login(alice)

    response = client.post(reverse("stations:password", args=[station.pk]), follow=True)

    assert "Only OCPP stations" in response.content.decode()
    station.refresh_from_db()
    assert station.auth_password_hash == ""


# ---- a CBID that Basic auth cannot carry (issue 11.6) ---------------------------------------


def test_no_password_for_a_cbid_with_a_colon_and_the_panel_says_why(client, alice, cpo_a):
    station = make_station("CP:1", cpo=cpo_a)
    client.force_login(alice)

    response = client.post(reverse("stations:password", args=[station.pk]), follow=True)

    page = response.content.decode()
    assert "contains “:”" in page and "Basic auth" in page
    station.refresh_from_db()
    assert station.auth_password_hash == ""
    assert not AuditEvent.objects.filter(action="station_password_issued").exists()


def test_no_password_is_ever_set_for_a_cbid_with_a_colon(cpo_a):
    station = make_station("CP:2", cpo=cpo_a)
    with pytest.raises(ValueError, match="Basic auth"):
        station_password_set(station=station, password="a" * 20)
    station.refresh_from_db()
    assert station.auth_password_hash == ""


def test_the_cli_issues_a_password_or_says_why_not(cpo_a):
    make_station("CP:3", cpo=cpo_a)
    with pytest.raises(CommandError, match="contains “:”"):
        call_command("stations", "password", "cp:3")

    station = make_station("CP-CLI", cpo=cpo_a)
    out = StringIO()
    call_command("stations", "password", "cp-cli", stdout=out)
    password = out.getvalue().splitlines()[0].removeprefix("CP-CLI: ")
    station.refresh_from_db()
    assert verify_password(password, station.auth_password_hash, version="2.0.1")
    assert AuditEvent.objects.filter(action="station_password_issued", user=None).exists()
