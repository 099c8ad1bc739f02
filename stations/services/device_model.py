"""What a charger reports about its configuration: 1.6 keys and the 2.x device model.

1.6 GetConfiguration answers become StationVariable rows without a component.

NotifyReport (the answer to GetBaseReport), GetVariables results and NotifyEvent all say
"component C, variable V, attribute A has value X"; they become StationVariable rows, one
per (component, instance, EVSE, connector, variable, instance, attribute type), shown
where a 1.6 station shows its configuration keys.

Payloads are accepted in either spelling: the wire's camelCase (a CALLRESULT the command
runner holds) or the snake_case the `ocpp` library hands to handlers.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

from django.db import transaction
from ocpp.charge_point import camel_to_snake_case

from ocpp_spec.commands import ACCEPTED
from ocpp_spec.passwords import REDACTED, is_secret_setting
from stations.models import StationVariable
from stations.services.command_outcomes import CommandOutcome, command_outcome

logger = logging.getLogger(__name__)

ACTUAL = "Actual"


@dataclass(frozen=True)
class VariableReading:
    """One attribute value of one variable, as a charger reported it."""

    component: str
    variable: str
    value: str = ""
    attribute_type: str = ACTUAL
    component_instance: str = ""
    variable_instance: str = ""
    evse_id: int | None = None
    connector_id: int | None = None
    # Blank: not reported this time; an earlier report's value is kept.
    mutability: str = ""
    data_type: str = ""

    @property
    def key(self) -> tuple:
        return (
            self.component,
            self.component_instance,
            self.evse_id,
            self.connector_id,
            self.variable,
            self.variable_instance,
            self.attribute_type,
        )


def _limit(model_field: str, value: object) -> str:
    text = "" if value is None else str(value)
    return text[: StationVariable._meta.get_field(model_field).max_length]


def _addressing(item: dict) -> dict:
    """Component/variable names, instances and EVSE of one report item (snake_case)."""
    component = item.get("component") or {}
    variable = item.get("variable") or {}
    evse = component.get("evse") or {}
    return {
        "component": _limit("component", component.get("name")),
        "component_instance": _limit("component_instance", component.get("instance")),
        "evse_id": evse.get("id"),
        "connector_id": evse.get("connector_id"),
        "variable": _limit("variable", variable.get("name")),
        "variable_instance": _limit("variable_instance", variable.get("instance")),
    }


def _readings_from_report(report_data: list[dict]) -> list[VariableReading]:
    readings = []
    for item in camel_to_snake_case(report_data or []):
        where = _addressing(item)
        if not where["variable"]:
            continue
        data_type = _limit(
            "data_type", (item.get("variable_characteristics") or {}).get("data_type")
        )
        for attribute in item.get("variable_attribute") or []:
            readings.append(
                VariableReading(
                    **where,
                    attribute_type=_limit("attribute_type", attribute.get("type") or ACTUAL),
                    value=_limit("value", attribute.get("value")),
                    # OCPP 2.0.1: mutability defaults to ReadWrite when omitted.
                    mutability=_limit("mutability", attribute.get("mutability") or "ReadWrite"),
                    data_type=data_type,
                )
            )
    return readings


def station_variables_store(*, station_id: int, readings: list[VariableReading]) -> int:
    """Insert or update the station's variables from `readings`; returns how many changed.

    A later reading of the same variable attribute replaces the earlier one (in the batch
    and in the database). Blank mutability/data type keep what an earlier report said.
    """
    latest: dict[tuple, VariableReading] = {}
    for reading in readings:
        if reading.value and is_secret_setting(reading.component, reading.variable):
            # SecurityCtrlr.BasicAuthPassword: never stored, whoever reads the table.
            reading = dataclasses.replace(reading, value=REDACTED)
        latest[reading.key] = reading
    if not latest:
        return 0
    with transaction.atomic():
        existing: dict[tuple, StationVariable] = {}
        for row in StationVariable.objects.select_for_update().filter(station_id=station_id):
            key = (
                row.component,
                row.component_instance,
                row.evse_id,
                row.connector_id,
                row.variable,
                row.variable_instance,
                row.attribute_type,
            )
            existing[key] = row
        to_create, to_update = [], []
        for key, reading in latest.items():
            row = existing.get(key)
            if row is None:
                to_create.append(
                    StationVariable(
                        station_id=station_id,
                        component=reading.component,
                        component_instance=reading.component_instance,
                        evse_id=reading.evse_id,
                        connector_id=reading.connector_id,
                        variable=reading.variable,
                        variable_instance=reading.variable_instance,
                        attribute_type=reading.attribute_type,
                        value=reading.value,
                        mutability=reading.mutability,
                        data_type=reading.data_type,
                    )
                )
                continue
            changed = row.value != reading.value
            row.value = reading.value
            for field in ("mutability", "data_type"):
                new = getattr(reading, field)
                if new and getattr(row, field) != new:
                    setattr(row, field, new)
                    changed = True
            if changed:
                to_update.append(row)
        StationVariable.objects.bulk_create(to_create)
        # bulk_update skips auto_now: the rows say when they last changed.
        for row in to_update:
            row.save(update_fields=["value", "mutability", "data_type", "updated_at"])
    return len(to_create) + len(to_update)


def device_model_store_report(*, station_id: int, report_data: list[dict] | None) -> int:
    """Store one NotifyReport message's reportData (a report may span several messages)."""
    return station_variables_store(
        station_id=station_id, readings=_readings_from_report(report_data or [])
    )


