"""Tenant isolation, walked over every URL of the panel and of the JSON API.

- carol (admin of CPO B) gets, on every URL naming one of CPO A's objects, exactly what a
  URL naming nothing gets (404, or 405 for a method the view never takes), and no page or
  answer of hers ever shows CPO A's data.
- bob (viewer of CPO A) has every POST refused: 403 on the forms he can see, and no POST of
  his anywhere changes CPO or station data.

URLs without an object in their path must be listed in UNSCOPED with what they show; a new
one that is not makes the walk fail, so nobody adds a URL without deciding its scope.
"""

from __future__ import annotations

import uuid

import pytest
from django.apps import apps
from django.test import Client
from django.urls import reverse

from cpo.models import AuditEvent, Membership
from stations.models import OcppMessage
from tests.factories import make_cpo, make_member, make_station
from tests.security.conftest import A_CBID, A_NAME, A_TAG, NO_INVITATION
from tests.security.walk import forms_on, project_routes

pytestmark = pytest.mark.django_db

# URLs that name no object: what each shows a user, so that it cannot leak CPO A's data.
UNSCOPED = {
    "login": "public: the login form",
    "logout": "the user's own session",
    "password_change": "the user's own password",
    "password_change_done": "a static confirmation",
    "stations:home": "counts and lists over Station.objects.for_user, in the current CPO",
    "stations:sessions": "sessions_for: sessions of Station.objects.for_user's stations",
    "stations:sessions_export": "sessions_for, as CSV",
    "cpo:switch": "the user's own session; a CPO not theirs is a 404",
    "stations:list": "Station.objects.for_user: the user's own stations",
    "stations:add": "claims into the user's own CPOs (addable_cpos)",
    "stations:connect": "the backend URL, the same for everyone",
    "stations:attempts": "superusers only (403 for others)",
    "api:station_list": "public: visible stations only, no CBIDs",
    "cpo:team_index": "cpos_managed_by: the CPOs the user is admin of",
    "alerts:list": "alerts_for_user: alerts of the user's own CPOs",
    "alerts:settings_index": "the CPOs the user is admin of",
    "alerts:uptime": "connectors of the user's own CPOs' stations",
    "alerts:maintenance_add": "stations of the user's CPOs where they may write",
    "stations:id_tags_index": "Cpo.objects.for_user: a link to each of the user's CPOs",
}
# Parameter values: CPO A's objects, and ids that name nothing.
MISSING_ID = 987654321
MISSING_PUBLIC_ID = uuid.UUID("00000000-0000-4000-8000-000000000000")
A_SECRETS = (A_CBID, A_NAME, "CPO A", A_TAG)
# A viewer's POST to these is his own business, not a write to CPO data.
PERSONAL = {"login", "logout", "password_change", "cpo:switch"}


@pytest.fixture
def cpo_a_values(station_a, command_a, transaction_a, tag_a, bob, alert_a, webhook_a) -> dict:
    return {
        "tag_pk": tag_a.pk,
        "alert_pk": alert_a.pk,
        "webhook_pk": webhook_a.pk,
        "pk": station_a.pk,
        "command_pk": command_a.pk,
        "transaction_pk": transaction_a.pk,
        "public_id": station_a.public_id,
        "cpo_pk": station_a.cpo_id,
        "membership_pk": bob.memberships.get().pk,
        # The invitation link is a bearer token, not a CPO's object: whoever holds a live
        # one may use it (tests/cpo/test_team.py). Here it names nobody.
        **NO_INVITATION,
    }


@pytest.fixture
def missing_values() -> dict:
    return {
        "alert_pk": MISSING_ID,
        "webhook_pk": MISSING_ID,
        "pk": MISSING_ID,
        "command_pk": MISSING_ID,
        "transaction_pk": MISSING_ID,
        "public_id": MISSING_PUBLIC_ID,
        "cpo_pk": MISSING_ID,
        "membership_pk": MISSING_ID,
        "tag_pk": MISSING_ID,
        **NO_INVITATION,
    }


@pytest.fixture
def carol_client(carol) -> Client:
    # carol has a station of her own, so that her pages are not empty by accident.
    make_station("CP-B1", cpo=carol.memberships.get().cpo)
    client = Client()
    client.force_login(carol)
    return client


def _leaks(response) -> list[str]:
    # A streamed answer (the sessions CSV) is read to its end.
    raw = b"".join(response) if response.streaming else response.content
    body = raw.decode(errors="replace")
    return [secret for secret in A_SECRETS if secret in body]


def test_every_url_is_either_scoped_or_listed_as_unscoped():
    routes = project_routes()
    names = {route.name for route in routes}
    unscoped = {route.name for route in routes if not route.params}
    scoped = {route.name for route in routes if route.params}

    assert unscoped - set(UNSCOPED) == set(), "new URLs without an object: decide their scope"
    assert set(UNSCOPED) - names == set(), "UNSCOPED lists URLs that no longer exist"
    # The walk below really covers the station pages and the JSON API.
    assert {"stations:detail", "stations:settings", "api:station_commands"} <= scoped


