"""Version-neutral commands become schema-valid OCPP 1.6 CALLs, and answers become statuses."""

from __future__ import annotations

import pytest
from ocpp.messages import get_validator

from ocpp_spec.commands import (
    COMMAND_KINDS,
    KINDS_ALLOWED_WHEN_PENDING,
    CommandNotSupported,
    build_call,
    interpret_result,
    kind_for_action,
)

V16_CALLS = [
    ("reset", {"type": "soft"}, "Reset", {"type": "Soft"}),
    ("reset", {"type": "hard"}, "Reset", {"type": "Hard"}),
    (
        "trigger_message",
        {"message": "BootNotification", "connector_id": None, "evse_id": None},
        "TriggerMessage",
        {"requestedMessage": "BootNotification"},
    ),
    (
        "trigger_message",
        {"message": "StatusNotification", "connector_id": 2, "evse_id": None},
        "TriggerMessage",
        {"requestedMessage": "StatusNotification", "connectorId": 2},
    ),
    (
        "trigger_message",
        {"message": "Heartbeat"},
        "TriggerMessage",
        {"requestedMessage": "Heartbeat"},
    ),
    (
        "trigger_message",
        {"message": "MeterValues", "connector_id": 1},
        "TriggerMessage",
        {"requestedMessage": "MeterValues", "connectorId": 1},
    ),
    ("get_configuration", {"keys": []}, "GetConfiguration", {}),
    (
        "get_configuration",
        {"keys": ["HeartbeatInterval", " "]},
        "GetConfiguration",
        {"key": ["HeartbeatInterval"]},
    ),
    (
        "change_configuration",
        {"key": "HeartbeatInterval", "value": 300},
        "ChangeConfiguration",
        {"key": "HeartbeatInterval", "value": "300"},
    ),
    (
        "change_configuration",
        {"key": "AuthorizeRemoteTxRequests", "value": True},
        "ChangeConfiguration",
        {"key": "AuthorizeRemoteTxRequests", "value": "true"},
    ),
    (
        "change_availability",
        {"connector_id": 0, "evse_id": None, "operative": False},
        "ChangeAvailability",
        {"connectorId": 0, "type": "Inoperative"},
    ),
    (
        "change_availability",
        {"connector_id": "2", "operative": True},
        "ChangeAvailability",
        {"connectorId": 2, "type": "Operative"},
    ),
    (
        "unlock_connector",
        {"connector_id": 1, "evse_id": None},
        "UnlockConnector",
        {"connectorId": 1},
    ),
    (
        "remote_start",
        {"id_tag": "CARD-1", "connector_id": 1, "evse_id": None},
        "RemoteStartTransaction",
        {"idTag": "CARD-1", "connectorId": 1},
    ),
    (
        "remote_start",
        {"id_tag": "CARD-1", "connector_id": None},
        "RemoteStartTransaction",
        {"idTag": "CARD-1"},
    ),
    ("remote_stop", {"transaction_id": "42"}, "RemoteStopTransaction", {"transactionId": 42}),
    ("clear_cache", {}, "ClearCache", {}),
    (
        "send_local_list",
        {
            "version": 2,
            "update_type": "Full",
            "entries": [{"id_tag": "CARD-1", "status": "Blocked", "expiry": None, "parent": ""}],
        },
        "SendLocalList",
        {
            "listVersion": 2,
            "updateType": "Full",
            "localAuthorizationList": [{"idTag": "CARD-1", "idTagInfo": {"status": "Blocked"}}],
        },
    ),
    ("get_local_list_version", {}, "GetLocalListVersion", {}),
]


@pytest.mark.parametrize(("kind", "params", "action", "payload"), V16_CALLS)
def test_v16_call_is_built_and_valid_against_the_library_schema(kind, params, action, payload):
    built_action, built_payload = build_call("1.6", kind, params)

    assert (built_action, built_payload) == (action, payload)
    validator = get_validator(2, built_action, "1.6")
    assert list(validator.iter_errors(built_payload)) == []