def device_model_store_get_variables(*, station_id: int, results: list[dict] | None) -> int:
    """Store the values of a GetVariables answer (`getVariableResult`).

    Only results with attributeStatus Accepted carry a value; UnknownVariable and the
    like change nothing.
    """
    readings = []
    for result in camel_to_snake_case(results or []):
        if result.get("attribute_status") != "Accepted":
            continue
        where = _addressing(result)
        if not where["variable"]:
            continue
        readings.append(
            VariableReading(
                **where,
                attribute_type=_limit("attribute_type", result.get("attribute_type") or ACTUAL),
                value=_limit("value", result.get("attribute_value")),
            )
        )
    return station_variables_store(station_id=station_id, readings=readings)


def device_model_store_events(*, station_id: int, event_data: list[dict] | None) -> int:
    """Apply NotifyEvent: each event reports the actual value of a monitored variable.

    The events themselves stay in the OCPP message log; here the variable's Actual value
    is brought up to date so the settings page shows what the charger reports now.
    """
    readings = []
    for event in camel_to_snake_case(event_data or []):
        where = _addressing(event)
        if not where["variable"]:
            continue
        if event.get("trigger") == "Alerting" or event.get("tech_info"):
            logger.info(
                "Station %s event %s: %s.%s = %r (%s) %s",
                station_id,
                event.get("event_id"),
                where["component"],
                where["variable"],
                event.get("actual_value"),
                event.get("trigger"),
                event.get("tech_info", ""),
            )
        readings.append(VariableReading(**where, value=_limit("value", event.get("actual_value"))))
    return station_variables_store(station_id=station_id, readings=readings)


# ---- configuration answers -------------------------------------------------------------


@command_outcome("get_configuration")
def configuration_answer_store(outcome: CommandOutcome) -> None:
    """A GetConfiguration (1.6) or GetVariables (2.x) answer updates the station's variables."""
    if outcome.status != ACCEPTED or not isinstance(outcome.response, dict):
        return
    if outcome.action == "GetConfiguration":
        configuration_keys_store(
            station_id=outcome.station_id, asked=outcome.payload, response=outcome.response
        )
    elif outcome.action == "GetVariables":
        # OCPP 2.x: the device model's rules (one row per component/variable/attribute).
        device_model_store_get_variables(
            station_id=outcome.station_id, results=outcome.response.get("getVariableResult")
        )


def configuration_keys_store(*, station_id: int, asked: dict, response: dict) -> None:
    """OCPP 1.6 keys are StationVariable rows with no component.

    `asked`: the GetConfiguration payload; when it named no key, every key was asked for,
    and a key the charger no longer reports is gone.
    """
    reported = {}
    for item in response.get("configurationKey") or []:
        if isinstance(item, dict) and isinstance(item.get("key"), str):
            reported[item["key"][:100]] = item
    v16_rows = StationVariable.objects.filter(station_id=station_id, component="")
    if not asked.get("key"):
        v16_rows.exclude(variable__in=list(reported)).delete()
    unknown = [k for k in response.get("unknownKey") or [] if isinstance(k, str)]
    if unknown:
        v16_rows.filter(variable__in=unknown).delete()
    for key, item in reported.items():
        value = item.get("value")
        if value and is_secret_setting("", key):
            value = REDACTED  # AuthorizationKey: never stored, whoever reads the table.
        StationVariable.objects.update_or_create(
            station_id=station_id,
            component="",
            variable=key,
            defaults={
                "value": "" if value is None else str(value)[:2500],
                "mutability": "ReadOnly" if item.get("readonly") else "ReadWrite",
                "attribute_type": "Actual",
            },
        )
