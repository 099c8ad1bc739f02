"""Authorization through the consumer, with real tags: 1.6 Authorize / StartTransaction /
StopTransaction and 2.x Authorize / TransactionEvent, every verdict on the wire."""

from __future__ import annotations

from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from stations.models import IdTag, Transaction
from tests.factories import make_station
from tests.ocpp_gateway.conftest import open_charger
from tests.ocpp_gateway.test_v201_connect import BOOT

pytestmark = [pytest.mark.django_db(transaction=True)]

T0 = "2026-03-01T10:00:00.000Z"


async def tags(cpo) -> None:
    past = timezone.now() - timedelta(days=1)
    await IdTag.objects.acreate(cpo=cpo, tag="GOOD", parent_id_tag="FLEET", label="Van 12")
    await IdTag.objects.acreate(cpo=cpo, tag="FLEET")
    await IdTag.objects.acreate(cpo=cpo, tag="BLOCKED", status="Blocked")
    await IdTag.objects.acreate(cpo=cpo, tag="OLD", expiry_date=past)
    await IdTag.objects.acreate(cpo=cpo, tag="RFID", token_type="ISO14443")


@pytest.fixture
async def charger16(cpo_a, cpo_b):
    await database_sync_to_async(make_station)("CP-A16", cpo=cpo_a, ocpp_version="1.6")
    await tags(cpo_a)
    await IdTag.objects.acreate(cpo=cpo_b, tag="B-ONLY")
    charger = open_charger("CP-A16")
    assert await charger.connect()
    yield charger
    await charger.close()


@pytest.mark.parametrize(
    ("id_tag", "expected"),
    [
        ("GOOD", {"status": "Accepted", "parentIdTag": "FLEET"}),
        ("good", {"status": "Accepted", "parentIdTag": "FLEET"}),
        ("BLOCKED", {"status": "Blocked"}),
        ("OLD", "Expired"),
        ("NOBODY", {"status": "Invalid"}),
        ("B-ONLY", {"status": "Invalid"}),
    ],
)
async def test_1_6_authorize_answers_from_the_cpo_tags(charger16, id_tag, expected):
    reply = await charger16.call("Authorize", {"idTag": id_tag})
    if isinstance(expected, str):
        assert reply[2]["idTagInfo"]["status"] == expected
        assert reply[2]["idTagInfo"]["expiryDate"].endswith("Z")
    else:
        assert reply[2] == {"idTagInfo": expected}


async def test_1_6_second_start_with_a_busy_tag_is_concurrent_tx(charger16):
    start = {"connectorId": 1, "idTag": "GOOD", "meterStart": 0, "timestamp": T0}
    first = await charger16.call("StartTransaction", start)
    assert first[2]["idTagInfo"]["status"] == "Accepted"
    second = await charger16.call("StartTransaction", start | {"connectorId": 2})
    assert second[2]["idTagInfo"]["status"] == "ConcurrentTx"
    authorize = await charger16.call("Authorize", {"idTag": "GOOD"})
    assert authorize[2]["idTagInfo"]["status"] == "ConcurrentTx"
    stop = await charger16.call(
        "StopTransaction",
        {
            "transactionId": first[2]["transactionId"],
            "meterStop": 500,
            "timestamp": "2026-03-01T11:00:00.000Z",
            "idTag": "GOOD",
        },
    )
    assert stop[2]["idTagInfo"]["status"] == "Accepted"
    tx = await Transaction.objects.aget(pk=second[2]["transactionId"])
    assert tx.id_tag_status == "ConcurrentTx"
    tag = await IdTag.objects.aget(tag="GOOD")
    assert tag.last_used_at is not None


async def test_1_6_start_with_a_blocked_tag_is_recorded_blocked(charger16):
    start = {"connectorId": 1, "idTag": "BLOCKED", "meterStart": 0, "timestamp": T0}
    reply = await charger16.call("StartTransaction", start)
    assert reply[2]["idTagInfo"] == {"status": "Blocked"}
    tx = await Transaction.objects.aget(pk=reply[2]["transactionId"])
    assert tx.id_tag_status == "Blocked"


@pytest.fixture(params=["ocpp2.0.1", "ocpp2.1"])
async def charger2(request, cpo_a):
    await database_sync_to_async(make_station)("CP-A2", cpo=cpo_a, ocpp_version="2.0.1")
    await tags(cpo_a)
    charger = open_charger("CP-A2", subprotocols=[request.param])
    assert await charger.connect()
    assert (await charger.call("BootNotification", BOOT))[2]["status"] == "Accepted"
    yield charger
    await charger.close()


@pytest.mark.parametrize(
    ("token", "token_type", "expected"),
    [
        ("GOOD", "ISO14443", "Accepted"),
        ("RFID", "ISO14443", "Accepted"),
        ("RFID", "eMAID", "Invalid"),
        ("BLOCKED", "ISO14443", "Blocked"),
        ("OLD", "ISO14443", "Expired"),
        ("NOBODY", "ISO14443", "Invalid"),
    ],
)
async def test_2x_authorize_answers_from_the_cpo_tags(charger2, token, token_type, expected):
    reply = await charger2.call("Authorize", {"idToken": {"idToken": token, "type": token_type}})
    assert reply[2]["idTokenInfo"]["status"] == expected


async def test_2x_authorize_gives_the_group(charger2):
    reply = await charger2.call("Authorize", {"idToken": {"idToken": "GOOD", "type": "Local"}})
    assert reply[2]["idTokenInfo"]["groupIdToken"] == {"idToken": "FLEET", "type": "Central"}


def event(event_type: str, seq_no: int, tx_id: str, token: str) -> dict:
    return {
        "eventType": event_type,
        "timestamp": T0,
        "triggerReason": "Authorized",
        "seqNo": seq_no,
        "transactionInfo": {"transactionId": tx_id},
        "evse": {"id": 1, "connectorId": 1},
        "idToken": {"idToken": token, "type": "ISO14443"},
    }


async def test_2x_transaction_event_token_in_another_session_is_concurrent(charger2):
    first = await charger2.call("TransactionEvent", event("Started", 0, "TX-1", "GOOD"))
    assert first[2]["idTokenInfo"]["status"] == "Accepted"
    same = await charger2.call("TransactionEvent", event("Updated", 1, "TX-1", "GOOD"))
    assert same[2]["idTokenInfo"]["status"] == "Accepted"
    other = await charger2.call("TransactionEvent", event("Started", 0, "TX-2", "GOOD"))
    assert other[2]["idTokenInfo"]["status"] == "ConcurrentTx"
    blocked = await charger2.call("TransactionEvent", event("Started", 0, "TX-3", "BLOCKED"))
    assert blocked[2]["idTokenInfo"]["status"] == "Blocked"
    tx = await Transaction.objects.aget(charger_transaction_id="TX-2")
    assert tx.id_tag_status == "ConcurrentTx"
