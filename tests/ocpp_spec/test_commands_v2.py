"""Panel commands mapped to OCPP 2.0.1 (and 2.1) CALLs: payloads and answers."""

from __future__ import annotations

import pytest
from jsonschema.exceptions import best_match
from ocpp.messages import get_validator

from ocpp_spec.commands import build_call, interpret_result

CASES = [
    ("reset", {"type": "hard"}, "Reset", {"type": "Immediate"}),
    ("reset", {"type": "soft"}, "Reset", {"type": "OnIdle"}),
    (
        "trigger_message",
        {"message": "BootNotification", "connector_id": None, "evse_id": None},
        "TriggerMessage",
        {"requestedMessage": "BootNotification"},
    ),
    (
        "trigger_message",
        {"message": "StatusNotification", "connector_id": 2, "evse_id": 1},
        "TriggerMessage",
        {"requestedMessage": "StatusNotification", "evse": {"id": 1, "connectorId": 2}},
    ),
    (
        "trigger_message",
        {"message": "Heartbeat", "connector_id": None, "evse_id": None},
        "TriggerMessage",
        {"requestedMessage": "Heartbeat"},
    ),
    (
        "trigger_message",
        {"message": "MeterValues", "connector_id": None, "evse_id": 2},
        "TriggerMessage",
        {"requestedMessage": "MeterValues", "evse": {"id": 2}},
    ),
    (
        "get_configuration",
        {"keys": ["OCPPCommCtrlr.HeartbeatInterval", "AuthCtrlr.Enabled"]},
        "GetVariables",
        {
            "getVariableData": [
                {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}},
                {"component": {"name": "AuthCtrlr"}, "variable": {"name": "Enabled"}},
            ]
        },
    ),
    (
        "change_configuration",
        {"key": "OCPPCommCtrlr.HeartbeatInterval", "value": "600"},
        "SetVariables",
        {
            "setVariableData": [
                {
                    "attributeValue": "600",
                    "component": {"name": "OCPPCommCtrlr"},
                    "variable": {"name": "HeartbeatInterval"},
                }
            ]
        },
    ),
    (
        "change_availability",
        {"connector_id": 0, "evse_id": None, "operative": False},
        "ChangeAvailability",
        {"operationalStatus": "Inoperative"},
    ),
    (
        "change_availability",
        {"connector_id": None, "evse_id": 1, "operative": True},
        "ChangeAvailability",
        {"operationalStatus": "Operative", "evse": {"id": 1}},
    ),
    (
        "change_availability",
        {"connector_id": 2, "evse_id": 1, "operative": True},
        "ChangeAvailability",
        {"operationalStatus": "Operative", "evse": {"id": 1, "connectorId": 2}},
    ),
    (
        "unlock_connector",
        {"connector_id": 1, "evse_id": 2},
        "UnlockConnector",
        {"evseId": 2, "connectorId": 1},
    ),
    (
        "remote_stop",
        {"transaction_id": "5f1b9e0a-5c1d-4b8e-9a7e-0c6f3d2a1b00"},
        "RequestStopTransaction",
        {"transactionId": "5f1b9e0a-5c1d-4b8e-9a7e-0c6f3d2a1b00"},
    ),
    ("clear_cache", {}, "ClearCache", {}),
    (
        "send_local_list",
        {"version": 4, "update_type": "Full", "entries": []},
        "SendLocalList",
        {"versionNumber": 4, "updateType": "Full"},
    ),
    ("get_local_list_version", {}, "GetLocalListVersion", {}),
]


@pytest.mark.parametrize("version", ["2.0.1", "2.1"])
@pytest.mark.parametrize(("kind", "params", "action", "payload"), CASES)
def test_command_builds_a_valid_call(version, kind, params, action, payload):
    assert build_call(version, kind, params) == (action, payload)
    assert best_match(get_validator(2, action, version).iter_errors(payload)) is None


@pytest.mark.parametrize("version", ["2.0.1", "2.1"])
def test_remote_start_sends_a_central_token_and_a_remote_start_id(version):
    action, payload = build_call(
        version, "remote_start", {"id_tag": "CARD-1", "connector_id": None, "evse_id": 1}
    )
    assert action == "RequestStartTransaction"
    assert payload["idToken"] == {"idToken": "CARD-1", "type": "Central"}
    assert payload["evseId"] == 1
    assert isinstance(payload["remoteStartId"], int) and payload["remoteStartId"] > 0
    assert best_match(get_validator(2, action, version).iter_errors(payload)) is None