@pytest.mark.parametrize("method", ["get", "post"])
def test_another_cpo_gets_what_a_missing_object_gets_on_every_scoped_url(
    carol_client, cpo_a_values, missing_values, method
):
    walked, problems = [], []
    for route in project_routes():
        if not route.params:
            continue
        send = getattr(carol_client, method)
        theirs = send(route.url(cpo_a_values))
        nothing = send(route.url(missing_values))
        walked.append(route.name)
        if theirs.status_code not in (404, 405):
            problems.append(f"{route.name}: {theirs.status_code}")
        elif theirs.status_code != nothing.status_code:
            problems.append(f"{route.name}: {theirs.status_code} ≠ {nothing.status_code}")
        if _leaks(theirs):
            problems.append(f"{route.name} shows {_leaks(theirs)}")

    assert walked, "the walk found no scoped URL"
    assert problems == []


@pytest.mark.parametrize("method", ["get", "post"])
def test_no_unscoped_url_shows_another_cpo_data(carol_client, station_a, command_a, tag_a, method):
    problems = []
    for route in project_routes():
        if route.params:
            continue
        response = getattr(carol_client, method)(route.url({}), follow=True)
        if response.status_code >= 500:
            problems.append(f"{route.name}: {response.status_code}")
        if _leaks(response):
            problems.append(f"{route.name} shows {_leaks(response)}")

    assert problems == []


def test_a_search_does_not_find_another_cpo_station(carol_client, station_a):
    response = carol_client.get(reverse("stations:list"), {"q": A_CBID[:6]})

    assert _leaks(response) == []


def _cpo_data() -> list:
    """Every row of CPO and station data (not the audit log, not the message log)."""
    rows = []
    for config in ("cpo", "stations"):
        for model in apps.get_app_config(config).get_models():
            if model in (AuditEvent, OcppMessage):
                continue
            rows.append((model.__name__, list(model.objects.order_by("pk").values())))
    return rows


def test_no_post_of_a_viewer_changes_anything(client, bob, cpo_a_values):
    client.force_login(bob)
    before = _cpo_data()
    walked, writes = [], []
    for route in project_routes():
        if route.name in PERSONAL:
            continue
        response = client.post(route.url(cpo_a_values), {})
        walked.append(route.name)
        if response.status_code not in (403, 405) and _cpo_data() != before:
            writes.append(f"{route.name}: {response.status_code}")

    assert len(walked) == len(project_routes()) - len(PERSONAL)
    assert writes == []
    assert _cpo_data() == before


def test_every_form_a_viewer_sees_is_refused_with_403(client, alice, bob, cpo_a_values):
    # A second CPO of alice's: "Change CPO" is offered only when there is somewhere to go.
    make_member(alice, make_cpo("CPO C"), Membership.Role.ADMIN)
    forms = []
    client.force_login(alice)
    for route in project_routes():
        if route.params and not route.name.startswith("api:"):
            page = route.url(cpo_a_values)
            response = client.get(page)
            if response.status_code == 200 and not response.streaming:
                forms += [
                    f for f in forms_on(page, response.content.decode()) if f.method == "post"
                ]
    pk = cpo_a_values["pk"]
    actions = {f.action.split("#")[0] for f in forms}
    for name in ("stations:change_cpo", "stations:settings", "stations:command"):
        assert reverse(name, args=[pk]) in actions, f"no {name} form on the station pages"
    cpo_pk, tag_pk = cpo_a_values["cpo_pk"], cpo_a_values["tag_pk"]
    for url in (
        reverse("stations:id_tag_add", args=[cpo_pk]),
        reverse("stations:id_tag_edit", args=[cpo_pk, tag_pk]),
        reverse("stations:id_tag_status", args=[cpo_pk, tag_pk]),
        reverse("stations:id_tag_delete", args=[cpo_pk, tag_pk]),
        reverse("stations:id_tags_import", args=[cpo_pk]),
        reverse("stations:id_tags_settings", args=[cpo_pk]),
        reverse("stations:id_tags_sync", args=[cpo_pk]),
    ):
        assert url in actions, f"no form posting to {url} on the ID tags pages"

    personal = {reverse(name) for name in PERSONAL}
    forms = [f for f in forms if f.action not in personal]

    client.force_login(bob)
    before = _cpo_data()
    allowed = []
    for form in forms:
        # alice's form data, as if bob had forged it: the role is what refuses it.
        response = client.post(form.action, form.data(with_token=False))
        if response.status_code != 403:
            allowed.append(f"{form.action} ({form.fields.get('kind', '')}): {response.status_code}")

    assert allowed == []
    assert _cpo_data() == before


def test_a_viewer_cannot_request_a_command_over_the_json_api(client, bob, station_a):
    client.force_login(bob)

    response = client.post(
        reverse("api:station_commands", args=[station_a.pk]),
        {"kind": "reset", "params": {"type": "Soft"}},
        content_type="application/json",
    )

    assert response.status_code == 403
    assert not station_a.commands.exists()
