"""A CPO admin runs a charging session from the panel and finds it afterwards: import a CSV
of ID tags, start a simulated charger, start a session from the station page with one of
the tags, watch it run with live energy, stop it, find it under Sessions with its kWh,
open its chart, export the CSV.

The panel is pytest-django's `live_server`; the charger is connected to a real daphne on
the same test database, and commands reach it through Redis (skipped without REDIS_URL),
as in test_station_operations.py.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from cpo.models import Membership
from simulator import SimulatorOptions
from stations.models import IdTag, RegistrationStatus, Transaction
from tests.e2e.browser import test_station_operations as operations
from tests.e2e.browser.test_station_operations import ChargerThread, wait_until
from tests.factories import PASSWORD, make_cpo, make_member, make_station, make_user

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# The charger needs Redis (the panel and daphne are different processes).
redis_url = operations.redis_url
CBID = "CP-SESS-E2E"
TAG = "E2E-CARD-1"


@pytest.fixture
def alice():
    user = make_user("alice")
    cpo = make_cpo("CPO A")
    cpo.time_zone = "Europe/Helsinki"
    cpo.save()
    make_member(user, cpo, Membership.Role.ADMIN)
    return user


@pytest.fixture
def station(alice):
    cpo = alice.memberships.get().cpo
    return make_station(CBID, cpo=cpo, name="Harbour charger")


@pytest.fixture
def charger(redis_url, daphne_server, station) -> Iterator[ChargerThread]:
    options = SimulatorOptions(
        cbid=CBID,
        url=daphne_server.ws_base_url,
        connectors=1,
        heartbeat=60,
        meter_interval=1.0,
        response_timeout=10,
        reconnect_delay=1,
    )
    thread = ChargerThread(options).start()
    try:
        yield thread
    finally:
        thread.stop()
        print(f"--- simulated charger ---\n{thread.log()}")


def test_an_admin_runs_a_session_and_finds_it_with_its_kwh_chart_and_csv(
    page: Page, live_server, station, charger, tmp_path
):
    def online() -> bool:
        station.refresh_from_db()
        return station.connected and station.registration_status == RegistrationStatus.ACCEPTED

    wait_until(online, f"the charger connecting and booting Accepted\n{charger.log()}")

    # Logging in lands on Home, which names the CPO, the role and the time zone.
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Needs attention")).to_be_visible()
    expect(page.locator("#cpo-menu summary")).to_contain_text("CPO A · Admin · Europe/Helsinki")
    expect(page.locator('[data-count="online"] .stat-value')).to_have_text("1")

    # The CPO's tags come from a CSV file: previewed first, then imported.
    nav = page.get_by_role("navigation", name="Main")
    nav.get_by_role("link", name="ID tags", exact=True).click()
    page.get_by_role("link", name="Import CSV").click()
    tags_csv = tmp_path / "tags.csv"
    tags_csv.write_text(
        "id_tag,type,status,expiry,group,label\n"
        f"{TAG},,Accepted,,,Van 12\n"
        "E2E-CARD-2,,Blocked,,,Spare\n"
    )
    page.get_by_label("CSV file").set_input_files(tags_csv)
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#import-preview")).to_contain_text("2 tags are ready to import")
    assert not IdTag.objects.exists()  # a preview saves nothing
    page.get_by_role("button", name="Import", exact=True).click()
    expect(page.get_by_role("cell", name="Van 12")).to_be_visible()
    assert IdTag.objects.get(tag=TAG).status == IdTag.Status.ACCEPTED
    assert IdTag.objects.get(tag="E2E-CARD-2").status == IdTag.Status.BLOCKED

    # Start a session from the station page, with the imported tag.
    nav.get_by_role("link", name="Stations", exact=True).click()
    page.get_by_role("link", name=CBID).click()
    commands = page.locator("#commands")
    commands.get_by_label("Id tag").fill(TAG)
    commands.get_by_role("button", name="Start", exact=True).click()
    expect(page.get_by_text(re.compile("sent to CP-SESS-E2E"))).to_be_visible()

    def running() -> Transaction | None:
        return Transaction.objects.filter(station=station, state="active").first()

    wait_until(lambda: running() is not None, f"the session starting\n{charger.log()}", 30)
    tx = running()
    assert tx.id_tag == TAG and tx.id_tag_status == "Accepted"

    # It runs: the station page shows its energy so far growing, and its duration.
    def live_energy() -> float:
        page.reload()
        cell = page.locator("#connectors .live-energy").first
        text = cell.inner_text() if cell.count() else ""
        match = re.search(r"([\d.]+) kWh", text)
        return float(match.group(1)) if match else 0.0

    wait_until(lambda: live_energy() > 0, f"live energy on the station page\n{charger.log()}", 30)
    expect(page.locator("#connectors .live-duration").first).not_to_have_text("—")

    # Stop it.
    commands = page.locator("#commands")
    commands.get_by_role("button", name="Stop", exact=True).click()
    expect(page.get_by_text(re.compile("sent to CP-SESS-E2E"))).to_be_visible()
    wait_until(
        lambda: Transaction.objects.get(pk=tx.pk).state == "ended",
        f"the session stopping\n{charger.log()}",
        30,
    )
    tx.refresh_from_db()
    assert tx.energy_wh and tx.energy_wh > 0
    kwh = f"{tx.energy_wh / 1000:.2f}"

    # Sessions lists it with its kWh and state.
    nav.get_by_role("link", name="Sessions", exact=True).click()
    expect(page.get_by_role("heading", name="Sessions")).to_be_visible()
    row = page.locator(f'tr[data-session="{tx.pk}"]')
    expect(row).to_contain_text(CBID)
    expect(row).to_contain_text(TAG)
    expect(row).to_contain_text(kwh)
    expect(row).to_contain_text("Stopped by backend")  # a RemoteStop: reason Remote

    # Its page draws the chart and lists its samples and messages.
    row.get_by_role("link", name=str(tx.pk)).click()
    expect(page.locator("#session-chart svg")).to_be_visible()
    expect(page.locator("#session-chart polyline").first).to_be_visible()
    expect(page.locator("#session-energy")).to_have_text(f"{kwh} kWh")
    expect(page.locator("#session-samples")).to_contain_text("Energy.Active.Import.Register")
    expect(page.locator("#session-log")).to_contain_text("StartTransaction")
    expect(page.locator("#session-log")).to_contain_text("StopTransaction")

    # The CSV export has the session, in the CPO's time zone.
    page.get_by_role("link", name="Sessions").first.click()
    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    path = tmp_path / "sessions.csv"
    download.value.save_as(path)
    text = path.read_bytes().decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    assert len(rows) == 1
    assert rows[0]["session"] == str(tx.pk)
    assert rows[0]["station_cbid"] == CBID
    assert rows[0]["id_tag"] == TAG
    assert rows[0]["tag_label"] == "Van 12"
    assert rows[0]["energy_kwh"] == f"{tx.energy_wh / 1000:.3f}"
    assert rows[0]["state"] == "backend"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0[23]:00", rows[0]["start"])