@pytest.mark.parametrize("version", ["2.0.1", "2.1"])
@pytest.mark.parametrize(
    "report_base", ["FullInventory", "ConfigurationInventory", "SummaryInventory"]
)
def test_get_base_report_carries_a_request_id(version, report_base):
    action, payload = build_call(version, "get_base_report", {"report_base": report_base})
    assert action == "GetBaseReport"
    assert payload["reportBase"] == report_base
    assert isinstance(payload["requestId"], int)
    assert best_match(get_validator(2, action, version).iter_errors(payload)) is None


def test_get_configuration_without_keys_asks_for_the_configuration_report():
    action, payload = build_call("2.0.1", "get_configuration", {"keys": []})
    assert action == "GetBaseReport"
    assert payload["reportBase"] == "ConfigurationInventory"


@pytest.mark.parametrize(
    ("kind", "params"),
    [
        ("reserve_now", {}),
        ("reset", {"type": "sideways"}),
        ("trigger_message", {"message": "DiagnosticsStatusNotification"}),
        ("get_configuration", {"keys": ["HeartbeatInterval"]}),  # 1.6 key, no component
        ("change_configuration", {"key": "OCPPCommCtrlr.HeartbeatInterval"}),
        ("change_availability", {"connector_id": 2, "evse_id": None, "operative": True}),
        ("change_availability", {"connector_id": 0}),
        ("unlock_connector", {"connector_id": 1, "evse_id": None}),
        ("remote_start", {"id_tag": ""}),
        ("remote_start", {"id_tag": "x" * 37}),
        ("remote_stop", {"transaction_id": ""}),
        ("get_base_report", {"report_base": "Everything"}),
        ("unlock_connector", {"connector_id": "one", "evse_id": 1}),
    ],
)
def test_commands_2x_cannot_express_raise_value_error(kind, params):
    with pytest.raises(ValueError):
        build_call("2.0.1", kind, params)


@pytest.mark.parametrize(
    ("kind", "response", "expected"),
    [
        ("reset", {"status": "Accepted"}, "accepted"),
        ("reset", {"status": "Scheduled"}, "accepted"),
        ("reset", {"status": "Rejected"}, "rejected"),
        ("trigger_message", {"status": "NotImplemented"}, "rejected"),
        ("unlock_connector", {"status": "Unlocked"}, "accepted"),
        ("unlock_connector", {"status": "UnlockFailed"}, "rejected"),
        ("change_availability", {"status": "Scheduled"}, "accepted"),
        ("remote_start", {"status": "Accepted", "transactionId": "TX-9"}, "accepted"),
        ("remote_stop", {"status": "Rejected"}, "rejected"),
        ("clear_cache", {"status": "Accepted"}, "accepted"),
        ("get_base_report", {"status": "NotSupported"}, "rejected"),
        ("get_base_report", {"status": "EmptyResultSet"}, "accepted"),
        (
            "get_configuration",
            {
                "getVariableResult": [
                    {
                        "attributeStatus": "Accepted",
                        "attributeValue": "300",
                        "component": {"name": "OCPPCommCtrlr"},
                        "variable": {"name": "HeartbeatInterval"},
                    }
                ]
            },
            "accepted",
        ),
        (
            "get_configuration",
            {
                "getVariableResult": [
                    {
                        "attributeStatus": "UnknownVariable",
                        "component": {"name": "X"},
                        "variable": {"name": "Y"},
                    }
                ]
            },
            "rejected",
        ),
        (
            "change_configuration",
            {
                "setVariableResult": [
                    {
                        "attributeStatus": "RebootRequired",
                        "component": {"name": "OCPPCommCtrlr"},
                        "variable": {"name": "HeartbeatInterval"},
                    }
                ]
            },
            "accepted",
        ),
        ("change_configuration", {"setVariableResult": []}, "error"),
        ("reset", {}, "error"),
        ("reset", None, "error"),
    ],
)
def test_answers_are_interpreted(kind, response, expected):
    assert interpret_result("2.0.1", kind, response) == expected


def test_the_version_neutral_entry_point_uses_this_module_for_2x():
    assert build_call("2.0.1", "reset", {"type": "hard"}) == ("Reset", {"type": "Immediate"})
    assert build_call("2.1", "clear_cache", {}) == ("ClearCache", {})
    assert interpret_result("2.0.1", "reset", {"status": "Rejected"}) == "rejected"
