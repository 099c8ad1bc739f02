"""No CBID enumeration beyond what Add new station must say."""

from __future__ import annotations

import json
import re
import uuid
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from cpo.models import AuditEvent, Membership
from stations.models import Protocol, Station
from tests.factories import make_member, make_station, make_user
from tests.security.conftest import A_CBID

pytestmark = pytest.mark.django_db

MISSING_ID = 987654321


@pytest.fixture
def station_b(cpo_b):
    return make_station("CP-B1", cpo=cpo_b, name="Bravo Yard")


def _claim(client: Client, cbid: str, cpo) -> str:
    response = client.post(
        reverse("stations:add"), {"protocol": "ocpp", "cbid": cbid, "cpo": cpo.pk}
    )
    assert response.status_code == 400
    return response.content.decode()


def test_claiming_another_cpo_station_does_not_name_that_cpo(client, alice, cpo_a, station_b):
    client.force_login(alice)

    page = _claim(client, "CP-B1", cpo_a)

    assert "is waiting to be added" in page
    for secret in ("CPO B", "Bravo Yard", "carol"):
        assert secret not in page


def _error(page: str) -> str:
    return re.search(r'id="id_cbid_error"[^>]*>(.*?)</div>', page, re.S).group(1)


def test_another_cpo_station_gets_the_answer_of_a_cbid_that_never_connected(
    client, alice, cpo_a, station_b
):
    """The form must not tell which CBIDs exist: both answers are one, the CBID aside."""
    client.force_login(alice)

    theirs = _error(_claim(client, "CP-B1", cpo_a)).replace("CP-B1", "X")
    never = _error(_claim(client, "CP-NEVER", cpo_a)).replace("CP-NEVER", "X")

    assert theirs == never


def test_an_ensto_station_of_another_cpo_is_not_told_apart_by_protocol(client, alice, cpo_a, cpo_b):
    make_station("ENSTO-B", cpo=cpo_b, protocol=Protocol.ENSTO)
    client.force_login(alice)

    theirs = _error(_claim(client, "ENSTO-B", cpo_a)).replace("ENSTO-B", "X")
    never = _error(_claim(client, "ENSTO-NEVER", cpo_a)).replace("ENSTO-NEVER", "X")

    assert theirs == never
    assert "Ensto" not in theirs


def test_guessing_cbids_is_rate_limited_per_user_and_audited(
    client, alice, cpo_a, station_b, settings
):
    settings.CLAIM_MAX_FAILURES_PER_USER = 3
    client.force_login(alice)

    for n in range(3):
        _claim(client, f"GUESS-{n}", cpo_a)
    response = client.post(
        reverse("stations:add"), {"protocol": "ocpp", "cbid": "GUESS-4", "cpo": cpo_a.pk}
    )

    assert response.status_code == 429
    assert "Too many stations could not be added lately" in response.content.decode()
    refused = AuditEvent.objects.filter(action=AuditEvent.Action.STATION_CLAIM_REFUSED)
    assert [(e.target, e.details["reason"]) for e in refused.order_by("time", "id")] == [
        ("GUESS-0", "unavailable"),
        ("GUESS-1", "unavailable"),
        ("GUESS-2", "unavailable"),
        ("GUESS-4", "rate_limited"),
    ]
    assert {e.username for e in refused} == {"alice"}
    # Even a claim that would succeed is refused while the limit holds.
    make_station("CP-REAL")
    response = client.post(
        reverse("stations:add"), {"protocol": "ocpp", "cbid": "CP-REAL", "cpo": cpo_a.pk}
    )
    assert response.status_code == 429
    assert Station.objects.get(cbid="CP-REAL").cpo is None


def test_claims_into_one_cpo_are_rate_limited_whoever_guesses(client, alice, cpo_a, settings):
    settings.CLAIM_MAX_FAILURES_PER_USER = 0
    settings.CLAIM_MAX_FAILURES_PER_CPO = 2
    other_admin = make_user("dave")
    make_member(other_admin, cpo_a, Membership.Role.ADMIN)
    client.force_login(alice)
    _claim(client, "GUESS-A", cpo_a)
    client.force_login(other_admin)
    _claim(client, "GUESS-B", cpo_a)

    response = client.post(
        reverse("stations:add"), {"protocol": "ocpp", "cbid": "GUESS-C", "cpo": cpo_a.pk}
    )

    assert response.status_code == 429


