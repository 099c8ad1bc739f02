"""Staff operate a station in a real browser: edit its settings, make it visible to
customers, send a Reset to a simulated charger and watch the answer arrive.

The browser talks to pytest-django's `live_server` (a threaded WSGI server: no websockets);
the simulated charger is connected to a real daphne on the same test database. The two are
different processes, so the panel's "go" reaches the charger's consumer only through a
shared Redis channel layer: without REDIS_URL the Reset test is skipped.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from django.utils import timezone
from ocpp.routing import on
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16
from playwright.sync_api import Page, expect

import simulator as simulator_module
from cpo.models import Membership
from simulator import Simulator16, SimulatorOptions, run_simulator
from stations.models import (
    Command,
    Connector,
    OcppMessage,
    RegistrationStatus,
    Station,
    StationVariable,
    Transaction,
)
from tests.factories import PASSWORD, make_cpo, make_member, make_station, make_user

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}
# Long enough for the page to show the Reset as sent before the answer comes.
RESET_ANSWER_DELAY = 3.0


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


def wait_until(check: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout:.0f} s")
        time.sleep(0.1)


# --- the simulated charger -------------------------------------------------------------


class SlowResetCharger(Simulator16):
    """The simulator's 1.6 charger, answering Reset after a pause as a real one may."""

    @on(Action16.reset)
    async def on_reset(self, type: str, **kwargs) -> result16.Reset:
        await asyncio.sleep(RESET_ANSWER_DELAY)
        return result16.Reset(status="Accepted")


class ChargerThread:
    """`run_simulator` in a thread of its own with its own event loop (Playwright's sync
    API keeps the test thread's loop busy)."""

    def __init__(self, options: SimulatorOptions) -> None:
        self.options = options
        self.lines: list[str] = []
        self.error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="simulated-charger", daemon=True)

    def start(self) -> ChargerThread:
        self._thread.start()
        self._ready.wait(5)
        return self

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            self._ready.set()
            await run_simulator(self.options, stop=self._stop, output=self.lines.append)

        try:
            asyncio.run(main())
        except BaseException as exc:  # shown by the test that needed the charger
            self.error = exc
        finally:
            self._ready.set()

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(20)

    def log(self) -> str:
        return "\n".join(self.lines[-60:]) + (f"\nfailed: {self.error!r}" if self.error else "")


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get("REDIS_URL", "")
    if not url:
        pytest.skip(
            "REDIS_URL is not set: live_server and daphne are different processes and share "
            "the channel layer only through Redis"
        )
    # Set but unreachable is a broken environment, not a reason to skip.
    redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    return url


@pytest.fixture
def charger(redis_url, daphne_server, monkeypatch) -> Iterator[ChargerThread]:
    # run_simulator picks its class from SIMULATORS; this one answers Reset slowly.
    monkeypatch.setitem(simulator_module.SIMULATORS, "1.6", SlowResetCharger)
    options = SimulatorOptions(
        cbid="CP-OPS-E2E",
        url=daphne_server.ws_base_url,
        connectors=2,
        heartbeat=60,
        response_timeout=10,
        reconnect_delay=1,
    )
    thread = ChargerThread(options).start()
    try:
        yield thread
    finally:
        thread.stop()
        print(f"--- simulated charger ---\n{thread.log()}")


# --- the tests ---------------------------------------------------------------------------


