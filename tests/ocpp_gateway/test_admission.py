"""What a station that is not Accepted may send: the expectations our CALLs open."""

from __future__ import annotations

import pytest

from ocpp_gateway.admission import (
    MAX_OPEN_PER_ACTION,
    MAX_TRIGGERED_ADDRESSES,
    REPORT_PART_WINDOW,
    TRIGGER_WINDOW,
    Admission,
)

ACCEPTED = {"status": "Accepted"}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def admission(version: str, clock: Clock) -> Admission:
    return Admission(version, clock=clock)


def trigger(admission: Admission, payload: dict, answer: dict | None = ACCEPTED, uid="t1"):
    admission.expect(uid, "TriggerMessage", payload, answer_within=30)
    admission.answered(uid, answer)


def status_16(connector_id: int) -> dict:
    return {"connectorId": connector_id, "errorCode": "NoError", "status": "Available"}


def status_2x(evse_id: int, connector_id: int = 1) -> dict:
    return {
        "timestamp": "2026-01-01T00:00:00Z",
        "connectorStatus": "Available",
        "evseId": evse_id,
        "connectorId": connector_id,
    }


def part(seq_no: int, *, request_id: int = 7, tbc: bool = True) -> dict:
    payload = {"requestId": request_id, "generatedAt": "2026-01-01T00:00:00Z", "seqNo": seq_no}
    return payload | ({"tbc": True} if tbc else {})


# ---- whole-station and per-connector triggers -------------------------------------------


def test_a_16_whole_station_status_trigger_admits_each_connector_once(clock):
    a = admission("1.6", clock)
    trigger(a, {"requestedMessage": "StatusNotification"})

    assert [a.admit("StatusNotification", status_16(c)) for c in (0, 1, 2)] == [True] * 3
    assert not a.admit("StatusNotification", status_16(1))
    assert not a.expects("Heartbeat")


def test_a_16_trigger_for_one_connector_admits_only_that_one(clock):
    a = admission("1.6", clock)
    trigger(a, {"requestedMessage": "StatusNotification", "connectorId": 2})

    assert not a.admit("StatusNotification", status_16(1))
    assert a.admit("StatusNotification", status_16(2))
    assert not a.admit("StatusNotification", status_16(2))
    assert not a.expects("StatusNotification")


def test_a_16_whole_station_meter_values_trigger_admits_each_connector(clock):
    a = admission("1.6", clock)
    trigger(a, {"requestedMessage": "MeterValues"})
    values = {"meterValue": []}

    assert a.admit("MeterValues", values | {"connectorId": 1})
    assert a.admit("MeterValues", values | {"connectorId": 2})
    assert not a.admit("MeterValues", values | {"connectorId": 2})


@pytest.mark.parametrize("version", ["2.0.1", "2.1"])
def test_a_2x_whole_station_status_trigger_admits_each_connector_of_each_evse(clock, version):
    a = admission(version, clock)
    trigger(a, {"requestedMessage": "StatusNotification"})

    assert a.admit("StatusNotification", status_2x(1))
    assert a.admit("StatusNotification", status_2x(2))
    assert a.admit("StatusNotification", status_2x(2, connector_id=2))
    assert not a.admit("StatusNotification", status_2x(2))


def test_a_2x_trigger_for_an_evse_admits_its_connectors_only(clock):
    a = admission("2.0.1", clock)
    trigger(a, {"requestedMessage": "StatusNotification", "evse": {"id": 2}})

    assert not a.admit("StatusNotification", status_2x(1))
    assert a.admit("StatusNotification", status_2x(2, connector_id=1))
    assert a.admit("StatusNotification", status_2x(2, connector_id=2))


def test_a_2x_trigger_for_one_connector_admits_one_message(clock):
    a = admission("2.0.1", clock)
    trigger(a, {"requestedMessage": "StatusNotification", "evse": {"id": 2, "connectorId": 1}})

    assert a.admit("StatusNotification", status_2x(2, connector_id=1))
    assert not a.admit("StatusNotification", status_2x(2, connector_id=2))
    assert not a.expects("StatusNotification")


def test_a_2x_meter_values_trigger_is_per_evse(clock):
    a = admission("2.0.1", clock)
    trigger(a, {"requestedMessage": "MeterValues"})

    assert a.admit("MeterValues", {"evseId": 1, "meterValue": []})
    assert a.admit("MeterValues", {"evseId": 2, "meterValue": []})
    assert not a.admit("MeterValues", {"evseId": 1, "meterValue": []})


def test_a_message_without_a_connector_is_admitted_once_whatever_the_connector(clock):
    a = admission("1.6", clock)
    # The connector is irrelevant to a heartbeat and ignored (1.6 §5.17).
    trigger(a, {"requestedMessage": "Heartbeat", "connectorId": 1})

    assert a.admit("Heartbeat", {})
    assert not a.expects("Heartbeat")
    assert not a.admit("Heartbeat", {})


