"""The 2.x device model services: NotifyReport, GetVariables results and NotifyEvent as rows."""

from __future__ import annotations

import pytest

from stations.models import StationVariable
from stations.services.device_model import (
    device_model_store_events,
    device_model_store_get_variables,
    device_model_store_report,
)
from tests.factories import make_station

pytestmark = pytest.mark.django_db


@pytest.fixture
def station(cpo_a):
    return make_station("CP-DM", cpo=cpo_a, ocpp_version="2.0.1")


def heartbeat_item(value: str = "300", **attribute) -> dict:
    return {
        "component": {"name": "OCPPCommCtrlr"},
        "variable": {"name": "HeartbeatInterval"},
        "variableAttribute": [{"type": "Actual", "value": value} | attribute],
        "variableCharacteristics": {"dataType": "integer", "supportsMonitoring": False},
    }


def rows(station) -> list[tuple]:
    return list(
        StationVariable.objects.filter(station=station)
        .order_by("component", "variable", "attribute_type")
        .values_list("component", "variable", "attribute_type", "value", "mutability", "data_type")
    )


def test_each_attribute_of_a_reported_variable_is_a_row(station):
    item = {
        "component": {"name": "SmartChargingCtrlr", "instance": "main"},
        "variable": {"name": "Limit", "instance": "L1"},
        "variableAttribute": [
            {"type": "Actual", "value": "32", "mutability": "ReadOnly"},
            {"type": "MaxSet", "value": "63", "mutability": "ReadOnly"},
        ],
        "variableCharacteristics": {"dataType": "decimal", "supportsMonitoring": True},
    }
    assert device_model_store_report(station_id=station.pk, report_data=[item]) == 2
    assert rows(station) == [
        ("SmartChargingCtrlr", "Limit", "Actual", "32", "ReadOnly", "decimal"),
        ("SmartChargingCtrlr", "Limit", "MaxSet", "63", "ReadOnly", "decimal"),
    ]
    assert set(StationVariable.objects.values_list("component_instance", "variable_instance")) == {
        ("main", "L1")
    }


def test_a_new_report_updates_rows_instead_of_adding(station):
    device_model_store_report(station_id=station.pk, report_data=[heartbeat_item("300")])
    device_model_store_report(station_id=station.pk, report_data=[heartbeat_item("600")])
    assert rows(station) == [
        ("OCPPCommCtrlr", "HeartbeatInterval", "Actual", "600", "ReadWrite", "integer")
    ]


def test_an_unchanged_report_writes_nothing(station):
    device_model_store_report(station_id=station.pk, report_data=[heartbeat_item("300")])
    assert (
        device_model_store_report(station_id=station.pk, report_data=[heartbeat_item("300")]) == 0
    )


def test_write_only_variables_are_stored_without_a_value(station):
    item = heartbeat_item(mutability="WriteOnly")
    del item["variableAttribute"][0]["value"]
    device_model_store_report(station_id=station.pk, report_data=[item])
    assert rows(station) == [
        ("OCPPCommCtrlr", "HeartbeatInterval", "Actual", "", "WriteOnly", "integer")
    ]


def test_get_variables_results_store_accepted_values_only(station):
    device_model_store_report(
        station_id=station.pk, report_data=[heartbeat_item("300", mutability="ReadWrite")]
    )
    stored = device_model_store_get_variables(
        station_id=station.pk,
        results=[
            {
                "attributeStatus": "Accepted",
                "attributeValue": "900",
                "component": {"name": "OCPPCommCtrlr"},
                "variable": {"name": "HeartbeatInterval"},
            },
            {
                "attributeStatus": "UnknownVariable",
                "component": {"name": "Nope"},
                "variable": {"name": "Nothing"},
            },
        ],
    )
    assert stored == 1
    # The value changes; what the report said about mutability and type is kept.
    assert rows(station) == [
        ("OCPPCommCtrlr", "HeartbeatInterval", "Actual", "900", "ReadWrite", "integer")
    ]


def test_get_variables_results_of_an_evse_are_kept_apart(station):
    result = {
        "attributeStatus": "Accepted",
        "attributeValue": "Available",
        "variable": {"name": "AvailabilityState"},
    }
    device_model_store_get_variables(
        station_id=station.pk,
        results=[
            result | {"component": {"name": "EVSE", "evse": {"id": 1}}},
            result
            | {"component": {"name": "EVSE", "evse": {"id": 2}}, "attributeValue": "Unavailable"},
        ],
    )
    assert sorted(StationVariable.objects.values_list("evse_id", "value")) == [
        (1, "Available"),
        (2, "Unavailable"),
    ]


def test_notify_event_sets_the_actual_value(station):
    device_model_store_events(
        station_id=station.pk,
        event_data=[
            {
                "event_id": 1,
                "timestamp": "2026-03-01T10:00:00Z",
                "trigger": "Alerting",
                "actual_value": "true",
                "tech_info": "ground fault",
                "event_notification_type": "HardWiredMonitor",
                "component": {"name": "ChargingStation"},
                "variable": {"name": "Problem"},
            }
        ],
    )
    assert rows(station) == [("ChargingStation", "Problem", "Actual", "true", "", "")]


def test_over_long_strings_are_cut_to_the_column(station):
    item = heartbeat_item("v" * 3000)
    item["component"]["name"] = "C" * 80
    device_model_store_report(station_id=station.pk, report_data=[item])
    variable = StationVariable.objects.get()
    assert (len(variable.component), len(variable.value)) == (50, 2500)
