"""OCPP 2.0.1 / 2.1 messages from an Accepted charger, through the consumer to the database."""

from __future__ import annotations

import json

import pytest
from channels.db import database_sync_to_async

from stations.models import Connector, IdTag, MeterValue, Station, StationVariable, Transaction
from tests.factories import make_station
from tests.ocpp_gateway.conftest import open_charger
from tests.ocpp_gateway.test_v201_connect import BOOT

pytestmark = [pytest.mark.django_db(transaction=True)]

CBID = "CP-MSG"
T0 = "2026-03-01T10:00:00.000Z"


@pytest.fixture(params=["ocpp2.0.1", "ocpp2.1"])
async def charger(request, cpo_a):
    """An Accepted 2.x charger of CPO A, for each 2.x version."""
    await database_sync_to_async(make_station)(CBID, cpo=cpo_a, ocpp_version="2.0.1")
    await IdTag.objects.acreate(cpo=cpo_a, tag="CARD-1", token_type="ISO14443")
    await IdTag.objects.acreate(cpo=cpo_a, tag="BLOCKED-1", status="Blocked")
    charger = open_charger(CBID, subprotocols=[request.param])
    assert await charger.connect()
    assert (await charger.call("BootNotification", BOOT))[2]["status"] == "Accepted"
    yield charger
    await charger.close()


def sampled(value: float, **extra) -> dict:
    return {"value": value} | extra


def meter_value(timestamp: str, *values: dict) -> dict:
    return {"timestamp": timestamp, "sampledValue": list(values)}


def transaction_event(event_type: str, seq_no: int, tx_id: str = "TX-1", **extra) -> dict:
    payload = {
        "eventType": event_type,
        "timestamp": T0,
        "triggerReason": {"Started": "CablePluggedIn", "Ended": "EVDeparted"}.get(
            event_type, "MeterValuePeriodic"
        ),
        "seqNo": seq_no,
        "transactionInfo": {"transactionId": tx_id},
    }
    return payload | extra


async def test_heartbeat_answers_the_current_utc_time(charger):
    reply = await charger.call("Heartbeat", {})
    assert reply[0] == 3
    assert reply[2]["currentTime"].endswith("Z")


async def test_status_notification_records_the_evse_connector(charger):
    reply = await charger.call(
        "StatusNotification",
        {"timestamp": T0, "connectorStatus": "Occupied", "evseId": 2, "connectorId": 1},
    )
    assert reply == [3, reply[1], {}]
    connector = await Connector.objects.aget(station__cbid=CBID)
    assert (connector.evse_id, connector.connector_id) == (2, 1)
    assert connector.status == "Occupied"
    assert connector.label == "2/1"


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ({"idToken": "CARD-1", "type": "ISO14443"}, "Accepted"),
        ({"idToken": "card-1", "type": "ISO14443"}, "Accepted"),  # case-insensitive
        ({"idToken": "CARD-1", "type": "eMAID"}, "Invalid"),  # registered for RFID only
        ({"idToken": "BLOCKED-1", "type": "ISO14443"}, "Blocked"),
        ({"idToken": "NOBODY", "type": "ISO14443"}, "Invalid"),
        ({"idToken": "", "type": "NoAuthorization"}, "Invalid"),  # no free usage here
    ],
)
async def test_authorize_judges_the_id_token_and_its_type(charger, token, expected):
    reply = await charger.call("Authorize", {"idToken": token})
    assert reply[0] == 3
    assert reply[2] == {"idTokenInfo": {"status": expected}}


async def test_no_authorization_token_is_accepted_at_a_free_station(charger):
    await Station.objects.filter(cbid=CBID).aupdate(free_usage=True)
    reply = await charger.call("Authorize", {"idToken": {"idToken": "", "type": "NoAuthorization"}})
    assert reply[2]["idTokenInfo"]["status"] == "Accepted"


