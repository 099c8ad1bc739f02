"""The simulator against the real server, as firmware behaves: it takes a password the
panel generated and logs in with it next time; it reconnects, backing off, when the server
goes away; told to, it exits instead.
"""

from __future__ import annotations

import asyncio
import html
import re
import secrets
from collections.abc import Callable

import pytest
import requests
from channels.db import database_sync_to_async
from django.test import Client

from ocpp_spec.passwords import verify_password
from simulator import HandshakeRefused, SimulatorOptions, connect, run_simulator
from stations.models import ConnectionAttempt, Station
from stations.services.passwords import station_password_set
from tests.e2e.servers import DaphneServer
from tests.factories import make_cpo, make_member, make_station, make_user

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

OLD_PASSWORD = "first-charger-secret-01"
# Short waits, so that a test sees several attempts while the server is down.
FAST = {"reconnect_delay": 0.3, "reconnect_random_range": 0.2, "reconnect_doublings": 3}


class Charger:
    """`run_simulator` in a task, its play-by-play kept."""

    def __init__(self, options: SimulatorOptions) -> None:
        self.options = options
        self.lines: list[str] = []
        self.stop = asyncio.Event()
        self.task = asyncio.ensure_future(
            run_simulator(options, stop=self.stop, output=self.lines.append)
        )

    def count(self, text: str) -> int:
        return sum(text in line for line in self.lines)

    async def close(self) -> None:
        self.stop.set()
        await asyncio.wait_for(asyncio.gather(self.task, return_exceptions=True), 20)
        print("\n".join(self.lines))  # pytest shows it when the test fails


async def eventually(check: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await database_sync_to_async(check)():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        await asyncio.sleep(0.05)


def restart(server: DaphneServer) -> None:
    """Stop daphne (every socket closes) and start it again on the same port."""
    server.stop()
    server._spawn()
    assert server._wait_until_listening(), server.log_text()


def connected_station(cbid: str) -> bool:
    return Station.objects.filter(
        cbid=cbid, connected=True, registration_status="Accepted"
    ).exists()


def admin_session(cbid: str) -> tuple[int, str]:
    """A claimed station with a password, and its CPO admin logged in: (pk, session)."""
    cpo = make_cpo("CPO SIM")
    alice = make_user("alice")
    make_member(alice, cpo)
    station = make_station(cbid, cpo=cpo)
    station_password_set(station=station, password=OLD_PASSWORD)
    client = Client()
    client.force_login(alice)
    return station.pk, client.cookies["sessionid"].value


def generate_password_in_the_panel(server: DaphneServer, station_pk: int, session: str) -> str:
    """Station page → Generate a new password, as a person does; the password shown once."""
    csrf = secrets.token_hex(16)  # Django takes the unmasked secret as a token too
    response = requests.post(
        f"{server.http_url}/stations/{station_pk}/password/",
        data={"csrfmiddlewaretoken": csrf},
        cookies={"sessionid": session, "csrftoken": csrf},
        headers={"Referer": server.http_url + "/"},
        timeout=20,
    )
    assert response.status_code == 200, response.text[-2000:]
    shown = re.search(r'id="charger-password">([^<]+)<', response.text)
    assert shown, "the page shows no password"
    return html.unescape(shown[1])


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_a_password_from_the_panel_is_used_at_the_next_connection(daphne_server, version):
    cbid = f"SIM-PW-{version}"
    station_pk, session = await database_sync_to_async(admin_session)(cbid)
    options = SimulatorOptions(
        cbid=cbid,
        url=daphne_server.ws_base_url,
        version=version,
        password=OLD_PASSWORD,
        response_timeout=10,
        **FAST,
    )
    charger = Charger(options)
    try:
        await eventually(lambda: connected_station(cbid), "the first connection")

        new = await asyncio.to_thread(
            generate_password_in_the_panel, daphne_server, station_pk, session
        )

        # The charger accepts it (today: NotSupported) and the server makes it current.
        await eventually(lambda: options.password == new, "the simulator taking the password")
        await eventually(
            lambda: verify_password(
                new, Station.objects.get(cbid=cbid).auth_password_hash, version=version
            ),
            "the server confirming the password",
        )
        # The server goes away and comes back: the charger logs in with the new password.
        await asyncio.to_thread(restart, daphne_server)
        await eventually(lambda: charger.count("connected to") == 2, "a reconnection")
        await eventually(lambda: connected_station(cbid), "the second connection")
    finally:
        await charger.close()

    refused = await database_sync_to_async(ConnectionAttempt.objects.filter(cbid=cbid).count)()
    assert refused == 0
    # The old password is gone.
    with pytest.raises(HandshakeRefused):
        await connect(
            SimulatorOptions(cbid=cbid, url=daphne_server.ws_base_url, password=OLD_PASSWORD)
        )


async def test_the_simulator_reconnects_backing_off_while_the_server_is_down(daphne_server):
    options = SimulatorOptions(cbid="SIM-BACK-1", url=daphne_server.ws_base_url, **FAST)
    charger = Charger(options)
    try:
        await eventually(lambda: charger.count("BootNotification result") >= 1, "a boot")
        daphne_server.stop()
        await eventually(lambda: charger.count("could not reconnect") >= 3, "3 failed attempts")
        await asyncio.to_thread(restart, daphne_server)
        await eventually(lambda: charger.count("connected to") == 2, "a reconnection")
    finally:
        await charger.close()

    waits = [
        float(match[1])
        for line in charger.lines
        if (match := re.search(r"could not reconnect .*trying again in ([\d.]+) s", line))
    ]
    # Each wait doubles (0.3, 0.6, 1.2, 2.4 s, plus up to 0.2 s).
    assert all(later > earlier for earlier, later in zip(waits, waits[1:3], strict=False))
    assert not charger.task.done() or charger.task.exception() is None


async def test_told_to_exit_the_simulator_exits_when_the_server_closes(daphne_server):
    options = SimulatorOptions(
        cbid="SIM-EXIT-1", url=daphne_server.ws_base_url, exit_on_close=True, **FAST
    )
    charger = Charger(options)
    try:
        await eventually(lambda: charger.count("BootNotification result") >= 1, "a boot")

        daphne_server.stop()

        await asyncio.wait_for(asyncio.shield(charger.task), 20)
    finally:
        await charger.close()
    assert charger.count("exiting") == 1
    assert charger.count("connected to") == 1
