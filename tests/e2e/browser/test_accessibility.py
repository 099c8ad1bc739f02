"""Every panel page passes axe-core for each role, error states and the live station page
after a command included: no serious or critical violation (issue 20). Each page is also
photographed at 1366×900 and 390×844 into screens/ for a look by eye.

axe-core comes from npm (tests/e2e/browser/package.json, `make test-deps`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from cpo.models import Membership
from stations.models import (
    Command,
    ConnectionAttempt,
    Connector,
    IdTag,
    OcppMessage,
    Station,
    Transaction,
)
from tests.e2e.browser.a11y import (
    DESKTOP,
    PHONE,
    axe_violations,
    blocking,
    describe,
    screenshot,
)
from tests.factories import PASSWORD, make_cpo, make_member, make_station, make_user

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ROLES = ["admin", "technician", "viewer", "superuser"]


@pytest.fixture
def browser_context_args(browser_context_args):
    # axe-core is injected as a script, which the panel's Content-Security-Policy refuses
    # (it allows only its own files); test_csp.py checks the policy itself.
    return {**browser_context_args, "bypass_csp": True}


@dataclass
class Cast:
    station: Station
    transaction: Transaction
    cpo_pk: int
    users: dict[str, str] = field(default_factory=dict)


@pytest.fixture
def cast() -> Cast:
    cpo = make_cpo("CPO A")
    users = {"admin": "alice", "technician": "tess", "viewer": "bob", "superuser": "root"}
    for role, username in users.items():
        if role == "superuser":
            make_user(username, superuser=True)
        else:
            make_member(make_user(username), cpo, getattr(Membership.Role, role.upper()))
    station = make_station(
        "CP-AXE-1",
        cpo=cpo,
        vendor="Acme",
        model="Fast 22",
        last_boot_at=timezone.now(),
        connected=True,
        channel_name="chan.axe",
        connected_at=timezone.now(),
        last_seen=timezone.now(),
    )
    one = Connector.objects.create(station=station, connector_id=1, status="Charging")
    Connector.objects.create(station=station, connector_id=2, status="SuspendedEV")
    tx = Transaction.objects.create(station=station, connector=one, id_tag="CARD-7", meter_start=0)
    IdTag.objects.create(cpo=cpo, tag="CARD-7", label="Van 7")
    IdTag.objects.create(cpo=cpo, tag="CARD-8", label="Spare", status=IdTag.Status.BLOCKED)
    Command.objects.create(
        station=station,
        action="GetConfiguration",
        payload={},
        status="accepted",
        response={"configurationKey": [{"key": f"Key{i}", "value": "x" * 30} for i in range(8)]},
    )
    for status in ("rejected", "timed_out", "offline"):
        Command.objects.create(
            station=station, action="Reset", payload={"type": "Soft"}, status=status
        )
    OcppMessage.objects.create(
        station=station,
        cbid=station.cbid,
        direction="in",
        message_type=2,
        action="BootNotification",
        unique_id="4f1c2a7e-1",
        payload={"chargePointVendor": "Acme", "chargePointModel": "Fast 22"},
    )
    make_station("CP-POOL-1")  # the pool, for the superuser
    make_station("CP-WAIT-1", cpo=cpo)  # never connected: "Waiting for connection"
    ConnectionAttempt.objects.create(cbid="CP BAD", reason=ConnectionAttempt.Reason.choices[0][0])
    return Cast(station=station, transaction=tx, cpo_pk=cpo.pk, users=users)


def log_in(page: Page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", level=1)).to_be_visible(timeout=20_000)


class Audit:
    """Runs axe on each page state, photographs it and collects what fails."""

    def __init__(self, page: Page, tag: str) -> None:
        self.page = page
        self.tag = tag
        self.failures: list[str] = []
        self.seen: list[str] = []

    def check(self, name: str) -> None:
        self.page.wait_for_load_state("load")
        self.seen.append(name)
        violations = blocking(axe_violations(self.page))
        if violations:
            self.failures.append(f"{name} ({self.page.url}):\n{describe(violations)}")
        screenshot(self.page, f"{self.tag}-{name}")

    def visit(self, name: str, url: str) -> None:
        self.page.goto(url)
        self.check(name)

    def assert_clean(self) -> None:
        assert not self.failures, "serious or critical axe violations:\n\n" + "\n\n".join(
            self.failures
        )


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
@pytest.mark.parametrize("role", ROLES)
def test_every_panel_page_passes_axe(page: Page, live_server, cast: Cast, role, viewport):
    base = live_server.url
    width = "desktop" if viewport is DESKTOP else "phone"
    page.set_viewport_size(viewport)
    audit = Audit(page, f"{role}-{width}")
    station = cast.station.pk

    if role == "admin":
        # Before logging in: the login page, and the same page after a failed attempt.
        audit.visit("login", f"{base}/accounts/login/")
        page.get_by_label("Username").fill("alice")
        page.get_by_label("Password").fill("wrong-password")
        page.get_by_role("button", name="Log in").click()
        audit.check("login-error")
        audit.visit("404-anonymous", f"{base}/no/such/page/")

    log_in(page, base, cast.users[role])
    for name, path in (
        ("station-list", "/stations/"),
        ("station-list-filtered", "/stations/?q=CP&recent=1"),
        ("add-station", "/stations/add/"),
        ("connect", "/stations/connect/"),
        ("refused-connections", "/stations/refused/"),
        ("station", f"/stations/{station}/"),
        ("station-settings", f"/stations/{station}/settings/"),
        ("station-log", f"/stations/{station}/log/"),
        ("signed-values", f"/stations/{station}/transactions/{cast.transaction.pk}/signed/"),
        ("team-index", "/team/"),
        ("team", f"/team/{cast.cpo_pk}/"),
        ("audit-log", f"/team/{cast.cpo_pk}/audit/"),
        ("password-change", "/accounts/password/"),
        ("404", f"/stations/{station + 10_000}/"),
        # The pages of issues 13 and 16.
        ("home", "/"),
        ("sessions", "/sessions/"),
        ("sessions-filtered", "/sessions/?state=running"),
        ("session", f"/sessions/{cast.transaction.pk}/"),
        ("id-tags-index", "/tags/"),
        ("id-tags", f"/tags/{cast.cpo_pk}/"),
        ("id-tag-add", f"/tags/{cast.cpo_pk}/add/"),
        ("id-tags-import", f"/tags/{cast.cpo_pk}/import/"),
        ("cpo-settings", f"/team/{cast.cpo_pk}/settings/"),
        ("alerts", "/alerts/"),
        ("alert-settings-index", "/alerts/settings/"),
        ("alert-settings", f"/alerts/settings/{cast.cpo_pk}/"),
        ("uptime", "/uptime/"),
    ):
        audit.visit(name, base + path)

    # Error states: a form that failed.
    page.goto(f"{base}/accounts/password/")
    page.get_by_role("button", name="Change password").click()
    audit.check("password-change-error")
    if role in ("admin", "superuser"):
        page.goto(f"{base}/stations/add/")
        page.get_by_role("button", name="Add", exact=True).click()
        audit.check("add-station-error")
    if role in ("admin", "technician", "superuser"):
        page.goto(f"{base}/stations/{station}/settings/")
        page.get_by_label("Latitude").fill("north")
        page.get_by_role("button", name="Save settings").click()
        audit.check("station-settings-error")

        # The live station page after a command: sent, then refreshed while it waits.
        page.goto(f"{base}/stations/{station}/")
        with page.expect_response(lambda r: "/live/" in r.url, timeout=15_000):
            page.locator("#command-get_configuration").get_by_role("button").click()
        page.wait_for_timeout(300)
        audit.check("station-after-command")

    audit.assert_clean()
    assert len(audit.seen) >= 28