async def test_transaction_started_updated_ended(charger):
    started = await charger.call(
        "TransactionEvent",
        transaction_event(
            "Started",
            0,
            evse={"id": 1, "connectorId": 1},
            idToken={"idToken": "CARD-1", "type": "ISO14443"},
            meterValue=[
                meter_value(T0, sampled(1000.0, context="Transaction.Begin")),
            ],
        ),
    )
    updated = await charger.call(
        "TransactionEvent",
        transaction_event(
            "Updated",
            1,
            timestamp="2026-03-01T10:15:00.000Z",
            meterValue=[
                meter_value(
                    "2026-03-01T10:15:00.000Z",
                    sampled(3.5, unitOfMeasure={"unit": "kWh"}),
                    sampled(11.2, measurand="Power.Active.Import", unitOfMeasure={"unit": "kW"}),
                )
            ],
        ),
    )
    ended = await charger.call(
        "TransactionEvent",
        transaction_event(
            "Ended",
            2,
            timestamp="2026-03-01T10:30:00.000Z",
            transactionInfo={"transactionId": "TX-1", "stoppedReason": "EVDisconnected"},
            meterValue=[
                meter_value("2026-03-01T10:30:00.000Z", sampled(6000.0, context="Transaction.End"))
            ],
        ),
    )

    assert started == [3, started[1], {"idTokenInfo": {"status": "Accepted"}}]
    assert updated == [3, updated[1], {}]  # no idToken, no idTokenInfo
    assert ended == [3, ended[1], {}]
    tx = await Transaction.objects.select_related("connector").aget()
    assert tx.charger_transaction_id == "TX-1"
    assert tx.ocpp_id == "TX-1"
    assert (tx.connector.evse_id, tx.connector.connector_id) == (1, 1)
    assert (tx.id_tag, tx.id_tag_status) == ("CARD-1", "Accepted")
    assert tx.state == Transaction.State.ENDED
    assert (tx.meter_start, tx.meter_stop, tx.energy_wh) == (1000, 6000, 5000)
    assert tx.stop_reason == "EVDisconnected"
    assert tx.start_time.isoformat() == "2026-03-01T10:00:00+00:00"
    assert tx.stop_time.isoformat() == "2026-03-01T10:30:00+00:00"
    assert tx.last_seq_no == 2
    assert tx.offline is False
    values = [
        (v.measurand, v.value, v.unit, v.evse_id)
        async for v in MeterValue.objects.filter(transaction=tx).order_by("timestamp", "id")
    ]
    assert values == [
        ("Energy.Active.Import.Register", "1000", "Wh", 1),
        ("Energy.Active.Import.Register", "3.5", "kWh", 1),
        ("Power.Active.Import", "11.2", "kW", 1),
        ("Energy.Active.Import.Register", "6000", "Wh", 1),
    ]


async def test_resent_transaction_event_changes_nothing(charger):
    event = transaction_event(
        "Started",
        0,
        evse={"id": 1},
        meterValue=[meter_value(T0, sampled(10.0))],
    )
    await charger.call("TransactionEvent", event)
    updated = transaction_event("Updated", 1, meterValue=[meter_value(T0, sampled(20.0))])
    await charger.call("TransactionEvent", updated)
    # The charger did not get our answers and sends both again.
    again_started = await charger.call("TransactionEvent", event)
    again_updated = await charger.call("TransactionEvent", updated)

    assert again_started[0] == again_updated[0] == 3
    assert await Transaction.objects.acount() == 1
    assert await MeterValue.objects.acount() == 2
    tx = await Transaction.objects.aget()
    assert tx.last_seq_no == 1


async def test_resent_event_with_id_token_is_still_answered_with_id_token_info(charger):
    event = transaction_event(
        "Started", 0, evse={"id": 1}, idToken={"idToken": "BLOCKED-1", "type": "ISO14443"}
    )
    first = await charger.call("TransactionEvent", event)
    again = await charger.call("TransactionEvent", event)
    assert first[2] == again[2] == {"idTokenInfo": {"status": "Blocked"}}


async def test_offline_events_flag_the_transaction(charger):
    await charger.call("TransactionEvent", transaction_event("Started", 0, evse={"id": 1}))
    await charger.call("TransactionEvent", transaction_event("Updated", 1, offline=True))
    await charger.call("TransactionEvent", transaction_event("Ended", 2))
    tx = await Transaction.objects.aget()
    assert tx.offline is True
    assert tx.state == "ended"
    assert tx.stop_reason == "Local"  # 2.0.1: stoppedReason omitted means Local


async def test_token_presented_after_plug_in_is_recorded_and_answered(charger):
    await charger.call("TransactionEvent", transaction_event("Started", 0, evse={"id": 1}))
    reply = await charger.call(
        "TransactionEvent",
        transaction_event(
            "Updated", 1, triggerReason="Authorized", idToken={"idToken": "NOBODY", "type": "Local"}
        ),
    )
    assert reply[2] == {"idTokenInfo": {"status": "Invalid"}}
    tx = await Transaction.objects.aget()
    assert (tx.id_tag, tx.id_tag_status) == ("NOBODY", "Invalid")


