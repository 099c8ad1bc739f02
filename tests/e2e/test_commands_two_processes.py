"""A command requested over HTTP in one daphne process reaches a charger connected to another.

Two real daphne processes share the test database and a real Redis channel layer, as in
production behind a load balancer: the charger's socket lives in process 1, the web
request goes to process 2, and only the channel layer can carry the "go" between them.
"""

from __future__ import annotations

import asyncio
import os
import secrets

import pytest
import requests
import websockets
from channels.db import database_sync_to_async
from django.test import Client
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call_result
from ocpp.v16.enums import Action, RegistrationStatus

from stations.models import Command
from tests.e2e.conftest import server_environment
from tests.e2e.servers import DaphneServer
from tests.factories import make_cpo, make_member, make_station, make_user

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/4"


def redis_unreachable() -> str:
    """Why Redis cannot be used, or '' when it answers."""
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except Exception as exc:
        return f"Redis at {REDIS_URL} is unreachable ({exc}); this test needs a real Redis"
    return ""


class ScriptedCharger(ChargePoint):
    """An OCPP 1.6 charger (the `ocpp` library's client) that accepts a Reset."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.resets: list[str] = []
        self.triggers: list[str] = []

    @on(Action.reset)
    def on_reset(self, type: str) -> call_result.Reset:
        self.resets.append(type)
        return call_result.Reset(status="Accepted")

    @on(Action.trigger_message)
    def on_trigger_message(self, requested_message: str, **kwargs) -> call_result.TriggerMessage:
        self.triggers.append(requested_message)
        return call_result.TriggerMessage(status="Accepted")


@pytest.fixture
def servers():
    reason = redis_unreachable()
    if reason:
        pytest.skip(reason)
    environment = server_environment(REDIS_URL=REDIS_URL)
    with DaphneServer(env=environment) as one, DaphneServer(env=environment) as two:
        yield one, two


def staff_session(station_cbid: str) -> tuple[int, str]:
    """An admin of the station's CPO, logged in: (station pk, session cookie)."""
    cpo = make_cpo("CPO E2E")
    alice = make_user("alice")
    make_member(alice, cpo)
    station = make_station(station_cbid, cpo=cpo)
    client = Client()
    client.force_login(alice)
    return station.pk, client.cookies["sessionid"].value


def post_reset(server: DaphneServer, station_pk: int, session: str) -> requests.Response:
    # Django takes the unmasked 32-character CSRF secret as a token too.
    csrf = secrets.token_hex(16)
    return requests.post(
        f"{server.http_url}/api/stations/{station_pk}/commands/",
        json={"kind": "reset", "params": {"type": "soft"}},
        cookies={"sessionid": session, "csrftoken": csrf},
        headers={"X-CSRFToken": csrf},
        timeout=10,
    )


async def eventually(check, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await database_sync_to_async(check)():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{check.__doc__} did not hold within {timeout} s")
        await asyncio.sleep(0.05)


async def test_command_from_process_two_reaches_a_charger_on_process_one(servers):
    one, two = servers
    station_pk, session = await database_sync_to_async(staff_session)("E2E-CMD-1")

    async with websockets.connect(one.ws_url("E2E-CMD-1"), subprotocols=["ocpp1.6"]) as ws:
        charger = ScriptedCharger("E2E-CMD-1", ws, response_timeout=10)
        listener = asyncio.ensure_future(charger.start())
        try:
            from ocpp.v16 import call

            boot = await charger.call(
                call.BootNotification(charge_point_vendor="Acme", charge_point_model="E2E")
            )
            assert boot.status == RegistrationStatus.accepted

            response = await asyncio.to_thread(post_reset, two, station_pk, session)
            assert response.status_code == 201, two.log_text()[-3000:]
            command_id = response.json()["id"]
            assert response.json()["status"] in ("queued", "sent", "accepted")

            def accepted() -> bool:
                """the Command became accepted"""
                return Command.objects.get(pk=command_id).status == Command.Status.ACCEPTED

            await eventually(accepted)
        finally:
            listener.cancel()

    assert charger.resets == ["Soft"]
    command = await Command.objects.select_related("requested_by").aget(pk=command_id)
    assert command.requested_by.username == "alice"
    assert command.response == {"status": "Accepted"}
    assert command.sent_at is not None and command.completed_at is not None


async def test_command_to_an_offline_station_fails_at_once(servers):
    _one, two = servers
    station_pk, session = await database_sync_to_async(staff_session)("E2E-OFF-1")

    response = await asyncio.to_thread(post_reset, two, station_pk, session)

    assert response.status_code == 201, response.text
    assert response.json()["status"] == "offline"


async def test_a_bulk_request_reaches_chargers_on_both_processes(servers, settings):
    """One station.commands message per process mailbox, handed to the local consumers."""
    from channels.layers import channel_layers

    from stations.services.commands import command_request_system_many

    # This process requests like the web side: through the same Redis as the servers.
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": None}]},
        }
    }
    channel_layers.backends.clear()
    cpo = await database_sync_to_async(make_cpo)("CPO BULK")
    stations = [
        await database_sync_to_async(make_station)(cbid, cpo=cpo)
        for cbid in ("E2E-BULK-1", "E2E-BULK-2")
    ]
    chargers, listeners = [], []
    try:
        for server, station in zip(servers, stations, strict=True):
            ws = await websockets.connect(server.ws_url(station.cbid), subprotocols=["ocpp1.6"])
            charger = ScriptedCharger(station.cbid, ws, response_timeout=10)
            listeners.append(asyncio.ensure_future(charger.start()))
            chargers.append((charger, ws))
            from ocpp.v16 import call

            boot = await charger.call(
                call.BootNotification(charge_point_vendor="Acme", charge_point_model="E2E")
            )
            assert boot.status == RegistrationStatus.accepted

        commands = await database_sync_to_async(command_request_system_many)(
            stations=stations, kind="trigger_message", params={"message": "Heartbeat"}
        )
        ids = [command.pk for command in commands]

        def all_accepted() -> bool:
            """both Commands became accepted"""
            statuses = set(Command.objects.filter(pk__in=ids).values_list("status", flat=True))
            return statuses == {Command.Status.ACCEPTED}

        await eventually(all_accepted)
    finally:
        for listener in listeners:
            listener.cancel()
        for _, ws in chargers:
            await ws.close()
        channel_layers.backends.clear()
    assert [charger.triggers for charger, _ in chargers] == [["Heartbeat"], ["Heartbeat"]]
