"""CSRF on every form: every POST form the panel renders carries a token, and without it
the POST is refused with 403."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import reverse

from cpo.models import Membership
from tests.factories import make_cpo, make_member
from tests.security.conftest import invitation_values
from tests.security.walk import Form, forms_on, project_routes

pytestmark = pytest.mark.django_db


def _html_pages(client: Client, values: dict) -> dict[str, str]:
    """Every panel page (JSON endpoints aside) the client may GET, by URL."""
    pages = {}
    for route in project_routes():
        if route.name.startswith("api:"):
            continue
        url = route.url(values)
        response = client.get(url, follow=True)
        if response.status_code == 200 and "text/html" in response["Content-Type"]:
            pages[response.request["PATH_INFO"]] = response.content.decode()
    return pages


@pytest.fixture
def post_forms(
    client, alice, root, station_a, command_a, transaction_a, tag_a, invitee, alert_a, webhook_a
) -> list[Form]:
    """The POST forms of every page as seen by anonymous, alice and a superuser."""
    # A second CPO of alice's: "Change CPO" is offered only when there is somewhere to go.
    make_member(alice, make_cpo("CPO C"), Membership.Role.ADMIN)
    values = {
        "alert_pk": alert_a.pk,
        "webhook_pk": webhook_a.pk,
        "pk": station_a.pk,
        "command_pk": command_a.pk,
        "transaction_pk": transaction_a.pk,
        "public_id": station_a.public_id,
        "cpo_pk": station_a.cpo_id,
        "membership_pk": invitee.memberships.get().pk,
        "tag_pk": tag_a.pk,
        # A live invitation: anonymous sees its set-password form.
        **invitation_values(invitee),
    }
    pages = _html_pages(client, values)  # anonymous: the login page, the invitation
    for user in (alice, root):
        client.force_login(user)
        pages.update(_html_pages(client, values))
    forms, seen = [], set()
    for url, html in pages.items():
        for form in forms_on(url, html):
            key = (form.action, tuple(sorted(form.fields)))
            if form.method == "post" and key not in seen:
                seen.add(key)
                forms.append(form)
    return forms


def test_the_walk_finds_the_panel_forms(post_forms, station_a, invitee):
    actions = {form.action.split("#")[0] for form in post_forms}
    pages = {form.page for form in post_forms}
    assert any("/set-password/" in page for page in pages), "no invitation form walked"

    for expected in (
        reverse("login"),
        reverse("logout"),
        reverse("password_change"),
        reverse("stations:add"),
        reverse("stations:change_cpo", args=[station_a.pk]),
        reverse("stations:settings", args=[station_a.pk]),
        reverse("stations:command", args=[station_a.pk]),
        reverse("cpo:invite", args=[station_a.cpo_id]),
        reverse("cpo:member_role", args=[station_a.cpo_id, invitee.memberships.get().pk]),
        reverse("cpo:member_remove", args=[station_a.cpo_id, invitee.memberships.get().pk]),
        reverse("cpo:member_resend", args=[station_a.cpo_id, invitee.memberships.get().pk]),
    ):
        assert expected in actions, f"no POST form for {expected} on any page"


def test_every_post_form_carries_a_csrf_token(post_forms):
    missing = [f"{form.action} (on {form.page})" for form in post_forms if not form.has_csrf_token]

    assert missing == []


def test_every_post_form_without_its_token_is_refused(post_forms, alice):
    strict = Client(enforce_csrf_checks=True)
    accepted = []
    for form in post_forms:
        if form.action != reverse("login"):
            strict.force_login(alice)
        response = strict.post(form.action, form.data(with_token=False))
        if response.status_code != 403:
            accepted.append(f"{form.action} (on {form.page}): {response.status_code}")

    assert accepted == []


def test_a_json_command_without_the_token_is_refused(alice, station_a):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice)

    response = strict.post(
        reverse("api:station_commands", args=[station_a.pk]),
        json.dumps({"kind": "reset", "params": {"type": "Soft"}}),
        content_type="application/json",
    )

    assert response.status_code == 403
    assert not station_a.commands.exists()