def test_every_v16_kind_is_covered():
    covered = {kind for kind, *_ in V16_CALLS}
    assert covered == set(COMMAND_KINDS) - {"get_base_report"}


@pytest.mark.parametrize(
    ("kind", "params", "message"),
    [
        ("reset", {"type": "warm"}, "soft or hard"),
        ("reset", {}, "needs 'type'"),
        ("trigger_message", {"message": "DiagnosticsStatusNotification"}, "Cannot trigger"),
        ("trigger_message", {"message": "Heartbeat", "connector_id": -1}, "at least 0"),
        ("change_configuration", {"key": "", "value": "1"}, "empty"),
        ("change_configuration", {"key": "K" * 51, "value": "1"}, "too long"),
        ("change_configuration", {"key": "K", "value": "v" * 501}, "too long"),
        ("change_availability", {"connector_id": 1, "operative": "yes"}, "true or false"),
        ("change_availability", {"connector_id": True, "operative": True}, "whole number"),
        ("unlock_connector", {"connector_id": 0}, "at least 1"),
        ("unlock_connector", {"connector_id": "one"}, "whole number"),
        ("remote_start", {"id_tag": "X" * 21}, "too long"),
        ("remote_start", {"id_tag": " "}, "empty"),
        ("remote_stop", {"transaction_id": "abc-uuid"}, "whole number"),
        ("get_configuration", {"keys": "HeartbeatInterval"}, "list"),
    ],
)
def test_bad_params_are_refused_before_anything_is_sent(kind, params, message):
    with pytest.raises(ValueError, match=message):
        build_call("1.6", kind, params)


def test_get_base_report_is_not_a_v16_command():
    with pytest.raises(CommandNotSupported):
        build_call("1.6", "get_base_report", {"report_base": "FullInventory"})


def test_unknown_kind_and_version_are_refused():
    with pytest.raises(CommandNotSupported, match="Unknown command"):
        build_call("1.6", "launch", {})
    with pytest.raises(CommandNotSupported, match="version"):
        build_call("", "reset", {"type": "soft"})


def test_pending_stations_get_only_configuration_and_trigger_kinds():
    assert KINDS_ALLOWED_WHEN_PENDING == {
        "get_configuration",
        "change_configuration",
        "trigger_message",
        "get_base_report",
    }
    assert KINDS_ALLOWED_WHEN_PENDING <= set(COMMAND_KINDS)


@pytest.mark.parametrize(
    ("kind", "response", "status"),
    [
        ("reset", {"status": "Accepted"}, "accepted"),
        ("reset", {"status": "Rejected"}, "rejected"),
        ("trigger_message", {"status": "NotImplemented"}, "rejected"),
        ("change_configuration", {"status": "RebootRequired"}, "accepted"),
        ("change_configuration", {"status": "NotSupported"}, "rejected"),
        ("change_availability", {"status": "Scheduled"}, "accepted"),
        ("unlock_connector", {"status": "Unlocked"}, "accepted"),
        ("unlock_connector", {"status": "UnlockFailed"}, "rejected"),
        ("remote_start", {"status": "Accepted"}, "accepted"),
        ("remote_stop", {"status": "Rejected"}, "rejected"),
        ("clear_cache", {"status": "Accepted"}, "accepted"),
        ("get_configuration", {"configurationKey": [], "unknownKey": ["X"]}, "accepted"),
        ("get_configuration", {}, "accepted"),
        ("reset", {"status": "Maybe"}, "error"),
        ("reset", {}, "error"),
        ("get_configuration", {"configurationKey": "all"}, "error"),
    ],
)
def test_v16_answers_become_command_statuses(kind, response, status):
    assert interpret_result("1.6", kind, response) == status


def test_actions_map_back_to_kinds():
    for kind, params, *_ in V16_CALLS:
        action, _payload = build_call("1.6", kind, params)
        assert kind_for_action(action) == kind
    assert kind_for_action("GetBaseReport") == "get_base_report"
    assert kind_for_action("Heartbeat") == ""
