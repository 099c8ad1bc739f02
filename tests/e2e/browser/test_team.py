"""A CPO admin invites a member in a real browser; the member sets a password from the link.

The e-mail is read from Django's in-memory mail backend: pytest-django's `live_server`
runs in this process, so `mailoutbox` holds what the panel sent.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import Browser, Page, expect

from cpo.models import Membership
from tests.factories import PASSWORD, make_cpo, make_member, make_user

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

NEW_PASSWORD = "a-long-new-passphrase-42"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}


@pytest.fixture
def alice():
    user = make_user("alice")
    make_member(user, make_cpo("CPO A"), Membership.Role.ADMIN)
    return user


def log_in(page: Page, base_url: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Needs attention")).to_be_visible()


def broken_static_files(page: Page) -> list[str]:
    """Collects the static files the page failed to load, from now on."""
    broken: list[str] = []

    def check(response) -> None:
        if "/static/" in response.url and response.status >= 400:
            broken.append(f"{response.status} {response.url}")

    page.on("response", check)
    page.on("requestfailed", lambda request: broken.append(f"failed {request.url}"))
    return broken


def test_an_admin_invites_a_member_who_sets_a_password_from_the_link(
    page: Page, browser: Browser, live_server, alice, mailoutbox, tmp_path
):
    broken = broken_static_files(page)
    shots = Path(os.environ.get("SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    log_in(page, live_server.url)

    page.get_by_role("navigation", name="Main").get_by_text("Settings", exact=True).click()
    page.get_by_role("link", name="Team").click()
    expect(page.get_by_role("heading", name="Team of CPO A")).to_be_visible()
    page.get_by_label("E-mail address").fill("dave@example.com")
    page.get_by_label("Role", exact=True).select_option(label="Technician")
    page.get_by_role("button", name="Send invitation").click()

    expect(page.get_by_text("Invitation sent to dave@example.com.")).to_be_visible()
    row = page.get_by_role("row").filter(has_text="dave@example.com")
    expect(row).to_contain_text("Invited, no password yet")
    page.screenshot(path=str(shots / "team-1366.png"), full_page=True)
    # The panel's stylesheet is there (the page is not unstyled).
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(245, 247, 250)"

    [mail] = mailoutbox
    assert mail.to == ["dave@example.com"]
    link = re.search(r"https?://\S+/accounts/invitation/\S+/", mail.body)[0]
    assert link.startswith(live_server.url)

    # The member, in a browser of their own.
    member = browser.new_context().new_page()
    member.goto(link)
    expect(member.get_by_role("heading", name="Set your password")).to_be_visible()
    expect(member.get_by_text("dave@example.com")).to_be_visible()
    member.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    member.get_by_label("New password confirmation").fill(NEW_PASSWORD)
    member.get_by_role("button", name="Set password and log in").click()

    expect(member.get_by_role("heading", name="Station List")).to_be_visible()
    expect(member.get_by_text("Your password is set and you are logged in.")).to_be_visible()
    dave = get_user_model().objects.get(username="dave@example.com")
    assert dave.check_password(NEW_PASSWORD)
    assert dave.memberships.get().role == Membership.Role.TECHNICIAN
    # Used once: the link is dead now.
    member.goto(link)
    expect(member.get_by_role("heading", name="This link does not work")).to_be_visible()

    page.reload()
    expect(page.get_by_role("row").filter(has_text="dave@example.com")).not_to_contain_text(
        "Invited"
    )
    assert broken == []


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_the_team_pages_fit_the_screen(page: Page, live_server, alice, viewport, tmp_path):
    bob = make_user("bob")
    make_member(bob, alice.memberships.get().cpo, Membership.Role.VIEWER)
    cpo = alice.memberships.get().cpo
    page.set_viewport_size(viewport)
    log_in(page, live_server.url)
    shots = Path(os.environ.get("SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)

    for name, path in [
        ("team", f"/team/{cpo.pk}/"),
        ("audit", f"/team/{cpo.pk}/audit/"),
        ("member-remove", f"/team/{cpo.pk}/members/{bob.memberships.get().pk}/remove/"),
    ]:
        page.goto(f"{live_server.url}{path}")
        page.screenshot(path=str(shots / f"{name}-{viewport['width']}.png"), full_page=True)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path} scrolls sideways at {viewport['width']} px"