def test_a_2x_certificate_trigger_admits_sign_certificate(clock):
    a = admission("2.0.1", clock)
    trigger(a, {"requestedMessage": "SignChargingStationCertificate"})

    assert a.admit("SignCertificate", {"csr": "x"})


def test_made_up_connectors_are_bounded(clock):
    a = admission("1.6", clock)
    trigger(a, {"requestedMessage": "StatusNotification"})

    admitted = [a.admit("StatusNotification", status_16(c)) for c in range(100)]

    assert admitted.count(True) == MAX_TRIGGERED_ADDRESSES
    assert admitted[:MAX_TRIGGERED_ADDRESSES] == [True] * MAX_TRIGGERED_ADDRESSES


# ---- the answer and the window ------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [{"status": "Rejected"}, {"status": "NotImplemented"}, None, []],
    ids=["rejected", "not-implemented", "error-or-no-answer", "not-an-object"],
)
def test_a_trigger_the_charger_did_not_accept_admits_nothing(clock, answer):
    a = admission("1.6", clock)
    trigger(a, {"requestedMessage": "StatusNotification"}, answer=answer)

    assert not a.expects("StatusNotification")
    assert not a.admit("StatusNotification", status_16(1))


def test_the_triggered_message_may_come_before_the_trigger_is_answered(clock):
    a = admission("1.6", clock)
    a.expect("t1", "TriggerMessage", {"requestedMessage": "Heartbeat"}, answer_within=30)

    assert a.admit("Heartbeat", {})


def test_triggered_messages_are_admitted_within_the_window_only(clock):
    a = admission("1.6", clock)
    trigger(a, {"requestedMessage": "StatusNotification"})

    clock.now += TRIGGER_WINDOW - 1
    assert a.admit("StatusNotification", status_16(1))
    clock.now += 2
    assert not a.admit("StatusNotification", status_16(2))
    assert not a.expects("StatusNotification")


def test_unanswered_triggers_do_not_pile_up(clock):
    a = admission("1.6", clock)
    for i in range(MAX_OPEN_PER_ACTION + 5):
        a.expect(f"t{i}", "TriggerMessage", {"requestedMessage": "Heartbeat"}, answer_within=30)

    admitted = [a.admit("Heartbeat", {}) for _ in range(MAX_OPEN_PER_ACTION + 5)]

    assert admitted.count(True) == MAX_OPEN_PER_ACTION


def test_calls_that_ask_for_nothing_open_nothing(clock):
    a = admission("2.0.1", clock)
    a.expect("r1", "Reset", {"type": "Immediate"}, answer_within=30)
    a.answered("r1", ACCEPTED)
    a.answered("never-sent", ACCEPTED)

    assert a._open == {}
    assert a._unanswered == {}


# ---- reports --------------------------------------------------------------------------------


def report(a: Admission, action="GetBaseReport", request_id=7, answer: dict | None = ACCEPTED):
    payload = {"requestId": request_id, "reportBase": "FullInventory"}
    a.expect("g1", action, payload, answer_within=30)
    a.answered("g1", answer)


@pytest.mark.parametrize("action", ["GetBaseReport", "GetReport"])
def test_every_part_of_the_requested_report_is_admitted_until_the_last(clock, action):
    a = admission("2.0.1", clock)
    report(a, action)

    assert a.admit("NotifyReport", part(0))
    assert a.admit("NotifyReport", part(1))
    assert a.admit("NotifyReport", part(2, tbc=False))
    assert not a.expects("NotifyReport")
    assert not a.admit("NotifyReport", part(3))


def test_a_report_of_another_request_is_refused(clock):
    a = admission("2.1", clock)
    report(a, request_id=7)

    assert not a.admit("NotifyReport", part(0, request_id=8))
    assert a.admit("NotifyReport", part(0, request_id=7))


def test_report_parts_go_forward_and_the_latest_may_be_resent(clock):
    a = admission("2.0.1", clock)
    report(a)

    assert a.admit("NotifyReport", part(0))
    assert a.admit("NotifyReport", part(2))
    # The charger did not hear our answer to part 2 and sends it again.
    assert a.admit("NotifyReport", part(2))
    assert not a.admit("NotifyReport", part(1))


def test_each_part_opens_a_window_for_the_next(clock):
    a = admission("2.0.1", clock)
    report(a)

    for seq_no in range(5):
        clock.now += REPORT_PART_WINDOW - 1
        assert a.admit("NotifyReport", part(seq_no))
    clock.now += REPORT_PART_WINDOW + 1
    assert not a.admit("NotifyReport", part(5))


@pytest.mark.parametrize("status", ["Rejected", "NotSupported", "EmptyResultSet"])
def test_a_report_the_charger_will_not_send_admits_nothing(clock, status):
    a = admission("2.0.1", clock)
    report(a, answer={"status": status})

    assert not a.admit("NotifyReport", part(0))