async def test_string_transaction_ids_of_two_evses_are_two_transactions(charger):
    uuid_id = "5f1b9e0a-5c1d-4b8e-9a7e-0c6f3d2a1b00"
    await charger.call("TransactionEvent", transaction_event("Started", 0, uuid_id, evse={"id": 1}))
    await charger.call("TransactionEvent", transaction_event("Started", 0, "tx-2", evse={"id": 2}))
    ids = {tx async for tx in Transaction.objects.values_list("charger_transaction_id", flat=True)}
    assert ids == {uuid_id, "tx-2"}


async def test_ended_for_a_transaction_never_started_is_kept_as_orphan(charger):
    reply = await charger.call("TransactionEvent", transaction_event("Ended", 5, "LOST"))
    assert reply[0] == 3
    tx = await Transaction.objects.aget()
    assert (tx.charger_transaction_id, tx.state, tx.orphan_stop) == ("LOST", "ended", True)


async def test_meter_values_outside_a_transaction_are_stored(charger):
    reply = await charger.call(
        "MeterValues",
        {
            "evseId": 0,
            "meterValue": [
                meter_value(
                    T0,
                    sampled(12.5, unitOfMeasure={"unit": "kWh", "multiplier": 3}),
                    sampled(230.1, measurand="Voltage", phase="L1-N", unitOfMeasure={"unit": "V"}),
                )
            ],
        },
    )
    assert reply == [3, reply[1], {}]
    values = [
        (v.measurand, v.value, v.unit, v.multiplier, v.normalized_value, v.phase, v.evse_id)
        async for v in MeterValue.objects.filter(transaction=None).order_by("id")
    ]
    assert values == [
        # As sent, and normalised: 12.5 × 10³ kWh = 12,500,000 Wh.
        ("Energy.Active.Import.Register", "12.5", "kWh", 3, 12_500_000.0, "", 0),
        ("Voltage", "230.1", "V", 0, 230.1, "L1-N", 0),
    ]


async def test_notify_report_stores_station_variables(charger):
    report = {
        "requestId": 7,
        "generatedAt": T0,
        "seqNo": 0,
        "tbc": False,
        "reportData": [
            {
                "component": {"name": "OCPPCommCtrlr"},
                "variable": {"name": "HeartbeatInterval"},
                "variableAttribute": [
                    {"type": "Actual", "value": "300", "mutability": "ReadWrite"}
                ],
                "variableCharacteristics": {"dataType": "integer", "supportsMonitoring": False},
            },
            {
                "component": {"name": "Connector", "evse": {"id": 1, "connectorId": 1}},
                "variable": {"name": "AvailabilityState"},
                "variableAttribute": [{"value": "Available", "mutability": "ReadOnly"}],
                "variableCharacteristics": {"dataType": "OptionList", "supportsMonitoring": True},
            },
        ],
    }
    reply = await charger.call("NotifyReport", report)
    assert reply == [3, reply[1], {}]
    rows = [
        (v.component, v.evse_id, v.connector_id, v.variable, v.value, v.mutability, v.data_type)
        async for v in StationVariable.objects.order_by("component")
    ]
    assert rows == [
        ("Connector", 1, 1, "AvailabilityState", "Available", "ReadOnly", "OptionList"),
        ("OCPPCommCtrlr", None, None, "HeartbeatInterval", "300", "ReadWrite", "integer"),
    ]


async def test_notify_event_updates_the_reported_value(charger):
    await StationVariable.objects.acreate(
        station=await Station.objects.aget(cbid=CBID),
        component="Connector",
        evse_id=1,
        connector_id=1,
        variable="AvailabilityState",
        value="Available",
        mutability="ReadOnly",
    )
    reply = await charger.call(
        "NotifyEvent",
        {
            "generatedAt": T0,
            "seqNo": 0,
            "eventData": [
                {
                    "eventId": 1,
                    "timestamp": T0,
                    "trigger": "Delta",
                    "actualValue": "Faulted",
                    "eventNotificationType": "HardWiredNotification",
                    "component": {"name": "Connector", "evse": {"id": 1, "connectorId": 1}},
                    "variable": {"name": "AvailabilityState"},
                }
            ],
        },
    )
    assert reply == [3, reply[1], {}]
    variable = await StationVariable.objects.aget()
    assert (variable.value, variable.mutability) == ("Faulted", "ReadOnly")


