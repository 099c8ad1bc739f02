"""Every message a 1.6 charger sends, through the consumer: the answer and what is stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from channels.db import database_sync_to_async

from stations.models import Connector, IdTag, MeterValue, OcppMessage, Station, Transaction
from tests.factories import make_cpo, make_station
from tests.ocpp_gateway.conftest import Charger, open_charger

pytestmark = [pytest.mark.django_db(transaction=True)]

T0 = "2026-01-02T10:00:00.000Z"
T1 = "2026-01-02T11:00:00Z"


async def accepted_charger(cbid: str = "CP-1", **station_fields) -> tuple[Charger, Station]:
    """A connected charger whose station has a CPO and was Accepted at an earlier boot."""
    cpo = await database_sync_to_async(make_cpo)("CPO A")
    station = await database_sync_to_async(make_station)(cbid, cpo=cpo, **station_fields)
    charger = open_charger(cbid)
    assert await charger.connect()
    return charger, station


async def make_tag(station: Station, tag: str = "TAG-1", **fields) -> IdTag:
    return await IdTag.objects.acreate(cpo_id=station.cpo_id, tag=tag, **fields)


def meter_value(timestamp: str, *values: dict) -> dict:
    return {"timestamp": timestamp, "sampledValue": list(values)}


# ---- BootNotification and Heartbeat ---------------------------------------------------


async def test_boot_stores_every_field():
    charger = open_charger("CP-BOOT")
    await charger.connect()
    fields = {
        "chargePointSerialNumber": "SN-1",
        "chargeBoxSerialNumber": "BOX-1",
        "firmwareVersion": "4.2",
        "iccid": "8935",
        "imsi": "2440",
        "meterType": "ABB",
        "meterSerialNumber": "M-1",
    }
    reply = await charger.boot(**fields)
    await charger.close()
    assert reply[0] == 3
    station = await Station.objects.aget(cbid="CP-BOOT")
    assert (station.vendor, station.model) == ("Acme", "Fast 22")
    assert (station.serial_number, station.charge_box_serial_number) == ("SN-1", "BOX-1")
    assert (station.firmware_version, station.iccid, station.imsi) == ("4.2", "8935", "2440")
    assert (station.meter_type, station.meter_serial_number) == ("ABB", "M-1")
    assert station.last_boot_at is not None


async def test_boot_with_a_cpo_is_accepted_with_the_heartbeat_interval(settings):
    settings.OCPP_HEARTBEAT_INTERVAL = 123
    charger, _ = await accepted_charger()
    reply = await charger.boot()
    await charger.close()
    assert reply[2]["status"] == "Accepted"
    assert reply[2]["interval"] == 123


async def test_heartbeat_answers_the_current_time_in_utc():
    charger, _ = await accepted_charger()
    reply = await charger.call("Heartbeat", {})
    await charger.close()
    moment = datetime.fromisoformat(reply[2]["currentTime"].replace("Z", "+00:00"))
    assert reply[2]["currentTime"].endswith("Z")
    assert abs(moment - datetime.now(UTC)) < timedelta(seconds=5)


# ---- StatusNotification --------------------------------------------------------------


async def test_status_of_connector_zero_is_the_station_status():
    charger, station = await accepted_charger()
    reply = await charger.call(
        "StatusNotification",
        {"connectorId": 0, "errorCode": "OtherError", "status": "Faulted", "info": "fan"},
    )
    await charger.close()
    assert reply == [3, reply[1], {}]
    await station.arefresh_from_db()
    assert (station.status, station.error_code, station.status_info) == (
        "Faulted",
        "OtherError",
        "fan",
    )
    assert not await Connector.objects.aexists()


async def test_status_of_a_connector_creates_then_updates_it():
    charger, station = await accepted_charger()
    for status, when in (("Available", T0), ("Charging", T1)):
        reply = await charger.call(
            "StatusNotification",
            {
                "connectorId": 1,
                "errorCode": "NoError",
                "status": status,
                "timestamp": when,
                "vendorId": "Acme",
                "vendorErrorCode": "E42",
            },
        )
        assert reply[2] == {}
    await charger.close()
    connector = await Connector.objects.aget(station=station)
    assert (connector.connector_id, connector.evse_id, connector.status) == (1, None, "Charging")
    assert (connector.vendor_id, connector.vendor_error_code) == ("Acme", "E42")


async def test_status_with_overlong_info_is_accepted_and_cut():
    charger, station = await accepted_charger()
    reply = await charger.call(
        "StatusNotification",
        {"connectorId": 1, "errorCode": "NoError", "status": "Available", "info": "x" * 300},
    )
    await charger.close()
    assert reply[0] == 3
    connector = await Connector.objects.aget(station=station)
    assert connector.info == "x" * 255


# ---- Authorize -----------------------------------------------------------------------


async def test_authorize_accepts_a_tag_of_the_cpo():
    charger, station = await accepted_charger()
    await make_tag(station, parent_id_tag="FLEET")
    reply = await charger.call("Authorize", {"idTag": "TAG-1"})
    await charger.close()
    assert reply[2] == {"idTagInfo": {"status": "Accepted", "parentIdTag": "FLEET"}}


async def test_authorize_answers_the_expiry_date_in_utc():
    charger, station = await accepted_charger()
    await make_tag(station, expiry_date=datetime(2099, 5, 6, 7, 8, 9, tzinfo=UTC))
    reply = await charger.call("Authorize", {"idTag": "TAG-1"})
    await charger.close()
    assert reply[2]["idTagInfo"] == {"status": "Accepted", "expiryDate": "2099-05-06T07:08:09.000Z"}


@pytest.mark.parametrize(
    ("tag_fields", "expected"),
    [
        (None, "Invalid"),
        ({"status": "Blocked"}, "Blocked"),
        ({"expiry_date": datetime(2020, 1, 1, tzinfo=UTC)}, "Expired"),
    ],
)
async def test_authorize_refusals_are_normal_answers(tag_fields, expected):
    charger, station = await accepted_charger()
    if tag_fields is not None:
        await make_tag(station, **tag_fields)
    reply = await charger.call("Authorize", {"idTag": "TAG-1"})
    await charger.close()
    assert reply[0] == 3
    assert reply[2]["idTagInfo"]["status"] == expected


async def test_authorize_at_a_free_usage_station_accepts_anyone():
    charger, _ = await accepted_charger(free_usage=True)
    reply = await charger.call("Authorize", {"idTag": "STRANGER"})
    await charger.close()
    assert reply[2] == {"idTagInfo": {"status": "Accepted"}}


# ---- StartTransaction / MeterValues / StopTransaction ---------------------------------


def start_payload(**overrides) -> dict:
    return {"connectorId": 1, "idTag": "TAG-1", "meterStart": 1000, "timestamp": T0} | overrides


async def test_start_transaction_answers_the_new_transaction_id():
    charger, station = await accepted_charger()
    await make_tag(station)
    reply = await charger.call("StartTransaction", start_payload())
    await charger.close()
    tx = await Transaction.objects.select_related("connector").aget()
    assert reply[2] == {"transactionId": tx.pk, "idTagInfo": {"status": "Accepted"}}
    assert isinstance(reply[2]["transactionId"], int)
    assert (tx.connector.connector_id, tx.meter_start, tx.state) == (1, 1000, "active")


async def test_start_with_an_unknown_tag_answers_invalid_with_a_transaction_id():
    charger, _ = await accepted_charger()
    reply = await charger.call("StartTransaction", start_payload(idTag="STRANGER"))
    await charger.close()
    assert reply[2]["idTagInfo"] == {"status": "Invalid"}
    assert reply[2]["transactionId"] == (await Transaction.objects.aget()).pk


async def test_start_resent_after_a_reconnect_gets_the_same_transaction_id():
    charger, _ = await accepted_charger()
    first = await charger.call("StartTransaction", start_payload())
    await charger.close()

    again = open_charger("CP-1")
    assert await again.connect()
    second = await again.call("StartTransaction", start_payload())
    await again.close()

    assert second[2]["transactionId"] == first[2]["transactionId"]
    assert await Transaction.objects.acount() == 1


async def test_a_whole_transaction_keeps_meter_values_and_energy():
    charger, station = await accepted_charger()
    await make_tag(station)
    started = await charger.call("StartTransaction", start_payload())
    tx_id = started[2]["transactionId"]
    reply = await charger.call(
        "MeterValues",
        {
            "connectorId": 1,
            "transactionId": tx_id,
            "meterValue": [
                meter_value(
                    "2026-01-02T10:30:00Z",
                    {"value": "6000", "unit": "Wh", "context": "Sample.Periodic"},
                    {"value": "16.2", "measurand": "Current.Import", "phase": "L1", "unit": "A"},
                )
            ],
        },
    )
    assert reply[2] == {}
    stopped = await charger.call(
        "StopTransaction",
        {
            "transactionId": tx_id,
            "meterStop": 12000,
            "timestamp": T1,
            "reason": "EVDisconnected",
            "idTag": "TAG-1",
            "transactionData": [meter_value(T1, {"value": "12000", "context": "Transaction.End"})],
        },
    )
    await charger.close()

    assert stopped[2] == {"idTagInfo": {"status": "Accepted"}}
    tx = await Transaction.objects.aget(pk=tx_id)
    assert (tx.state, tx.meter_stop, tx.energy_wh, tx.stop_reason) == (
        "ended",
        12000,
        11000,
        "EVDisconnected",
    )
    values = [
        (v.measurand, v.numeric_value, v.phase, v.context)
        async for v in MeterValue.objects.filter(transaction_id=tx_id).order_by("timestamp", "id")
    ]
    assert values == [
        ("Energy.Active.Import.Register", 6000.0, "", "Sample.Periodic"),
        # A context left out is the spec's default, as on 2.x.
        ("Current.Import", 16.2, "L1", "Sample.Periodic"),
        ("Energy.Active.Import.Register", 12000.0, "", "Transaction.End"),
    ]


async def test_stop_without_id_tag_answers_an_empty_object():
    charger, _ = await accepted_charger()
    started = await charger.call("StartTransaction", start_payload())
    reply = await charger.call(
        "StopTransaction",
        {"transactionId": started[2]["transactionId"], "meterStop": 1500, "timestamp": T1},
    )
    await charger.close()
    assert reply[2] == {}


async def test_stop_of_an_unknown_transaction_is_answered_and_recorded():
    charger, _ = await accepted_charger()
    reply = await charger.call(
        "StopTransaction",
        {"transactionId": 987654, "meterStop": 1500, "timestamp": T1, "idTag": "TAG-1"},
    )
    await charger.close()
    assert reply[0] == 3
    assert reply[2] == {"idTagInfo": {"status": "Invalid"}}
    orphan = await Transaction.objects.aget()
    assert orphan.orphan_stop is True
    assert (orphan.orphan_transaction_id, orphan.ocpp_id) == (987654, "987654")


async def test_meter_values_without_transaction_are_kept():
    charger, station = await accepted_charger()
    reply = await charger.call(
        "MeterValues",
        {"connectorId": 2, "meterValue": [meter_value(T0, {"value": "230.1", "unit": "V"})]},
    )
    await charger.close()
    assert reply[2] == {}
    value = await MeterValue.objects.aget()
    assert (value.station_id, value.connector_id, value.transaction_id) == (station.pk, 2, None)
    assert value.numeric_value == 230.1


async def test_start_with_an_unreadable_timestamp_is_a_property_violation():
    charger, _ = await accepted_charger()
    reply = await charger.call("StartTransaction", start_payload(timestamp="yesterday"))
    heartbeat = await charger.call("Heartbeat", {})
    await charger.close()
    assert reply[0:3] == [4, reply[1], "PropertyConstraintViolation"]
    assert heartbeat[0] == 3
    assert not await Transaction.objects.aexists()


async def test_connector_id_beyond_any_column_is_a_property_violation():
    charger, _ = await accepted_charger()
    reply = await charger.call("StartTransaction", start_payload(connectorId=2**40))
    await charger.close()
    assert reply[2] == "PropertyConstraintViolation"


# ---- DataTransfer, diagnostics and firmware ------------------------------------------


async def test_data_transfer_without_a_vendor_handler_is_unknown_vendor():
    charger, _ = await accepted_charger()
    reply = await charger.call(
        "DataTransfer", {"vendorId": "com.nobody", "messageId": "x", "data": "{}"}
    )
    await charger.close()
    assert reply[2] == {"status": "UnknownVendorId"}


@pytest.mark.parametrize("status", ["Idle", "Uploaded", "UploadFailed", "Uploading"])
async def test_diagnostics_status_notification_is_acknowledged(status):
    charger, _ = await accepted_charger()
    reply = await charger.call("DiagnosticsStatusNotification", {"status": status})
    await charger.close()
    assert reply[2] == {}


@pytest.mark.parametrize(
    "status",
    ["Downloaded", "DownloadFailed", "Downloading", "Idle", "InstallationFailed", "Installing"],
)
async def test_firmware_status_notification_is_acknowledged(status):
    charger, _ = await accepted_charger()
    reply = await charger.call("FirmwareStatusNotification", {"status": status})
    await charger.close()
    assert reply[2] == {}
    logged = await OcppMessage.objects.filter(
        action="FirmwareStatusNotification", direction="in"
    ).aget()
    assert logged.payload == {"status": status}


@pytest.mark.parametrize(
    ("action", "payload"),
    [
        ("SecurityEventNotification", {"type": "StartupOfTheDevice", "timestamp": T0}),
        ("LogStatusNotification", {"status": "Uploaded", "requestId": 3}),
        ("SignedFirmwareStatusNotification", {"status": "Installed", "requestId": 4}),
    ],
)
async def test_security_whitepaper_notifications_are_acknowledged(action, payload):
    charger, _ = await accepted_charger()
    reply = await charger.call(action, payload)
    await charger.close()
    assert reply[2] == {}


async def test_sign_certificate_is_not_supported():
    charger, _ = await accepted_charger()
    reply = await charger.call("SignCertificate", {"csr": "-----BEGIN CSR-----"})
    await charger.close()
    assert reply[2] == "NotSupported"


# ---- lenient stations ----------------------------------------------------------------


async def test_lenient_station_may_send_unknown_fields_to_every_handler():
    charger, _ = await accepted_charger(lenient_validation=True)
    extra = {"vendorExtension": "yes"}
    started = await charger.call("StartTransaction", start_payload() | extra)
    tx_id = started[2]["transactionId"]
    calls = [
        ("Heartbeat", {}),
        ("StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Charging"}),
        ("Authorize", {"idTag": "TAG-1"}),
        ("MeterValues", {"connectorId": 1, "meterValue": [meter_value(T0, {"value": "1"})]}),
        ("StopTransaction", {"transactionId": tx_id, "meterStop": 2000, "timestamp": T1}),
        ("DataTransfer", {"vendorId": "x"}),
        ("DiagnosticsStatusNotification", {"status": "Idle"}),
        ("FirmwareStatusNotification", {"status": "Idle"}),
        ("BootNotification", {"chargePointVendor": "A", "chargePointModel": "B"}),
    ]
    replies = [await charger.call(action, payload | extra) for action, payload in calls]
    await charger.close()
    assert started[0] == 3
    assert [reply[0] for reply in replies] == [3] * len(calls), replies


async def test_strict_station_refuses_unknown_fields():
    charger, _ = await accepted_charger()
    reply = await charger.call("Heartbeat", {"vendorExtension": "yes"})
    await charger.close()
    assert reply[2] == "FormationViolation"


async def test_signed_data_longer_than_a_value_column_is_kept_whole():
    charger, _ = await accepted_charger()
    started = await charger.call("StartTransaction", start_payload())
    tx_id = started[2]["transactionId"]
    ocmf = 'OCMF|{"FV":"1.0","RD":[{"RV":"1.234","RU":"kWh"}]}|' + "s" * 4000
    reply = await charger.call(
        "MeterValues",
        {
            "connectorId": 1,
            "transactionId": tx_id,
            "meterValue": [
                meter_value(
                    T0,
                    {"value": ocmf, "format": "SignedData", "context": "Sample.Clock"},
                    {"value": "1234", "format": "Raw"},
                )
            ],
        },
    )
    await charger.close()
    assert reply[2] == {}
    signed, raw = [v async for v in MeterValue.objects.filter(transaction_id=tx_id).order_by("id")]
    assert (signed.signed_data, signed.value, signed.normalized_value) == (ocmf, "", None)
    assert (raw.signed_data, raw.value, raw.normalized_value) == ("", "1234", 1234.0)