def test_staff_set_a_station_up_make_it_visible_and_reset_it(
    page: Page, live_server, alice, charger
):
    station = make_station("CP-OPS-E2E", cpo=alice.memberships.get().cpo)

    def online() -> bool:
        station.refresh_from_db()
        return (
            station.connected
            and station.registration_status == RegistrationStatus.ACCEPTED
            and station.connectors.filter(status="Available").count() == 2
        )

    wait_until(online, f"the charger connecting and booting Accepted\n{charger.log()}")
    page.set_viewport_size(DESKTOP)
    log_in(page, live_server.url)

    # Station settings: name, address, coordinates, a plug type, then Visible to customers.
    page.goto(f"{live_server.url}/stations/{station.pk}/")
    page.get_by_role("link", name="Station settings").click()
    expect(page.get_by_role("heading", name="Station settings")).to_be_visible()
    page.get_by_label("Name").fill("Harbour charger")
    page.get_by_label("Street").fill("Satamakatu 1")
    page.get_by_label("Postal code").fill("00160")
    page.get_by_label("City").fill("Helsinki")
    page.get_by_label("Country").fill("FI")
    page.get_by_label("Latitude").fill("60.1670")
    page.get_by_label("Longitude").fill("24.9550")
    page.get_by_label("Connector 1: plug type").select_option(label="Type 2")
    page.get_by_label("Connector 1: maximum power (kW)").fill("22")
    page.get_by_label("Visible to customers").check()
    page.get_by_role("button", name="Save settings").click()

    expect(page.get_by_text("Settings of CP-OPS-E2E saved.")).to_be_visible()
    public = page.request.get(f"{live_server.url}/api/stations/").json()
    assert "Harbour charger" in str(public)
    assert "CP-OPS-E2E" not in str(public)

    # Reset: the page comes back at once, the answer appears without a reload.
    commands = page.locator("#commands")
    commands.get_by_label("Soft").check()
    commands.get_by_role("button", name="Reset", exact=True).click()
    expect(page.get_by_text("Reset sent to CP-OPS-E2E.")).to_be_visible()
    page.evaluate("window.__sameDocument = true")
    row = page.locator("#command-history tbody tr").first
    expect(row).to_contain_text("Reset")
    expect(row).to_contain_text(re.compile("Queued|Sent"))
    expect(row).to_contain_text("Accepted", timeout=20_000)
    expect(row).to_contain_text("alice")
    assert page.evaluate("window.__sameDocument") is True, "the page was reloaded"

    command = Command.objects.get(station=station)
    assert (command.status, command.response) == ("accepted", {"status": "Accepted"})
    assert any("Reset" in line for line in charger.lines)


# --- how the pages look -------------------------------------------------------------------


@pytest.fixture
def busy_station(alice) -> Station:
    """A station with something in every part of its page."""
    station = make_station(
        "CP-LOOK-1",
        cpo=alice.memberships.get().cpo,
        vendor="Acme",
        model="Fast 22",
        firmware_version="4.2.0-rc1",
        last_boot_at=timezone.now(),
        connected=True,
        channel_name="chan.look",
        street="Satamakatu 1",
        city="Helsinki",
        country="FI",
    )
    one = Connector.objects.create(station=station, connector_id=1, status="Charging")
    Connector.objects.create(
        station=station, connector_id=2, status="Faulted", error_code="GroundFailure"
    )
    Transaction.objects.create(station=station, connector=one, id_tag="CARD-7", meter_start=0)
    Command.objects.create(
        station=station,
        action="GetConfiguration",
        payload={},
        status="accepted",
        response={"configurationKey": [{"key": f"Key{i}", "value": "x" * 30} for i in range(8)]},
        requested_by=alice,
    )
    Command.objects.create(
        station=station,
        action="Reset",
        payload={"type": "Hard"},
        status="offline",
        error="The station is offline.",
    )
    for key, value in (
        ("HeartbeatInterval", "300"),
        ("MeterValuesSampledData", "Energy.Active.Import.Register,Power.Active.Import,Voltage"),
    ):
        StationVariable.objects.create(station=station, variable=key, value=value)
    for i, action in enumerate(("BootNotification", "Heartbeat", "StatusNotification")):
        OcppMessage.objects.create(
            station=station,
            cbid=station.cbid,
            direction="in" if i % 2 == 0 else "out",
            message_type=2 if i % 2 == 0 else 3,
            action=action,
            unique_id=f"4f1c2a7e-{i}",
            payload={"chargePointVendor": "Acme", "chargePointModel": "Fast 22", "n": i},
            created_at=timezone.now() - timedelta(minutes=i),
        )
    return station


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_station_pages_fit_the_screen(page: Page, live_server, busy_station, viewport):
    shots = Path(os.environ.get("SCREENSHOT_DIR", "/tmp"))
    page.set_viewport_size(viewport)
    log_in(page, live_server.url)
    width = "desktop" if viewport is DESKTOP else "phone"

    for name, path, heading in (
        ("station", "", "CP-LOOK-1"),
        ("settings", "settings/", "Station settings"),
        ("log", "log/", "Station log"),
    ):
        page.goto(f"{live_server.url}/stations/{busy_station.pk}/{path}")
        expect(page.get_by_role("heading", level=1)).to_contain_text(heading)
        page.screenshot(path=str(shots / f"station-{name}-{width}.png"), full_page=True)
        if viewport is PHONE:
            # Screen-sized slices too: a whole phone page shrinks to illegible.
            height = page.evaluate("document.documentElement.scrollHeight")
            for n, top in enumerate(range(0, height, 1200)):
                clip = {"x": 0, "y": top, "width": 390, "height": min(1200, height - top)}
                path = shots / f"station-{name}-phone-{n}.png"
                page.screenshot(path=str(path), clip=clip, full_page=True)
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"the {name} page scrolls sideways by {overflow}px at {width}"
