"""Commands as OCPP 2.0.1 CALLs (also valid OCPP 2.1): build the payload, read the answer.

The version-neutral kinds map onto the 2.x actions: get_configuration → GetVariables
("Component.Variable" keys), or without keys GetBaseReport (ConfigurationInventory), the
2.x way of asking for everything; change_configuration → SetVariables; remote_start /
remote_stop → RequestStartTransaction / RequestStopTransaction. A builder raises
ValueError for params 2.x cannot express.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from typing import Any

from ocpp_spec.commands.base import (
    ACCEPTED,
    ERROR,
    REJECTED,
    TRIGGERABLE,
    TRIGGERED_PER_CONNECTOR,
    Builder,
    VersionCall,
)

REPORT_BASES = frozenset({"FullInventory", "ConfigurationInventory", "SummaryInventory"})
# requestId / remoteStartId are 32-bit integers on most firmware.
MAX_REQUEST_ID = 2**31 - 1

# The statuses that mean "the charger will do it"; any other status is a refusal.
ACCEPTED_STATUSES = frozenset({"Accepted", "Scheduled", "Unlocked", "EmptyResultSet"})
STATUSES: Mapping[str, str] = dict.fromkeys(ACCEPTED_STATUSES, ACCEPTED)
# GetVariables / SetVariables answer per variable: accepted when any variable was.
ACCEPTED_ATTRIBUTE_STATUSES = frozenset({"Accepted", "RebootRequired"})


def call(
    action: str,
    build: Builder,
    *,
    statuses: Mapping[str, str] = STATUSES,
    interpret: Callable[[dict], str] | None = None,
) -> VersionCall:
    """A 2.x VersionCall: a status in `statuses` is its value, any other status a refusal.

    `interpret` reads answers that carry no status (GetLocalListVersion's versionNumber).
    """

    def read(response: Any) -> str:
        if not isinstance(response, dict):
            return ERROR
        if interpret is not None:
            return interpret(response)
        for results_key in ("getVariableResult", "setVariableResult"):
            if results_key in response:
                results = response[results_key]
                if not isinstance(results, list) or not results:
                    return ERROR
                attribute_statuses = {
                    r.get("attributeStatus") for r in results if isinstance(r, dict)
                }
                return ACCEPTED if attribute_statuses & ACCEPTED_ATTRIBUTE_STATUSES else REJECTED
        status = response.get("status")
        if not isinstance(status, str):
            return ERROR
        return statuses.get(status, REJECTED)

    return VersionCall(action=action, build=build, statuses=statuses, interpret=read)


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


def reset(params: dict) -> tuple[str, dict]:
    kind = params.get("type", "soft")
    if kind not in {"soft", "hard"}:
        raise ValueError(f"Reset type is soft or hard, got {kind!r}")
    # A hard reset reboots now; a soft one waits for running transactions to end.
    return "Reset", {"type": "Immediate" if kind == "hard" else "OnIdle"}


def trigger_message(params: dict) -> tuple[str, dict]:
    message = params.get("message")
    if message not in TRIGGERABLE:
        raise ValueError(f"Cannot trigger {message!r}")
    payload: dict = {"requestedMessage": message}
    evse = _evse(params) if message in TRIGGERED_PER_CONNECTOR else None
    if evse is not None:
        payload["evse"] = evse
    return "TriggerMessage", payload


def get_configuration(params: dict) -> tuple[str, dict]:
    keys = params.get("keys") or []
    if not keys:
        return get_base_report({"report_base": "ConfigurationInventory"})
    data = []
    for key in keys:
        component, variable = parse_key(key)
        data.append({"component": {"name": component}, "variable": {"name": variable}})
    return "GetVariables", {"getVariableData": data}


def change_configuration(params: dict) -> tuple[str, dict]:
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


def change_availability(params: dict) -> tuple[str, dict]:
    if "operative" not in params:
        raise ValueError("change_availability needs operative")
    payload: dict = {"operationalStatus": "Operative" if params["operative"] else "Inoperative"}
    evse = _evse(params)
    if evse is not None:
        payload["evse"] = evse
    return "ChangeAvailability", payload


def unlock_connector(params: dict) -> tuple[str, dict]:
    evse_id = _int_or_none(params.get("evse_id"), "evse_id")
    if not evse_id:
        raise ValueError("OCPP 2.x needs evse_id to unlock a connector")
    connector_id = _int_or_none(params.get("connector_id"), "connector_id") or 1
    return "UnlockConnector", {"evseId": evse_id, "connectorId": connector_id}


def remote_start(params: dict) -> tuple[str, dict]:
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


def remote_stop(params: dict) -> tuple[str, dict]:
    transaction_id = str(params.get("transaction_id") or "").strip()
    if not transaction_id or len(transaction_id) > 36:
        raise ValueError("remote_stop needs the charger's transaction id (1 to 36 characters)")
    return "RequestStopTransaction", {"transactionId": transaction_id}


def clear_cache(params: dict) -> tuple[str, dict]:
    return "ClearCache", {}


def get_base_report(params: dict) -> tuple[str, dict]:
    report_base = params.get("report_base", "FullInventory")
    if report_base not in REPORT_BASES:
        raise ValueError(f"Unknown report base {report_base!r}")
    request_id = _int_or_none(params.get("request_id"), "request_id") or new_request_id()
    return "GetBaseReport", {"requestId": request_id, "reportBase": report_base}


# A tag registered without a type goes into the list as an RFID card, the common case.
DEFAULT_TOKEN_TYPE = "ISO14443"


def send_local_list(params: dict) -> tuple[str, dict]:
    """SendLocalList: an entry without a status removes the token (a differential update)."""
    update_type = params["update_type"]
    if update_type not in ("Full", "Differential"):
        raise ValueError("update_type must be Full or Differential.")
    version = _int_or_none(params["version"], "List version")
    if version is None or version < 1:
        raise ValueError("List version must be at least 1.")
    entries = []
    for entry in params["entries"]:
        item: dict = {
            "idToken": {
                "idToken": str(entry["id_tag"]),
                "type": entry.get("token_type") or DEFAULT_TOKEN_TYPE,
            }
        }
        if entry.get("status"):
            info: dict = {"status": entry["status"]}
            if entry.get("expiry"):
                info["cacheExpiryDateTime"] = entry["expiry"]
            if entry.get("parent"):
                info["groupIdToken"] = {"idToken": entry["parent"], "type": "Central"}
            item["idTokenInfo"] = info
        elif update_type == "Full":
            raise ValueError("A full list cannot remove tokens.")
        entries.append(item)
    payload: dict = {"versionNumber": version, "updateType": update_type}
    if entries:
        payload["localAuthorizationList"] = entries
    return "SendLocalList", payload


def get_local_list_version(params: dict) -> tuple[str, dict]:
    return "GetLocalListVersion", {}


def local_list_version_answer(response: dict) -> str:
    """GetLocalListVersion has no status: a whole versionNumber is the answer (0: no list)."""
    version = response.get("versionNumber")
    return ACCEPTED if isinstance(version, int) and not isinstance(version, bool) else ERROR
