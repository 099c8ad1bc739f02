"""Helpers to talk OCPP-J 1.6 to the consumer through WebsocketCommunicator."""

from __future__ import annotations

import json

import pytest
from channels.testing import WebsocketCommunicator

from ocpp_gateway.message_log import message_log
from ocpp_gateway.routing import websocket_application


class Charger:
    """A scripted charger on a WebsocketCommunicator."""

    def __init__(self, communicator: WebsocketCommunicator):
        self.ws = communicator
        self._next = 0
        self.subprotocol: str | None = None

    async def connect(self) -> bool:
        connected, subprotocol = await self.ws.connect(timeout=5)
        self.subprotocol = subprotocol
        return connected

    def next_id(self) -> str:
        self._next += 1
        return str(self._next)

    async def send_raw(self, text: str) -> None:
        await self.ws.send_to(text_data=text)

    async def receive(self, timeout: float = 5) -> list:
        return json.loads(await self.ws.receive_from(timeout=timeout))

    async def call(self, action: str, payload: dict, unique_id: str | None = None) -> list:
        unique_id = unique_id or self.next_id()
        await self.send_raw(json.dumps([2, unique_id, action, payload]))
        reply = await self.receive()
        assert reply[1] == unique_id, reply
        return reply

    async def boot(self, **extra) -> list:
        payload = {"chargePointVendor": "Acme", "chargePointModel": "Fast 22"} | extra
        return await self.call("BootNotification", payload)

    async def close(self) -> None:
        await self.ws.disconnect()
        await message_log.flush()


def open_charger(
    cbid: str = "CP-1",
    subprotocols: list[str] | None = None,
    headers: list[tuple[bytes, bytes]] | None = None,
    path: str | None = None,
) -> Charger:
    communicator = WebsocketCommunicator(
        websocket_application,
        path or f"/ocpp/{cbid}",
        subprotocols=["ocpp1.6"] if subprotocols is None else subprotocols,
        headers=headers or [],
    )
    return Charger(communicator)


@pytest.fixture
def charger_factory():
    opened: list[Charger] = []

    def factory(*args, **kwargs) -> Charger:
        charger = open_charger(*args, **kwargs)
        opened.append(charger)
        return charger

    return factory
