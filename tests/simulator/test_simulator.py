"""The charger simulator answers the backend's calls with schema-valid results.

No server here: the simulator talks to a fake connection. The `ocpp` library validates
every result the simulator sends against the version's schema, so a malformed answer
fails these tests. The end-to-end tests (tests/e2e) run it against the real server.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import random

import pytest

from simulator import (
    SIMULATORS,
    Backoff,
    SimulatorBase,
    SimulatorOptions,
    StationState,
    TransactionState,
    run_simulator,
)


class FakeConnection:
    """Collects what the simulator sends; nothing ever arrives."""

    def __init__(self) -> None:
        self.sent: list[list] = []
        self.frame_sent = asyncio.Event()

    async def send(self, message: str) -> None:
        self.sent.append(json.loads(message))
        self.frame_sent.set()

    async def recv(self) -> str:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


def simulator(version: str = "1.6", **options) -> tuple[SimulatorBase, FakeConnection]:
    connection = FakeConnection()
    sim = SIMULATORS[version](
        SimulatorOptions(cbid="SIM-1", version=version, response_timeout=1, **options),
        connection,
        state=StationState(),
        output=lambda line: None,
    )
    sim.accepted.set()
    return sim, connection


async def answer(sim: SimulatorBase, connection: FakeConnection, action: str, payload: dict):
    await sim.route_message(json.dumps([2, "server-1", action, payload]))
    reply = connection.sent[0]
    assert reply[:2] == [3, "server-1"], reply
    return reply[2]


CALLS_16 = [
    ("Reset", {"type": "Soft"}, {"status": "Accepted"}),
    ("TriggerMessage", {"requestedMessage": "Heartbeat"}, {"status": "Accepted"}),
    ("ChangeConfiguration", {"key": "HeartbeatInterval", "value": "60"}, {"status": "Accepted"}),
    ("ChangeConfiguration", {"key": "NumberOfConnectors", "value": "9"}, {"status": "Rejected"}),
    ("ChangeConfiguration", {"key": "NoSuchKey", "value": "1"}, {"status": "NotSupported"}),
    ("ChangeAvailability", {"connectorId": 1, "type": "Inoperative"}, {"status": "Accepted"}),
    ("ChangeAvailability", {"connectorId": 7, "type": "Inoperative"}, {"status": "Rejected"}),
    ("UnlockConnector", {"connectorId": 1}, {"status": "Unlocked"}),
    ("RemoteStartTransaction", {"idTag": "TAG-1", "connectorId": 1}, {"status": "Accepted"}),
    ("RemoteStopTransaction", {"transactionId": 99}, {"status": "Rejected"}),
    ("ClearCache", {}, {"status": "Accepted"}),
    ("DataTransfer", {"vendorId": "acme"}, {"status": "UnknownVendorId"}),
]


@pytest.mark.parametrize(
    ("action", "payload", "expected"), CALLS_16, ids=[c[0] + str(i) for i, c in enumerate(CALLS_16)]
)
async def test_the_16_simulator_answers(action, payload, expected):
    sim, connection = simulator("1.6")

    assert await answer(sim, connection, action, payload) == expected
    await sim.cancel_tasks()


async def test_the_16_simulator_reports_its_configuration():
    sim, connection = simulator("1.6")

    result = await answer(
        sim, connection, "GetConfiguration", {"key": ["HeartbeatInterval", "Nope"]}
    )

    assert result == {
        "configurationKey": [{"key": "HeartbeatInterval", "readonly": False, "value": "300"}],
        "unknownKey": ["Nope"],
    }


async def test_a_changed_heartbeat_interval_is_used():
    sim, connection = simulator("1.6")

    await answer(sim, connection, "ChangeConfiguration", {"key": "HeartbeatInterval", "value": "7"})

    assert sim.heartbeat_interval == 7


async def test_a_triggered_boot_wakes_a_pending_station():
    sim, connection = simulator("1.6")
    sim.accepted.clear()

    await answer(sim, connection, "TriggerMessage", {"requestedMessage": "BootNotification"})

    assert sim.boot_now.is_set()


async def test_a_remote_stop_of_the_running_transaction_is_accepted():
    sim, connection = simulator("1.6")
    sim.transaction = TransactionState(connector_id=1, id_tag="T", meter_start=0, transaction_id=5)

    result = await answer(sim, connection, "RemoteStopTransaction", {"transactionId": 5})

    assert result == {"status": "Accepted"}
    assert sim.transaction.stop_requested.is_set()
    assert sim.transaction.stop_reason == "Remote"


CALLS_201 = [
    ("Reset", {"type": "Immediate"}, {"status": "Accepted"}),
    ("TriggerMessage", {"requestedMessage": "Heartbeat"}, {"status": "Accepted"}),
    ("TriggerMessage", {"requestedMessage": "SignV2GCertificate"}, {"status": "NotImplemented"}),
    ("ChangeAvailability", {"operationalStatus": "Inoperative"}, {"status": "Accepted"}),
    ("UnlockConnector", {"evseId": 1, "connectorId": 1}, {"status": "Unlocked"}),
    ("UnlockConnector", {"evseId": 9, "connectorId": 1}, {"status": "UnknownConnector"}),
    (
        "RequestStartTransaction",
        {"idToken": {"idToken": "TAG-1", "type": "ISO14443"}, "remoteStartId": 3},
        {"status": "Accepted"},
    ),
    ("RequestStopTransaction", {"transactionId": "nope"}, {"status": "Rejected"}),
    ("ClearCache", {}, {"status": "Accepted"}),
    ("DataTransfer", {"vendorId": "acme"}, {"status": "UnknownVendorId"}),
]


@pytest.mark.parametrize(
    ("action", "payload", "expected"),
    CALLS_201,
    ids=[c[0] + str(i) for i, c in enumerate(CALLS_201)],
)
@pytest.mark.parametrize("version", ["2.0.1", "2.1"])
async def test_the_2x_simulator_answers(version, action, payload, expected):
    sim, connection = simulator(version)

    assert await answer(sim, connection, action, payload) == expected
    await sim.cancel_tasks()


async def test_the_201_simulator_gets_and_sets_variables():
    sim, connection = simulator("2.0.1")
    heartbeat = {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}
    unknown = {"component": {"name": "Nope"}, "variable": {"name": "Nothing"}}

    result = await answer(
        sim,
        connection,
        "SetVariables",
        {
            "setVariableData": [
                heartbeat | {"attributeValue": "42"},
                unknown | {"attributeValue": "1"},
            ]
        },
    )
    assert [r["attributeStatus"] for r in result["setVariableResult"]] == [
        "Accepted",
        "UnknownComponent",
    ]
    connection.sent.clear()
    result = await answer(sim, connection, "GetVariables", {"getVariableData": [heartbeat]})
    assert result["getVariableResult"] == [
        heartbeat | {"attributeStatus": "Accepted", "attributeValue": "42"}
    ]
    assert sim.heartbeat_interval == 42


async def test_the_201_simulator_sends_its_report_after_accepting_get_base_report():
    sim, connection = simulator("2.0.1")

    result = await answer(
        sim, connection, "GetBaseReport", {"requestId": 8, "reportBase": "FullInventory"}
    )
    async with asyncio.timeout(2):
        while len(connection.sent) < 2:
            connection.frame_sent.clear()
            await connection.frame_sent.wait()

    assert result == {"status": "Accepted"}
    kind, _, action, report = connection.sent[1]
    assert (kind, action, report["requestId"]) == (2, "NotifyReport", 8)
    names = {row["variable"]["name"] for row in report["reportData"]}
    assert {"HeartbeatInterval", "Model", "VendorName"} <= names
    await sim.cancel_tasks()


async def test_run_simulator_gives_up_at_once_when_nothing_listens():
    options = SimulatorOptions(cbid="SIM-1", url="ws://127.0.0.1:9/ocpp", duration=5)

    with pytest.raises(OSError):
        await run_simulator(options, output=lambda line: None)


def test_options_refuse_an_unknown_version():
    with pytest.raises(ValueError, match="Unsupported OCPP version"):
        SimulatorOptions(cbid="SIM-1", version="1.5")


def test_the_cbid_is_percent_encoded_in_the_url():
    options = SimulatorOptions(cbid="CP:1|A", url="ws://host/ocpp/")

    assert options.station_url == "ws://host/ocpp/CP%3A1%7CA"


# ---- transaction events: reordered, resent, signed -------------------------------------


class AnsweringConnection(FakeConnection):
    """A backend that answers every CALL of the simulator at once, as the real one would."""

    ANSWERS = {
        "StartTransaction": {"transactionId": 7, "idTagInfo": {"status": "Accepted"}},
        "TransactionEvent": {},
        "StatusNotification": {},
        "MeterValues": {},
        "StopTransaction": {},
        "NotifyReport": {},
        "Heartbeat": {"currentTime": "2026-01-01T00:00:00Z"},
    }

    def __init__(self) -> None:
        super().__init__()
        self.inbox: asyncio.Queue[str] = asyncio.Queue()

    async def send(self, message: str) -> None:
        await super().send(message)
        frame = json.loads(message)
        if frame[0] == 2:
            await self.inbox.put(json.dumps([3, frame[1], self.ANSWERS[frame[2]]]))

    async def recv(self) -> str:
        return await self.inbox.get()

    def calls(self, action: str) -> list[dict]:
        return [frame[3] for frame in self.sent if frame[0] == 2 and frame[2] == action]


async def one_transaction(version: str, **options) -> AnsweringConnection:
    """Start, two meter values and the stop, through a simulator with `options`."""
    connection = AnsweringConnection()
    sim = SIMULATORS[version](
        SimulatorOptions(cbid="SIM-1", version=version, response_timeout=1, **options),
        connection,
        state=StationState(),
        output=lambda line: None,
    )
    reader = asyncio.create_task(sim.start())
    try:
        tx = TransactionState(connector_id=1, id_tag="TAG-1", meter_start=1000)
        if version != "1.6":
            tx.transaction_id = "TX-SIM"
        sim.transaction = tx
        await sim.start_transaction(tx)
        for _ in range(2):
            sim.charge(60)
            await sim.send_meter_values(tx)
        await sim.stop_transaction(tx)
    finally:
        reader.cancel()
    return connection


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        ("live", [0, 1, 2, 3]),
        ("queued", [0, 1, 2, 3]),
        ("reversed", [3, 2, 1, 0]),
        ("shuffled", None),  # the seed's order, whatever it is, with each event once
    ],
)
async def test_the_201_simulator_sends_a_transactions_events_in_the_order_asked(order, expected):
    connection = await one_transaction("2.0.1", event_order=order, seed=4)
    seq_nos = [event["seqNo"] for event in connection.calls("TransactionEvent")]
    if expected is None:
        assert sorted(seq_nos) == [0, 1, 2, 3] and seq_nos != [0, 1, 2, 3]
    else:
        assert seq_nos == expected


async def test_the_201_simulator_resends_every_event_and_signs_the_register():
    connection = await one_transaction("2.0.1", event_order="reversed", resend=True, signed=True)
    events = connection.calls("TransactionEvent")
    assert [event["seqNo"] for event in events] == [3, 3, 2, 2, 1, 1, 0, 0]
    register = events[-1]["meterValue"][0]["sampledValue"][0]
    signed = register["signedMeterValue"]
    assert (signed["encodingMethod"], signed["signingMethod"]) == ("OCMF", "ECDSA-secp256r1-SHA256")
    assert base64.b64decode(signed["signedMeterData"]).startswith(b"OCMF|")
    assert register["context"] == "Transaction.Begin"


async def test_the_16_simulator_resends_its_transaction_messages_and_signs_the_register():
    connection = await one_transaction("1.6", resend=True, signed=True)
    assert len(connection.calls("StartTransaction")) == 2
    assert len(connection.calls("MeterValues")) == 4
    stops = connection.calls("StopTransaction")
    assert len(stops) == 2 and stops[0] == stops[1]
    signed = stops[0]["transactionData"][0]["sampledValue"][0]
    assert signed["format"] == "SignedData" and signed["value"].startswith("OCMF|")
    assert signed["context"] == "Transaction.End"


@pytest.mark.parametrize(
    "options",
    [{"version": "1.6", "event_order": "reversed"}, {"version": "2.0.1", "event_order": "later"}],
)
def test_options_refuse_an_order_the_version_cannot_have(options):
    with pytest.raises(ValueError):
        SimulatorOptions(cbid="CP-1", **options)


# ---- a password from the backend ----------------------------------------------------------

NEW_PASSWORD = "new-charger-secret-0123"  # 23 characters: within 16..40


def basic_auth(options: SimulatorOptions) -> str:
    scheme, token = options.headers["Authorization"].split()
    assert scheme == "Basic"
    return base64.b64decode(token).decode()


async def test_the_16_simulator_takes_a_new_authorization_key_for_its_next_connection():
    sim, connection = simulator("1.6", password="old-charger-secret-99")
    value = NEW_PASSWORD.encode().hex()  # 1.6 sends the key hex-encoded

    result = await answer(
        sim, connection, "ChangeConfiguration", {"key": "AuthorizationKey", "value": value}
    )

    assert result == {"status": "Accepted"}
    # The options are what the next connection's handshake is made of.
    assert basic_auth(sim.options) == f"SIM-1:{NEW_PASSWORD}"


@pytest.mark.parametrize(
    "value",
    ["not-hex-at-all", b"short".hex(), ("x" * 41).encode().hex(), "fffe"],
    ids=["not hex", "too short", "too long", "not text"],
)
async def test_the_16_simulator_rejects_a_bad_authorization_key(value):
    sim, connection = simulator("1.6", password="old-charger-secret-99")

    result = await answer(
        sim, connection, "ChangeConfiguration", {"key": "AuthorizationKey", "value": value}
    )

    assert result == {"status": "Rejected"}
    assert sim.options.password == "old-charger-secret-99"


async def test_the_16_simulator_never_shows_its_authorization_key():
    sim, connection = simulator("1.6")
    value = NEW_PASSWORD.encode().hex()
    await answer(
        sim, connection, "ChangeConfiguration", {"key": "AuthorizationKey", "value": value}
    )
    connection.sent.clear()

    result = await answer(sim, connection, "GetConfiguration", {})

    assert "AuthorizationKey" not in json.dumps(result)
    assert NEW_PASSWORD not in json.dumps(result) and value not in json.dumps(result)


PASSWORD_VARIABLE = {
    "component": {"name": "SecurityCtrlr"},
    "variable": {"name": "BasicAuthPassword"},
}


async def test_the_201_simulator_takes_a_new_basic_auth_password_for_its_next_connection():
    sim, connection = simulator("2.0.1", password="old-charger-secret-99")

    result = await answer(
        sim,
        connection,
        "SetVariables",
        {"setVariableData": [PASSWORD_VARIABLE | {"attributeValue": NEW_PASSWORD}]},
    )

    assert result["setVariableResult"] == [PASSWORD_VARIABLE | {"attributeStatus": "Accepted"}]
    assert basic_auth(sim.options) == f"SIM-1:{NEW_PASSWORD}"
    connection.sent.clear()
    read = await answer(sim, connection, "GetVariables", {"getVariableData": [PASSWORD_VARIABLE]})
    assert read["getVariableResult"] == [PASSWORD_VARIABLE | {"attributeStatus": "Rejected"}]


async def test_the_201_simulator_rejects_a_short_basic_auth_password():
    sim, connection = simulator("2.0.1", password="old-charger-secret-99")

    result = await answer(
        sim,
        connection,
        "SetVariables",
        {"setVariableData": [PASSWORD_VARIABLE | {"attributeValue": "short"}]},
    )

    assert result["setVariableResult"][0]["attributeStatus"] == "Rejected"
    assert sim.options.password == "old-charger-secret-99"


# ---- reconnecting -------------------------------------------------------------------------


def test_reconnection_waits_double_up_to_a_limit_with_some_randomness():
    options = SimulatorOptions(
        cbid="SIM-1", reconnect_delay=2, reconnect_random_range=1, reconnect_doublings=3
    )
    backoff = Backoff(options, rng=random.Random(7))

    waits = [backoff.next_delay() for _ in range(6)]

    for wait, base in zip(waits, [2, 4, 8, 16, 16, 16], strict=True):
        assert base <= wait <= base + 1
    backoff.reset()
    assert 2 <= backoff.next_delay() <= 3


def test_the_command_line_passes_exit_on_close(monkeypatch):
    from django.core.management import call_command

    from simulator.management.commands import simulate_charger

    seen: list[SimulatorOptions] = []

    async def fake_run(options, **kwargs):
        seen.append(options)

    monkeypatch.setattr(simulate_charger, "run_simulator", fake_run)

    call_command("simulate_charger", "SIM-1", "--exit-on-close", stdout=io.StringIO())
    call_command("simulate_charger", "SIM-2", stdout=io.StringIO())

    assert [options.exit_on_close for options in seen] == [True, False]


# ---- staying Pending: multi-part reports, triggered messages of every connector ----------


async def running(version: str, **options) -> tuple[SimulatorBase, AnsweringConnection]:
    connection = AnsweringConnection()
    sim = SIMULATORS[version](
        SimulatorOptions(cbid="SIM-1", version=version, response_timeout=1, **options),
        connection,
        state=StationState(),
        output=lambda line: None,
    )
    sim.spawn(sim.start(), "receive")
    return sim, connection


async def until(connection: FakeConnection, check, timeout: float = 3) -> None:
    """Wait until `check()` holds, looking again after each frame the simulator sends."""
    async with asyncio.timeout(timeout):
        while not check():
            connection.frame_sent.clear()
            await connection.frame_sent.wait()


def test_a_station_staying_pending_has_two_connectors_and_three_report_parts():
    options = SimulatorOptions(cbid="SIM-1", version="2.0.1", stay_pending=True)

    assert (options.connectors, options.parts_per_report) == (2, 3)
    assert SimulatorOptions(cbid="SIM-1", version="2.0.1").parts_per_report == 1
    with pytest.raises(ValueError, match="at least one part"):
        SimulatorOptions(cbid="SIM-1", report_parts=0)


@pytest.mark.parametrize(
    ("version", "options", "parts"),
    [
        ("2.0.1", {"stay_pending": True}, 3),
        ("2.1", {"stay_pending": True}, 3),
        ("2.0.1", {"report_parts": 2}, 2),
    ],
)
async def test_a_get_base_report_is_answered_in_parts(version, options, parts):
    sim, connection = await running(version, **options)
    one_part = SIMULATORS[version](
        SimulatorOptions(cbid="SIM-2", version=version), FakeConnection(), output=print
    ).report_data()

    await sim.route_message(
        json.dumps([2, "g-1", "GetBaseReport", {"requestId": 5, "reportBase": "FullInventory"}])
    )
    await until(connection, lambda: len(connection.calls("NotifyReport")) == parts)
    await asyncio.sleep(0.05)
    await sim.cancel_tasks()

    reports = connection.calls("NotifyReport")
    assert [(r["requestId"], r["seqNo"], r.get("tbc")) for r in reports] == [
        (5, n, n < parts - 1) for n in range(parts)
    ]
    rows = [row for report in reports for row in report["reportData"]]
    assert len(rows) == len(one_part)


async def test_a_station_staying_pending_boots_again_only_when_asked():
    sim, connection = await running("1.6", stay_pending=True)
    pending = {"status": "Pending", "interval": 1, "currentTime": "2026-01-01T00:00:00Z"}
    accepted = pending | {"status": "Accepted", "interval": 300}
    answers = [pending, accepted]
    original_send = connection.send

    async def send(message: str) -> None:
        frame = json.loads(message)
        if frame[0] == 2 and frame[2] == "BootNotification":
            connection.sent.append(frame)
            await connection.inbox.put(json.dumps([3, frame[1], answers.pop(0)]))
            return
        await original_send(message)

    connection.send = send
    stop = asyncio.Event()
    booting = asyncio.create_task(sim.boot_until_accepted(stop))
    await asyncio.sleep(1.5)  # past the interval: a station not staying Pending would boot
    assert len(connection.calls("BootNotification")) == 1

    await sim.route_message(
        json.dumps([2, "t-1", "TriggerMessage", {"requestedMessage": "BootNotification"}])
    )
    async with asyncio.timeout(3):
        assert await booting
    await sim.cancel_tasks()
    assert sim.registration_status == "Accepted"


@pytest.mark.parametrize(
    ("version", "expected"),
    [("1.6", [0, 1, 2]), ("2.0.1", [1, 2]), ("2.1", [1, 2])],
)
async def test_a_whole_station_status_trigger_reports_every_connector(version, expected):
    sim, connection = await running(version, stay_pending=True)
    sim.accepted.clear()

    await sim.route_message(
        json.dumps([2, "t-1", "TriggerMessage", {"requestedMessage": "StatusNotification"}])
    )
    await until(connection, lambda: len(connection.calls("StatusNotification")) == len(expected))
    await sim.cancel_tasks()

    key = "connectorId" if version == "1.6" else "evseId"
    assert [call[key] for call in connection.calls("StatusNotification")] == expected


@pytest.mark.parametrize(("version", "key"), [("1.6", "connectorId"), ("2.0.1", "evseId")])
async def test_a_whole_station_meter_values_trigger_sends_every_connectors(version, key):
    sim, connection = await running(version)

    await sim.route_message(
        json.dumps([2, "t-1", "TriggerMessage", {"requestedMessage": "MeterValues"}])
    )
    await until(connection, lambda: len(connection.calls("MeterValues")) == 2)
    await sim.cancel_tasks()

    assert [call[key] for call in connection.calls("MeterValues")] == [1, 2]


# ---- local authorization list -----------------------------------------------------------


def _local_list_call(version: str, list_version: int, update_type: str, entries) -> tuple:
    if version == "1.6":
        items = [
            {"idTag": tag} | ({"idTagInfo": {"status": status}} if status else {})
            for tag, status in entries
        ]
        return "SendLocalList", {
            "listVersion": list_version,
            "updateType": update_type,
            "localAuthorizationList": items,
        }
    items = [
        {"idToken": {"idToken": tag, "type": "ISO14443"}}
        | ({"idTokenInfo": {"status": status}} if status else {})
        for tag, status in entries
    ]
    return "SendLocalList", {
        "versionNumber": list_version,
        "updateType": update_type,
        "localAuthorizationList": items,
    }


@pytest.mark.parametrize("version", ["1.6", "2.0.1", "2.1"])
async def test_the_simulator_keeps_a_local_list_with_its_version(version):
    sim, connection = simulator(version)
    full = _local_list_call(version, 1, "Full", [("A", "Accepted"), ("B", "Blocked")])
    assert await answer(sim, connection, *full) == {"status": "Accepted"}
    connection.sent.clear()
    stale = _local_list_call(version, 1, "Differential", [("C", "Accepted")])
    assert await answer(sim, connection, *stale) == {"status": "VersionMismatch"}
    connection.sent.clear()
    diff = _local_list_call(version, 2, "Differential", [("C", "Accepted"), ("a", None)])
    assert await answer(sim, connection, *diff) == {"status": "Accepted"}
    assert sim.state.local_list == {"b": "Blocked", "c": "Accepted"}
    connection.sent.clear()
    key = "listVersion" if version == "1.6" else "versionNumber"
    assert await answer(sim, connection, "GetLocalListVersion", {}) == {key: 2}
