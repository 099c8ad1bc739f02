"""Issue 11 points 2 and 3 in the panel: strong claim mode, the Add form's password
default, the Ensto / Remotec note, and the flags of stations without a password."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from ocpp_spec.passwords import hash_password
from stations.models import Protocol, Station
from stations.services.claiming import ClaimError, station_claim, station_claim_code
from tests.factories import make_station, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def strong(settings):
    settings.CLAIM_REQUIRE_PROOF = True


def test_strong_mode_claims_with_the_serial_number_reported_at_boot(alice, cpo_a, strong):
    make_station("CP-SN", serial_number="SN-12345")

    station = station_claim(user=alice, protocol=Protocol.OCPP, cbid="CP-SN", proof=" sn-12345 ")

    assert station.cpo == cpo_a


def test_strong_mode_claims_with_the_charge_box_serial_too(alice, cpo_a, strong):
    make_station("CP-CB", charge_box_serial_number="BOX-9")

    assert station_claim(user=alice, protocol=Protocol.OCPP, cbid="CP-CB", proof="BOX-9").cpo


def test_strong_mode_claims_with_the_claim_code(alice, cpo_a, strong):
    pooled = make_station("CP-CODE")
    code = station_claim_code(pooled)

    assert station_claim(user=alice, protocol=Protocol.OCPP, cbid="cp-code", proof=code).cpo


def test_strong_mode_refuses_a_wrong_proof_like_a_cbid_that_never_connected(alice, strong):
    make_station("CP-SN", serial_number="SN-12345")

    with pytest.raises(ClaimError) as wrong:
        station_claim(user=alice, protocol=Protocol.OCPP, cbid="CP-SN", proof="SN-00000")
    with pytest.raises(ClaimError) as never:
        station_claim(user=alice, protocol=Protocol.OCPP, cbid="CP-NONE", proof="SN-00000")

    assert wrong.value.message.replace("CP-SN", "X") == never.value.message.replace("CP-NONE", "X")
    assert Station.objects.get(cbid="CP-SN").cpo is None


def test_strong_mode_needs_a_proof(alice, strong):
    make_station("CP-SN", serial_number="SN-12345")

    with pytest.raises(ClaimError) as caught:
        station_claim(user=alice, protocol=Protocol.OCPP, cbid="CP-SN")

    assert caught.value.field == "proof"


def test_an_empty_serial_never_matches(alice, strong):
    make_station("CP-NOSN")

    with pytest.raises(ClaimError):
        station_claim(user=alice, protocol=Protocol.OCPP, cbid="CP-NOSN", proof=" ")


def test_claim_codes_differ_per_station_and_need_the_secret(settings):
    one, two = make_station("CP-1"), make_station("CP-2")
    code = station_claim_code(one)

    assert code != station_claim_code(two)
    settings.SECRET_KEY = "another-secret"
    assert code != station_claim_code(one)


def test_the_add_form_asks_for_the_proof_only_in_strong_mode(client, alice, settings):
    client.force_login(alice)
    assert "Serial number or claim code" not in client.get(reverse("stations:add")).content.decode()

    settings.CLAIM_REQUIRE_PROOF = True
    assert "Serial number or claim code" in client.get(reverse("stations:add")).content.decode()


def test_superusers_see_a_pool_station_claim_code_in_strong_mode(client, strong):
    pooled = make_station("CP-POOL")
    client.force_login(make_user("root", superuser=True))

    page = client.get(reverse("stations:detail", args=[pooled.pk])).content.decode()

    assert station_claim_code(pooled) in page


def test_staff_of_a_cpo_never_see_claim_codes(client, alice, cpo_a, strong):
    mine = make_station("CP-MINE", cpo=cpo_a)
    client.force_login(alice)

    page = client.get(reverse("stations:detail", args=[mine.pk])).content.decode()

    assert station_claim_code(mine) not in page


def test_generate_a_charger_password_is_ticked_by_default(client, alice):
    client.force_login(alice)

    form = client.get(reverse("stations:add")).context["form"]

    assert form["generate_password"].value() is True
    page = client.get(reverse("stations:add")).content.decode()
    assert 'name="generate_password"' in page and "checked" in page


def test_an_ensto_station_form_hides_the_password_and_says_nothing_speaks_it(client, alice):
    client.force_login(alice)

    page = client.get(reverse("stations:add")).content.decode()
    assert '<div id="ocpp-only">' in page
    assert 'id="vendor-protocol-note" hidden' in page

    # After a refused Ensto post the page is drawn for Ensto.
    make_station("ENSTO-X", protocol=Protocol.ENSTO, cpo=None)
    response = client.post(reverse("stations:add"), {"protocol": "ensto", "cbid": " "})
    page = response.content.decode()
    assert '<div id="ocpp-only" hidden>' in page
    assert 'id="vendor-protocol-note" hidden' not in page
    assert "Nothing in this system speaks the Ensto or Remotec protocols yet" in page


def test_claiming_with_the_default_shows_the_password_once_with_its_key(client, alice, cpo_a):
    make_station("CP-PW", ocpp_version="1.6")
    client.force_login(alice)

    response = client.post(
        reverse("stations:add"),
        {"protocol": "ocpp", "cbid": "CP-PW", "cpo": cpo_a.pk, "generate_password": "on"},
    )

    page = response.content.decode()
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    assert "AuthorizationKey" in page
    assert 'data-copy="charger-password"' in page
    station = Station.objects.get(cbid="CP-PW")
    assert station.auth_password_hash and station.auth_password_used_at is None


def test_the_station_list_and_page_flag_stations_without_a_password(client, alice, cpo_a):
    bare = make_station("CP-BARE", cpo=cpo_a)
    unused = make_station(
        "CP-UNUSED", cpo=cpo_a, auth_password_hash=hash_password("x" * 20), security_profile=1
    )
    used = make_station(
        "CP-USED",
        cpo=cpo_a,
        auth_password_hash=hash_password("y" * 20),
        security_profile=1,
        auth_password_used_at=timezone.now(),
    )
    make_station("ENSTO-1", cpo=cpo_a, protocol=Protocol.ENSTO)
    client.force_login(alice)

    page = client.get(reverse("stations:list")).content.decode()

    assert page.count('data-password="none"') == 1
    assert page.count('data-password="unused"') == 1
    detail = client.get(reverse("stations:detail", args=[bare.pk])).content.decode()
    assert "No password" in detail and "anyone who knows its CBID" in detail
    detail = client.get(reverse("stations:detail", args=[unused.pk])).content.decode()
    assert "No password yet" in detail
    detail = client.get(reverse("stations:detail", args=[used.pk])).content.decode()
    assert "Password in use" in detail
