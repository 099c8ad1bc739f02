"""Issue 11 points 3 and 6 in a real browser: the panel's main pages run under its
Content-Security-Policy without a single violation (its scripts still work), the Add form
hides the password for Ensto, the password page's copy button works, and bidi controls a
charger sent are shown as code points."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from cpo.models import Membership
from stations.models import Station
from tests.e2e.browser.test_add_station import log_in, open_add_new_station
from tests.factories import make_cpo, make_member, make_station, make_user

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def alice():
    user = make_user("alice")
    cpo = make_cpo("CPO A")
    make_member(user, cpo, Membership.Role.ADMIN)
    return user


def watch_csp(page: Page) -> list[str]:
    """Chromium reports every blocked script, style or handler on the console."""
    violations: list[str] = []
    page.on(
        "console",
        lambda message: violations.append(message.text)
        if "Content Security Policy" in message.text
        else None,
    )
    return violations


def test_the_main_pages_run_under_the_csp_without_violations(page: Page, live_server, alice):
    station = make_station(
        "CP-CSP-1",
        cpo=alice.memberships.get().cpo,
        vendor="Acme\u202eXYZ.exe",
        model="Fast 22",
        last_boot_at="2026-01-01T00:00:00Z",
        status_info="ok\u2066hidden\u2069",
    )
    make_station("CP-CSP-POOL", serial_number="SN-1")
    violations = watch_csp(page)

    response = page.goto(f"{live_server.url}/accounts/login/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    log_in(page, live_server.url)
    for path in (
        "/stations/",
        "/stations/connect/",
        f"/stations/{station.pk}/",
        f"/stations/{station.pk}/settings/",
        f"/stations/{station.pk}/log/",
        "/team/",
    ):
        response = page.goto(f"{live_server.url}{path}")
        assert response.status == 200, path
        assert response.headers["content-security-policy"].startswith("default-src 'self'")
    # The station page's script polls its live part (every 15 s when idle): wait for one.
    with page.expect_response(lambda r: "/live/" in r.url, timeout=40000):
        page.goto(f"{live_server.url}/stations/{station.pk}/")
    # Bidi controls the charger sent are shown, not obeyed.
    expect(page.get_by_text("Acme[U+202E]XYZ.exe")).to_be_visible()
    assert "\u202e" not in page.content()

    # Add new station: its script switches the form per protocol.
    page.goto(f"{live_server.url}/stations/")
    open_add_new_station(page)
    password = page.get_by_label("Generate a charger password (OCPP security profile 1)")
    expect(password).to_be_checked()
    note = page.locator("#vendor-protocol-note")
    expect(note).to_be_hidden()
    page.get_by_label("Protocol").select_option(label="Ensto")
    expect(password).to_be_hidden()
    expect(note).to_be_visible()
    expect(note).to_contain_text("Nothing in this system speaks the Ensto or Remotec protocols")
    expect(page.get_by_text("Device identifier (Ensto)")).to_be_visible()
    page.get_by_label("Protocol").select_option(label="OCPP")
    expect(password).to_be_visible()

    # Claim with the default: the password page, its copy button working under the CSP.
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.get_by_label("CBID (Chargebox Identity)").fill("CP-CSP-POOL")
    page.get_by_role("button", name="Add").click()
    expect(page.get_by_role("heading", name="Charger password")).to_be_visible()
    expect(page.locator("#password-keys")).to_contain_text("AuthorizationKey")
    shown = page.locator("#charger-password").inner_text()
    copy = page.locator('button[data-copy="charger-password"]')
    copy.click()
    expect(copy).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == shown
    claimed = Station.objects.get(cbid="CP-CSP-POOL")
    assert claimed.auth_password_hash and claimed.auth_password_used_at is None
    page.goto(f"{live_server.url}/stations/")
    expect(page.locator("tr", has_text="CP-CSP-POOL")).to_contain_text("No password yet")
    expect(page.locator("tr", has_text="CP-CSP-1")).to_contain_text("No password")

    assert violations == []
