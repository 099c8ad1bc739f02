"""Panel commands as OCPP 2.0.1 CALLs (also valid OCPP 2.1): build the payload, read the answer.

The panel speaks version-neutral kinds (`reset`, `get_configuration`, …) with
version-neutral params; this module maps them onto the 2.x actions:

- get_configuration → GetVariables ("Component.Variable" keys); no keys → GetBaseReport
  (ConfigurationInventory), the 2.x way of asking for everything;
- change_configuration → SetVariables;
- remote_start / remote_stop → RequestStartTransaction / RequestStopTransaction.

`build` raises ValueError for a kind or params 2.x cannot express.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

ACCEPTED, REJECTED, ERROR = "accepted", "rejected", "error"

TRIGGERABLE = frozenset({"BootNotification", "StatusNotification", "Heartbeat", "MeterValues"})
REPORT_BASES = frozenset({"FullInventory", "ConfigurationInventory", "SummaryInventory"})
# requestId / remoteStartId are 32-bit integers on most firmware.
MAX_REQUEST_ID = 2**31 - 1


def new_request_id() -> int:
    """A requestId / remoteStartId unlikely to collide with one still in flight."""
    return secrets.randbelow(MAX_REQUEST_ID) + 1


def parse_key(key: str) -> tuple[str, str]:
    """Split a "Component.Variable" key into its two names."""
    component, sep, variable = (key or "").strip().partition(".")
    if not sep or not component or not variable:
        raise ValueError(f"OCPP 2.x keys are written Component.Variable, got {key!r}")
    return component, variable


def _int_or_none(value: Any, name: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an integer, got {value!r}")


def _evse(params: dict) -> dict | None:
    """The EVSEType for `evse_id` (+ `connector_id`), or None for the whole station."""
    evse_id = _int_or_none(params.get("evse_id"), "evse_id")
    connector_id = _int_or_none(params.get("connector_id"), "connector_id")
    if evse_id is None or evse_id == 0:
        if connector_id:
            # 1.6 numbers connectors station-wide; 2.x needs to know the EVSE.
            raise ValueError("OCPP 2.x needs evse_id to address a connector")
        return None
    evse: dict = {"id": evse_id}
    if connector_id:
        evse["connectorId"] = connector_id
    return evse


def _reset(params: dict) -> tuple[str, dict]:
    kind = params.get("type", "soft")
    if kind not in {"soft", "hard"}:
        raise ValueError(f"Reset type is soft or hard, got {kind!r}")
    # A hard reset reboots now; a soft one waits for running transactions to end.
    return "Reset", {"type": "Immediate" if kind == "hard" else "OnIdle"}


def _trigger_message(params: dict) -> tuple[str, dict]:
    message = params.get("message")
    if message not in TRIGGERABLE:
        raise ValueError(f"Cannot trigger {message!r}")
    payload: dict = {"requestedMessage": message}
    evse = _evse(params) if message in {"StatusNotification", "MeterValues"} else None
    if evse is not None:
        payload["evse"] = evse
    return "TriggerMessage", payload


def _get_configuration(params: dict) -> tuple[str, dict]:
    keys = params.get("keys") or []
    if not keys:
        return _get_base_report({"report_base": "ConfigurationInventory"})
    data = []
    for key in keys:
        component, variable = parse_key(key)
        data.append({"component": {"name": component}, "variable": {"name": variable}})
    return "GetVariables", {"getVariableData": data}


def _change_configuration(params: dict) -> tuple[str, dict]:
    component, variable = parse_key(params.get("key", ""))
    value = params.get("value")
    if value is None:
        raise ValueError("change_configuration needs a value")
    return "SetVariables", {
        "setVariableData": [
            {
                "attributeValue": str(value),
                "component": {"name": component},
                "variable": {"name": variable},
            }
        ]
    }


def _change_availability(params: dict) -> tuple[str, dict]:
    if "operative" not in params:
        raise ValueError("change_availability needs operative")
    payload: dict = {"operationalStatus": "Operative" if params["operative"] else "Inoperative"}
    evse = _evse(params)
    if evse is not None:
        payload["evse"] = evse
    return "ChangeAvailability", payload


def _unlock_connector(params: dict) -> tuple[str, dict]:
    evse_id = _int_or_none(params.get("evse_id"), "evse_id")
    if not evse_id:
        raise ValueError("OCPP 2.x needs evse_id to unlock a connector")
    connector_id = _int_or_none(params.get("connector_id"), "connector_id") or 1
    return "UnlockConnector", {"evseId": evse_id, "connectorId": connector_id}


def _remote_start(params: dict) -> tuple[str, dict]:
    id_tag = (params.get("id_tag") or "").strip()
    if not id_tag or len(id_tag) > 36:
        raise ValueError("remote_start needs an id_tag of 1 to 36 characters")
    remote_start_id = _int_or_none(params.get("remote_start_id"), "remote_start_id")
    payload: dict = {
        # Central: a token the CSMS issued, as OCPP 2.0.1 F01 asks for remote starts.
        "idToken": {"idToken": id_tag, "type": "Central"},
        "remoteStartId": remote_start_id or new_request_id(),
    }
    evse_id = _int_or_none(params.get("evse_id"), "evse_id")
    if evse_id:
        payload["evseId"] = evse_id
    return "RequestStartTransaction", payload


def _remote_stop(params: dict) -> tuple[str, dict]:
    transaction_id = str(params.get("transaction_id") or "").strip()
    if not transaction_id or len(transaction_id) > 36:
        raise ValueError("remote_stop needs the charger's transaction id (1 to 36 characters)")
    return "RequestStopTransaction", {"transactionId": transaction_id}


def _clear_cache(params: dict) -> tuple[str, dict]:
    return "ClearCache", {}


def _get_base_report(params: dict) -> tuple[str, dict]:
    report_base = params.get("report_base", "FullInventory")
    if report_base not in REPORT_BASES:
        raise ValueError(f"Unknown report base {report_base!r}")
    request_id = _int_or_none(params.get("request_id"), "request_id") or new_request_id()
    return "GetBaseReport", {"requestId": request_id, "reportBase": report_base}


BUILDERS: dict[str, Callable[[dict], tuple[str, dict]]] = {
    "reset": _reset,
    "trigger_message": _trigger_message,
    "get_configuration": _get_configuration,
    "change_configuration": _change_configuration,
    "change_availability": _change_availability,
    "unlock_connector": _unlock_connector,
    "remote_start": _remote_start,
    "remote_stop": _remote_stop,
    "clear_cache": _clear_cache,
    "get_base_report": _get_base_report,
}

# The statuses that mean "the charger will do it", per answer field.
ACCEPTED_STATUSES = frozenset({"Accepted", "Scheduled", "Unlocked", "EmptyResultSet"})
ACCEPTED_ATTRIBUTE_STATUSES = frozenset({"Accepted", "RebootRequired"})


def build(kind: str, params: dict) -> tuple[str, dict]:
    """The (action, payload) of the 2.x CALL for a panel command; ValueError if unsupported."""
    builder = BUILDERS.get(kind)
    if builder is None:
        raise ValueError(f"{kind} is not supported on OCPP 2.x")
    return builder(dict(params or {}))


def interpret(kind: str, response: dict) -> str:
    """ "accepted", "rejected" or "error" for the charger's answer to a command of `kind`."""
    if not isinstance(response, dict):
        return ERROR
    # GetVariables / SetVariables answer per variable: accepted when any variable was.
    for results_key in ("getVariableResult", "setVariableResult"):
        if results_key in response:
            results = response[results_key]
            if not isinstance(results, list) or not results:
                return ERROR
            statuses = {r.get("attributeStatus") for r in results if isinstance(r, dict)}
            return ACCEPTED if statuses & ACCEPTED_ATTRIBUTE_STATUSES else REJECTED
    status = response.get("status")
    if not isinstance(status, str):
        return ERROR
    return ACCEPTED if status in ACCEPTED_STATUSES else REJECTED
