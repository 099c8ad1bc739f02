"""CPO staff claim a pooled charger in a real browser: Settings → Station List → Add new station."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from cpo.models import Membership
from stations.models import Station
from tests.factories import PASSWORD, make_cpo, make_member, make_station, make_user

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}


@pytest.fixture
def staff():
    """Alice, admin of two CPOs (so the CPO dropdown is there to choose from)."""
    alice = make_user("alice")
    cpo_a, cpo_c = make_cpo("CPO A"), make_cpo("CPO C")
    make_member(alice, cpo_a, Membership.Role.ADMIN)
    make_member(alice, cpo_c, Membership.Role.ADMIN)
    return alice


def log_in(page: Page, base_url: str, username: str = "alice") -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def open_add_new_station(page: Page) -> None:
    page.get_by_role("navigation", name="Main").get_by_text("Settings", exact=True).click()
    page.get_by_role("link", name="Station List").click()
    expect(page.get_by_role("heading", name="Station List")).to_be_visible()
    page.get_by_role("link", name="Add new station").click()
    expect(page.get_by_role("heading", name="Add new station")).to_be_visible()


def test_staff_claim_a_pooled_charger_and_see_its_row(page: Page, live_server, staff):
    make_station("CP-BROWSER-1", vendor="Acme", model="Fast 22")
    log_in(page, live_server.url)

    open_add_new_station(page)
    page.get_by_label("Protocol").select_option(label="OCPP")
    page.get_by_label("CBID (Chargebox Identity)").fill("cp-browser-1")
    page.get_by_label("CPO").select_option(label="CPO A")
    # Ticked by default (tests/e2e/browser/test_csp.py follows that path): not here.
    page.get_by_label("Generate a charger password (OCPP security profile 1)").uncheck()
    page.get_by_role("button", name="Add").click()

    expect(page.get_by_role("heading", name="Station List")).to_be_visible()
    expect(page.get_by_text("Station CP-BROWSER-1 was added to CPO A.")).to_be_visible()
    row = page.get_by_role("row").filter(has_text="CP-BROWSER-1")
    expect(row).to_contain_text("CPO A")
    expect(row).to_contain_text("Acme Fast 22")
    assert Station.objects.get(cbid="CP-BROWSER-1").cpo.name == "CPO A"


def test_a_cbid_that_never_connected_shows_its_error(page: Page, live_server, staff):
    log_in(page, live_server.url)

    open_add_new_station(page)
    page.get_by_label("CBID (Chargebox Identity)").fill("NEVER-CONNECTED")
    page.get_by_label("CPO").select_option(label="CPO A")
    page.get_by_role("button", name="Add").click()

    error = page.locator("#id_cbid_error")
    expect(error).to_contain_text(
        "No charger with the CBID “NEVER-CONNECTED” is waiting to be added"
    )
    expect(error).to_contain_text("/ocpp/NEVER-CONNECTED")
    expect(page.get_by_label("CBID (Chargebox Identity)")).to_have_attribute("aria-invalid", "true")
    assert not Station.objects.filter(cbid__iexact="never-connected").exists()
    if os.environ.get("SCREENSHOT_DIR"):
        page.screenshot(path=f"{os.environ['SCREENSHOT_DIR']}/add-error.png", full_page=True)


def test_the_identity_label_follows_the_protocol(page: Page, live_server, staff):
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/stations/add/")

    page.get_by_label("Protocol").select_option(label="Remotec")

    expect(page.get_by_label("Device identifier (Remotec)")).to_be_visible()
    page.get_by_label("Protocol").select_option(label="OCPP")
    expect(page.get_by_label("CBID (Chargebox Identity)")).to_be_visible()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_the_panel_fits_the_screen(page: Page, live_server, staff, viewport, tmp_path):
    cpo_a = staff.memberships.get(cpo__name="CPO A").cpo
    stations = [
        make_station(f"CP-FIT-{i}", cpo=cpo_a, vendor="Acme", model="Fast 22", connected=i == 0)
        for i in range(3)
    ]
    page.set_viewport_size(viewport)
    log_in(page, live_server.url)
    # SCREENSHOT_DIR keeps the pictures for a human to look at.
    shots = Path(os.environ.get("SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)

    pages = [
        ("list", "/stations/"),
        ("add", "/stations/add/"),
        ("detail", f"/stations/{stations[0].pk}/"),
        ("connect", "/stations/connect/"),
    ]
    for name, path in pages:
        page.goto(f"{live_server.url}{path}")
        page.screenshot(path=str(shots / f"{name}-{viewport['width']}.png"), full_page=True)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path} scrolls sideways at {viewport['width']} px"