def test_old_refusals_age_out_of_the_claim_limit(client, alice, cpo_a, settings):
    settings.CLAIM_MAX_FAILURES_PER_USER = 1
    client.force_login(alice)
    _claim(client, "GUESS-OLD", cpo_a)
    AuditEvent.objects.update(
        time=timezone.now() - timedelta(seconds=settings.CLAIM_FAILURE_WINDOW + 1)
    )
    make_station("CP-LATER")

    response = client.post(
        reverse("stations:add"), {"protocol": "ocpp", "cbid": "CP-LATER", "cpo": cpo_a.pk}
    )

    assert response.status_code == 302


def test_a_viewer_cannot_probe_cbids_through_add_new_station(client, bob, cpo_a, station_b):
    client.force_login(bob)

    response = client.post(reverse("stations:add"), {"protocol": "ocpp", "cbid": "CP-B1"})

    assert response.status_code == 403
    assert "another operator" not in response.content.decode()


def test_nobody_logged_out_can_probe_cbids(client, station_b):
    response = client.post(reverse("stations:add"), {"protocol": "ocpp", "cbid": "CP-B1"})

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("name", ["stations:detail", "stations:settings", "stations:log"])
def test_another_cpo_station_page_is_the_very_404_of_a_missing_one(client, carol, station_a, name):
    client.force_login(carol)

    theirs = client.get(reverse(name, args=[station_a.pk]))
    nothing = client.get(reverse(name, args=[MISSING_ID]))

    assert theirs.status_code == nothing.status_code == 404
    # The panel's 404 page has the menu's logout form, whose CSRF token is masked afresh
    # on every response: compare everything else.
    assert without_csrf_token(theirs.content) == without_csrf_token(nothing.content)


def without_csrf_token(html: bytes) -> bytes:
    return re.sub(rb'name="csrfmiddlewaretoken" value="[^"]*"', b"", html)


def test_the_public_api_answers_a_hidden_station_like_a_missing_one(client, station_a):
    theirs = client.get(reverse("api:station_detail", args=[station_a.public_id]))
    nothing = client.get(reverse("api:station_detail", args=[uuid.uuid4()]))

    assert theirs.status_code == nothing.status_code == 404
    assert theirs.content == nothing.content


def test_the_public_api_never_shows_a_cbid(client, station_a):
    station_a.street, station_a.city, station_a.country = "Main St 1", "Espoo", "FI"
    station_a.latitude, station_a.longitude, station_a.visible = 60.2, 24.6, True
    station_a.save()

    listing = client.get(reverse("api:station_list"))
    detail = client.get(reverse("api:station_detail", args=[station_a.public_id]))

    assert detail.status_code == 200
    assert json.loads(listing.content)["stations"], "the station should be listed"
    assert A_CBID not in listing.content.decode()
    assert A_CBID not in detail.content.decode()


def test_the_staff_command_api_never_shows_a_cbid(client, alice, station_a, command_a):
    client.force_login(alice)

    history = client.get(reverse("api:station_commands", args=[station_a.pk]))
    one = client.get(reverse("api:station_command_detail", args=[station_a.pk, command_a.pk]))

    assert (history.status_code, one.status_code) == (200, 200)
    assert A_CBID not in history.content.decode()
    assert A_CBID not in one.content.decode()


def test_another_cpo_command_is_the_404_of_a_missing_one(client, carol, station_a, command_a):
    client.force_login(carol)

    theirs = client.get(reverse("api:station_command_detail", args=[station_a.pk, command_a.pk]))
    nothing = client.get(reverse("api:station_command_detail", args=[MISSING_ID, MISSING_ID]))

    assert theirs.status_code == nothing.status_code == 404
    assert without_csrf_token(theirs.content) == without_csrf_token(nothing.content)