@pytest.mark.parametrize(
    ("action", "payload"),
    [
        (
            "SecurityEventNotification",
            {"type": "InvalidCsmsCertificate", "timestamp": T0, "techInfo": "x" * 300},
        ),
        ("FirmwareStatusNotification", {"status": "Installed", "requestId": 3}),
        ("LogStatusNotification", {"status": "Uploaded", "requestId": 4}),
    ],
)
async def test_notifications_are_acknowledged_with_an_empty_answer(charger, action, payload):
    reply = await charger.call(action, payload)
    assert reply == [3, reply[1], {}]


async def test_data_transfer_answers_unknown_vendor(charger):
    reply = await charger.call(
        "DataTransfer", {"vendorId": "com.acme", "messageId": "Hello", "data": {"any": "json"}}
    )
    assert reply == [3, reply[1], {"status": "UnknownVendorId"}]


async def test_invalid_transaction_event_is_refused_and_stores_nothing(charger):
    bad = transaction_event("Started", 0)
    del bad["transactionInfo"]
    await charger.send_raw(json.dumps([2, "bad", "TransactionEvent", bad]))
    reply = await charger.receive()
    assert reply[:3] == [4, "bad", "OccurrenceConstraintViolation"]
    assert await Transaction.objects.acount() == 0


# ---- issue 21: unreadable times are refused, signed values kept ----------------------


@pytest.mark.parametrize(
    ("action", "payload"),
    [
        pytest.param(
            "TransactionEvent",
            transaction_event("Started", 0, timestamp="yesterday", evse={"id": 1}),
            id="event-time",
        ),
        pytest.param(
            "TransactionEvent",
            transaction_event(
                "Started", 0, evse={"id": 1}, meterValue=[meter_value("soon", sampled(1.0))]
            ),
            id="meter-value-time",
        ),
        pytest.param(
            "StatusNotification",
            {
                "timestamp": "2026-13-45",
                "connectorStatus": "Occupied",
                "evseId": 1,
                "connectorId": 1,
            },
            id="status-time",
        ),
        pytest.param(
            "MeterValues",
            {"evseId": 1, "meterValue": [meter_value("not a time", sampled(1.0))]},
            id="meter-values-time",
        ),
    ],
)
async def test_an_unreadable_time_is_refused_as_on_16_and_stores_nothing(charger, action, payload):
    reply = await charger.call(action, payload)
    assert reply[0] == 4
    assert reply[2] == "PropertyConstraintViolation"
    assert "not an ISO 8601 date-time" in reply[3]
    assert await Transaction.objects.acount() == 0
    assert await MeterValue.objects.acount() == 0
    assert await Connector.objects.filter(status="Occupied").acount() == 0


async def test_a_signed_meter_value_arrives_whole(charger):
    signed = {
        "signedMeterData": "T0NNRnx7IkZWIjoiMS4wIn0=" * 100,
        "signingMethod": "ECDSA-secp256r1-SHA256",
        "encodingMethod": "OCMF",
        "publicKey": "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE" * 10,
    }
    reply = await charger.call(
        "TransactionEvent",
        transaction_event(
            "Started",
            0,
            evse={"id": 1},
            meterValue=[meter_value(T0, sampled(1000.0, signedMeterValue=signed))],
        ),
    )
    assert reply[0] == 3
    value = await MeterValue.objects.aget()
    assert (value.signed_data, value.signing_method, value.encoding_method, value.public_key) == (
        signed["signedMeterData"],
        "ECDSA-secp256r1-SHA256",
        "OCMF",
        signed["publicKey"],
    )
    assert value.normalized_value == 1000.0


@pytest.mark.parametrize("charger", ["ocpp2.1"], indirect=True)
async def test_21_cost_details_and_tariff_are_kept_in_the_session_history(charger):
    cost = {
        "totalCost": {"currency": "EUR", "typeOfCost": "NormalCost", "total": {"exclTax": 3.5}},
        "totalUsage": {"energy": 7000, "chargingTime": 1800, "idleTime": 60},
    }
    reply = await charger.call(
        "TransactionEvent",
        transaction_event(
            "Updated",
            1,
            transactionInfo={
                "transactionId": "TX-1",
                "chargingState": "Charging",
                "timeSpentCharging": 1800,
                "remoteStartId": 42,
                "tariffId": "TARIFF-7",
            },
            costDetails=cost,
        ),
    )
    assert reply[0] == 3, reply
    tx = await Transaction.objects.aget()
    assert (tx.tariff_id, tx.remote_start_id) == ("TARIFF-7", 42)
    event = await tx.events.aget()
    assert event.cost_details == cost  # as the charger spelled it
    assert (event.charging_state, event.time_spent_charging, event.tariff_id) == (
        "Charging",
        1800,
        "TARIFF-7",
    )
