"""DataTransfer reaches the handler registered for its vendor."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from ocpp_gateway.vendors import (
    DataTransferRequest,
    DataTransferResult,
    data_transfer_handler,
    register_vendor_handler,
    unregister_vendor_handler,
)
from stations.models import Station
from tests.factories import make_cpo, make_station
from tests.ocpp_gateway.conftest import Charger, open_charger

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def received() -> list[DataTransferRequest]:
    """Requests seen by a sync 'com.acme' handler that reads the ORM; unregistered after."""
    seen: list[DataTransferRequest] = []

    @data_transfer_handler("com.acme")
    def acme(request: DataTransferRequest) -> DataTransferResult:
        seen.append(request)
        station = Station.objects.get(pk=request.station_id)
        if request.message_id == "Ping":
            return DataTransferResult(status="Accepted", data=f"pong from {station.cbid}")
        if request.message_id == "Struct":
            return DataTransferResult(status="Accepted", data={"answer": 42})
        return DataTransferResult(status="UnknownMessageId")

    yield seen
    unregister_vendor_handler("com.acme")


async def accepted_charger(cbid: str = "CP-1") -> Charger:
    cpo = await database_sync_to_async(make_cpo)("CPO A")
    await database_sync_to_async(make_station)(cbid, cpo=cpo)
    charger = open_charger(cbid)
    assert await charger.connect()
    return charger


async def test_registered_vendor_answers_its_data_transfer(received):
    charger = await accepted_charger()
    reply = await charger.call(
        "DataTransfer", {"vendorId": "COM.ACME", "messageId": "Ping", "data": "hello"}
    )
    await charger.close()
    assert reply[2] == {"status": "Accepted", "data": "pong from CP-1"}
    (request,) = received
    assert (request.cbid, request.version, request.vendor_id) == ("CP-1", "1.6", "COM.ACME")
    assert (request.message_id, request.data) == ("Ping", "hello")


async def test_vendor_data_that_is_not_a_string_is_sent_as_json_text(received):
    charger = await accepted_charger()
    reply = await charger.call("DataTransfer", {"vendorId": "com.acme", "messageId": "Struct"})
    await charger.close()
    assert reply[2] == {"status": "Accepted", "data": '{"answer":42}'}


async def test_vendor_may_answer_unknown_message_id(received):
    charger = await accepted_charger()
    reply = await charger.call("DataTransfer", {"vendorId": "com.acme", "messageId": "What"})
    await charger.close()
    assert reply[2] == {"status": "UnknownMessageId"}


async def test_other_vendors_stay_unknown(received):
    charger = await accepted_charger()
    reply = await charger.call("DataTransfer", {"vendorId": "com.other"})
    await charger.close()
    assert reply[2] == {"status": "UnknownVendorId"}
    assert received == []


async def test_async_vendor_handler_is_awaited():
    async def rejecting(request: DataTransferRequest) -> DataTransferResult:
        return DataTransferResult(status="Rejected")

    register_vendor_handler("com.async", rejecting)
    try:
        charger = await accepted_charger()
        reply = await charger.call("DataTransfer", {"vendorId": "com.async"})
        await charger.close()
    finally:
        unregister_vendor_handler("com.async")
    assert reply[2] == {"status": "Rejected"}


async def test_failing_vendor_handler_is_an_internal_error():
    def broken(request: DataTransferRequest) -> DataTransferResult:
        raise RuntimeError("vendor bug")

    register_vendor_handler("com.broken", broken)
    try:
        charger = await accepted_charger()
        reply = await charger.call("DataTransfer", {"vendorId": "com.broken"}, unique_id="dt")
        heartbeat = await charger.call("Heartbeat", {})
        await charger.close()
    finally:
        unregister_vendor_handler("com.broken")
    assert reply[:3] == [4, "dt", "InternalError"]
    assert heartbeat[0] == 3
