"""The panel by keyboard alone (issue 20) and the role-aware menus and error pages (issue 14):
a claim, a command and a settings change with Tab, Enter, Space and typing; menus that
close with Escape and give focus back; focus kept through a live refresh; the error summary
taking focus; a viewer's menu and a styled 403 with its reason."""

from __future__ import annotations

import re

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from cpo.models import Membership
from stations.models import Command, Connector, Station
from tests.e2e.browser.a11y import DESKTOP, PHONE, focused, screenshot, tab_to
from tests.factories import PASSWORD, make_cpo, make_member, make_station, make_user

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def cpo():
    return make_cpo("CPO A")


@pytest.fixture
def alice(cpo):
    user = make_user("alice")
    make_member(user, cpo, Membership.Role.ADMIN)
    return user


@pytest.fixture
def bob(cpo):
    user = make_user("bob")
    make_member(user, cpo, Membership.Role.VIEWER)
    return user


@pytest.fixture
def online_station(cpo) -> Station:
    station = make_station(
        "CP-KEY-1",
        cpo=cpo,
        connected=True,
        channel_name="chan.key",
        connected_at=timezone.now(),
        last_seen=timezone.now(),
    )
    Connector.objects.create(station=station, connector_id=1, status="Available")
    return station


def log_in_by_keyboard(page: Page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    tab_to(page, "el => el.id === 'id_username'")
    page.keyboard.type(username)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    # Generous: two cores shared with other test runs make a login slow at times.
    expect(page).not_to_have_url(re.compile(r"/accounts/login/"), timeout=20_000)
    expect(page.get_by_role("heading", level=1)).to_be_visible()


def test_a_claim_by_keyboard_alone(page: Page, live_server, alice, cpo):
    make_station("CP-KEY-POOL")
    page.set_viewport_size(DESKTOP)
    log_in_by_keyboard(page, live_server.url, "alice")

    # Settings menu: open with Enter, move to "Add new station", follow it with Enter.
    tab_to(page, "el => el.matches('#settings-menu > summary')")
    page.keyboard.press("Enter")
    expect(page.locator("#settings-menu")).to_have_attribute("open", "")
    tab_to(page, "el => el.textContent.trim() === 'Add new station'")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Add new station")).to_be_visible()

    tab_to(page, "el => el.id === 'id_cbid'")
    page.keyboard.type("cp-key-pool")
    page.keyboard.press("Enter")

    expect(page.get_by_text("Station CP-KEY-POOL was added to CPO A.")).to_be_visible()
    assert Station.objects.get(cbid="CP-KEY-POOL").cpo == cpo


def test_a_command_by_keyboard_alone(page: Page, live_server, alice, online_station):
    page.set_viewport_size(DESKTOP)
    log_in_by_keyboard(page, live_server.url, "alice")
    page.goto(f"{live_server.url}/stations/{online_station.pk}/")

    # Reset: to the radio group, Space picks "Soft", on to the button, Enter sends.
    tab_to(page, "el => el.name === 'reset-type'")
    for _ in range(3):
        if focused(page, "el => el.value.toLowerCase()") == "soft":
            break
        page.keyboard.press("ArrowDown")
    page.keyboard.press("Space")
    assert focused(page, "el => el.value.toLowerCase() + ':' + el.checked") == "soft:true"
    tab_to(page, "el => el.tagName === 'BUTTON' && el.closest('#command-reset')")
    page.keyboard.press("Enter")

    expect(page.get_by_text("Reset sent to CP-KEY-1.")).to_be_visible()
    command = Command.objects.get(station=online_station)
    assert (command.action, command.payload) == ("Reset", {"type": "Soft"}), command.payload


def test_a_settings_change_by_keyboard_alone(page: Page, live_server, alice, online_station):
    page.set_viewport_size(DESKTOP)
    log_in_by_keyboard(page, live_server.url, "alice")
    page.goto(f"{live_server.url}/stations/{online_station.pk}/")

    tab_to(page, "el => el.textContent.trim() === 'Station settings'")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Station settings")).to_be_visible()
    tab_to(page, "el => el.id === 'id_name'")
    page.keyboard.press("Control+A")
    page.keyboard.type("Harbour charger")
    tab_to(page, "el => el.id === 'id_free_usage'")
    page.keyboard.press("Space")
    tab_to(page, "el => el.textContent.trim() === 'Save settings'")
    page.keyboard.press("Enter")

    expect(page.get_by_text("Settings of CP-KEY-1 saved.")).to_be_visible()
    online_station.refresh_from_db()
    assert (online_station.name, online_station.free_usage) == ("Harbour charger", True)


def ax_name(page: Page, selector: str) -> str:
    """The accessible name Chromium itself computes (what a screen reader is told)."""
    cdp = page.context.new_cdp_session(page)
    document = cdp.send("DOM.getDocument")
    node = cdp.send(
        "DOM.querySelector", {"nodeId": document["root"]["nodeId"], "selector": selector}
    )
    tree = cdp.send(
        "Accessibility.getPartialAXTree", {"nodeId": node["nodeId"], "fetchRelatives": False}
    )
    return tree["nodes"][0]["name"]["value"]


def test_menus_close_with_escape_focus_leaving_and_outside_clicks(page: Page, live_server, alice):
    page.set_viewport_size(DESKTOP)
    log_in_by_keyboard(page, live_server.url, "alice")
    settings = page.locator("#settings-menu")
    account = page.locator("details.menu-user")

    # Names without the CSS arrow.
    assert ax_name(page, "#settings-menu > summary") == "Settings"
    assert ax_name(page, "details.menu-user > summary") == "Account: alice"

    # Escape closes and gives focus back to the menu's button.
    tab_to(page, "el => el.matches('#settings-menu > summary')")
    page.keyboard.press("Enter")
    expect(settings).to_have_attribute("open", "")
    page.keyboard.press("Tab")
    assert focused(page, "el => el.tagName === 'A' && !!el.closest('#settings-menu')")
    page.keyboard.press("Escape")
    expect(settings).not_to_have_attribute("open", "")
    assert focused(page, "el => el.matches('#settings-menu > summary')")

    # One open at a time.
    page.keyboard.press("Enter")
    account.locator("summary").click()
    expect(account).to_have_attribute("open", "")
    expect(settings).not_to_have_attribute("open", "")

    # A click outside closes it.
    page.get_by_role("heading", level=1).click()
    expect(account).not_to_have_attribute("open", "")

    # Focus moving out closes it (it no longer covers what focus moves to).
    settings.locator("summary").focus()
    page.keyboard.press("Enter")
    tab_to(page, "el => !el.closest('#settings-menu')")
    expect(settings).not_to_have_attribute("open", "")
    account_summary = "el => el.matches('details.menu-user > summary')"
    if page.evaluate(f"({account_summary})(document.activeElement)"):
        page.keyboard.press("Enter")
        page.keyboard.press("Escape")
        assert page.evaluate(f"({account_summary})(document.activeElement)")
        expect(account).not_to_have_attribute("open", "")


def test_focus_stays_put_through_live_refreshes(page: Page, live_server, alice, online_station):
    # A long answer: the history row has a <details> to focus; a command still waiting
    # makes the page refresh every 2 s.
    Command.objects.create(
        station=online_station,
        action="GetConfiguration",
        payload={},
        status="accepted",
        response={"configurationKey": [{"key": f"Key{i}", "value": "x" * 30} for i in range(8)]},
    )
    Command.objects.create(station=online_station, action="ClearCache", payload={}, status="sent")
    page.set_viewport_size(DESKTOP)
    log_in_by_keyboard(page, live_server.url, "alice")
    page.goto(f"{live_server.url}/stations/{online_station.pk}/")

    tab_to(page, "el => el.tagName === 'SUMMARY' && el.closest('#command-history')")
    # A property, not an attribute: only the very same node has it (a refresh that
    # rebuilt the row would put focus on a look-alike or on <body>).
    page.evaluate("document.activeElement.__marked = 'yes'")
    page.keyboard.press("Enter")  # open the long answer

    # Change what the live parts show, then let two refreshes come in.
    Connector.objects.filter(station=online_station).update(status="Charging")
    for _ in range(2):
        with page.expect_response(lambda r: "/live/" in r.url, timeout=10_000):
            pass
        page.wait_for_timeout(200)

    expect(page.locator("#connectors")).to_contain_text("Charging")
    assert focused(page, "el => el.__marked") == "yes", "focus was lost on refresh: " + str(
        focused(page, "el => el.outerHTML.slice(0, 200)")
    )
    assert page.locator("#command-history details").first.evaluate("d => d.open")
    # The parts that change are announced politely.
    for live in (
        '[data-live-part="connection"]',
        '[data-live-part="connectors"]',
        "#command-history",
    ):
        expect(page.locator(live).first).to_have_attribute("aria-live", "polite")


def test_the_error_summary_takes_focus_and_leads_to_the_field(
    page: Page, live_server, alice, online_station
):
    page.set_viewport_size(PHONE)
    log_in_by_keyboard(page, live_server.url, "alice")
    page.goto(f"{live_server.url}/stations/{online_station.pk}/settings/")

    tab_to(page, "el => el.id === 'id_latitude'")
    page.keyboard.type("60.1.2")
    page.keyboard.press("Enter")

    expect(page).to_have_title("Error: Station settings · CP-KEY-1 · Virta CSMS")
    summary = page.locator(".error-summary")
    expect(summary).to_be_focused()
    expect(summary).to_be_in_viewport()
    expect(summary.get_by_role("link")).to_have_text("Latitude: Enter a number.")
    screenshot(page, "keyboard-error-summary-phone")

    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(page.get_by_label("Latitude")).to_be_focused()


def test_a_failed_command_comes_back_at_its_form_with_the_error_in_view(
    page: Page, live_server, alice, online_station
):
    page.set_viewport_size(DESKTOP)
    log_in_by_keyboard(page, live_server.url, "alice")
    page.goto(f"{live_server.url}/stations/{online_station.pk}/")
    form = page.locator("#command-change_configuration")
    form.get_by_role("button").click()  # no key given

    summary = form.locator(".error-summary")
    expect(summary).to_be_focused()
    expect(summary).to_be_in_viewport()
    expect(page).to_have_title("Error: CP-KEY-1 · Virta CSMS")


def test_a_viewer_is_not_offered_what_they_cannot_do_and_gets_a_styled_403(
    page: Page, live_server, bob, online_station
):
    page.set_viewport_size(DESKTOP)
    log_in_by_keyboard(page, live_server.url, "bob")

    page.locator("#settings-menu > summary").click()
    menu = page.locator("#settings-menu .menu-list")
    expect(menu.get_by_role("link").first).to_be_visible()
    expect(page.get_by_role("link", name="Add new station")).to_have_count(0)
    page.goto(f"{live_server.url}/stations/{online_station.pk}/")
    expect(page.get_by_text("only its CPO's admins and technicians send commands")).to_be_visible()
    expect(page.locator("form.command-form")).to_have_count(0)

    # Following an old link anyway: a panel page with the reason and a way back.
    response = page.goto(f"{live_server.url}/stations/add/")
    assert response.status == 403
    expect(page).to_have_title("Not allowed · Virta CSMS")
    expect(page.get_by_role("main")).to_contain_text("Only CPO admins can add stations.")
    expect(page.get_by_role("banner")).to_be_visible()
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()
    screenshot(page, "viewer-403-desktop")
    page.get_by_role("link", name="Back to the Station List").click()
    expect(page.get_by_role("heading", name="Station List")).to_be_visible()


@pytest.mark.parametrize("width", [320, 390])
def test_the_station_page_does_not_scroll_sideways_on_a_narrow_phone(
    page: Page, live_server, alice, online_station, width
):
    page.set_viewport_size({"width": width, "height": 700})
    log_in_by_keyboard(page, live_server.url, "alice")
    for path in ("", "settings/", "log/"):
        page.goto(f"{live_server.url}/stations/{online_station.pk}/{path}")
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"/{path} scrolls sideways by {overflow}px at {width}px"
