"""Issue 11 point 5: charger passwords blanked out of every payload shape that carries one."""

from __future__ import annotations

from ocpp_spec.passwords import REDACTED, may_hold_secret, redact_secrets

SECRET = "s3cret-password-123"


def test_a_change_configuration_of_the_authorization_key():
    payload = {"key": "AuthorizationKey", "value": SECRET.encode().hex()}
    assert redact_secrets(payload) == {"key": "AuthorizationKey", "value": REDACTED}


def test_a_get_configuration_answer_whatever_the_case_of_the_key():
    response = {
        "configurationKey": [
            {"key": "authorizationkey", "readonly": False, "value": SECRET},
            {"key": "HeartbeatInterval", "readonly": False, "value": "300"},
        ]
    }
    assert redact_secrets(response) == {
        "configurationKey": [
            {"key": "authorizationkey", "readonly": False, "value": REDACTED},
            {"key": "HeartbeatInterval", "readonly": False, "value": "300"},
        ]
    }


def test_a_notify_report_and_get_variables_in_both_spellings():
    report = {
        "reportData": [
            {
                "component": {"name": "SecurityCtrlr"},
                "variable": {"name": "BasicAuthPassword"},
                "variableAttribute": [{"type": "Actual", "value": SECRET}],
            },
            {
                "component": {"name": "OCPPCommCtrlr"},
                "variable": {"name": "HeartbeatInterval"},
                "variableAttribute": [{"value": "300"}],
            },
        ]
    }
    redacted = redact_secrets(report)
    assert SECRET not in str(redacted)
    assert redacted["reportData"][1] == report["reportData"][1]
    snake = {
        "get_variable_result": [
            {
                "attribute_status": "Accepted",
                "attribute_value": SECRET,
                "component": {"name": "SecurityCtrlr"},
                "variable": {"name": "BasicAuthPassword"},
            }
        ]
    }
    assert redact_secrets(snake)["get_variable_result"][0]["attribute_value"] == REDACTED


def test_a_set_variables_and_anything_else_untouched():
    payload = {
        "setVariableData": [
            {
                "attributeValue": SECRET,
                "component": {"name": "SecurityCtrlr"},
                "variable": {"name": "BasicAuthPassword"},
            }
        ]
    }
    assert SECRET not in str(redact_secrets(payload))
    other = {"key": "MeterValueSampleInterval", "value": "60", "nested": [1, "a", None]}
    assert redact_secrets(other) == other
    assert may_hold_secret('{"key":"AUTHORIZATIONKEY"}')
    assert not may_hold_secret('{"key":"HeartbeatInterval"}')
