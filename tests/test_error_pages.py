"""Error pages inside the panel layout, with the reason and a way back (issue 14), and with
landmarks (issue 20): 400, 403 (CSRF too), 404, 429, 500."""

from __future__ import annotations

import pytest
from django.test import Client, RequestFactory, override_settings
from django.urls import reverse

from cpo.models import Membership
from tests.factories import make_member, make_station, make_user
from virta import errors

pytestmark = pytest.mark.django_db

LANDMARKS = ('<header class="topbar"', '<main id="main"', '<footer class="footer"')


def assert_panel_page(html: str) -> None:
    for landmark in LANDMARKS:
        assert landmark in html
    assert "css/panel.css" in html


def test_a_technician_adding_a_station_gets_a_styled_403_with_the_reason(client, cpo_a):
    tess = make_user("tess")
    make_member(tess, cpo_a, Membership.Role.TECHNICIAN)
    client.force_login(tess)

    response = client.get(reverse("stations:add"))

    assert response.status_code == 403
    html = response.content.decode()
    assert_panel_page(html)
    assert "Only CPO admins can add stations." in html
    assert "<title>Not allowed · Virta CSMS</title>" in html
    assert f'href="{reverse("stations:list")}">Back to the Station List' in html
    # The menu is there, and no longer offers what the role cannot do.
    assert 'id="settings-menu"' in html
    assert f'href="{reverse("stations:add")}"' not in html


def test_a_403_without_a_message_says_the_role_does_not_allow_it(rf: RequestFactory, bob):
    request = rf.get("/")
    request.user = bob

    response = errors.permission_denied(request, PermissionError())

    assert response.status_code == 403
    assert "Your role does not allow this." in response.content.decode()


def test_another_cpos_station_is_a_styled_404_that_names_nothing(client, carol, cpo_a):
    station = make_station("CP-SECRET-1", cpo=cpo_a)
    client.force_login(carol)

    response = client.get(reverse("stations:detail", args=[station.pk]))

    assert response.status_code == 404
    html = response.content.decode()
    assert_panel_page(html)
    assert "Page not found" in html
    assert "CP-SECRET-1" not in html and "Station matches" not in html


def test_a_404_for_a_visitor_offers_the_login(client):
    response = client.get("/no/such/page/")

    assert response.status_code == 404
    html = response.content.decode()
    assert_panel_page(html)
    assert f'href="{reverse("login")}"' in html


def test_400_and_429_pages(rf: RequestFactory, alice):
    request = rf.get("/")
    request.user = alice

    bad = errors.bad_request(request, ValueError("x"))
    many = errors.too_many_requests(request)

    assert bad.status_code == 400 and "Bad request" in bad.content.decode()
    assert many.status_code == 429 and "Too many requests" in many.content.decode()
    assert_panel_page(many.content.decode())


def test_a_refused_csrf_check_is_a_panel_page_that_says_what_to_do(alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)

    response = client.post(reverse("stations:add"), {"cbid": "CP-1"})

    assert response.status_code == 403
    html = response.content.decode()
    assert_panel_page(html)
    assert "Reload the page and send it again." in html


@override_settings(DEBUG=False)
def test_the_500_page_needs_neither_the_database_nor_a_request(django_assert_num_queries):
    from django.views.defaults import server_error

    with django_assert_num_queries(0):
        response = server_error(RequestFactory().get("/"))

    assert response.status_code == 500
    html = response.content.decode()
    assert_panel_page(html)
    assert "Server error" in html and 'href="/"' in html


def test_the_urlconf_uses_the_panel_error_views():
    from virta import urls

    assert urls.handler403 == "virta.errors.permission_denied"
    assert urls.handler404 == "virta.errors.page_not_found"
    assert urls.handler400 == "virta.errors.bad_request"
