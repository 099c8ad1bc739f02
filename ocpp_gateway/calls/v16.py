"""OCPP 1.6J payloads of the commands, and what the charger's answers mean.

Chargers validate what we send (DESIGN.md §2b): integers are JSON integers,
ChangeConfiguration's value is a string, optional fields are left out rather than null.
"""

from __future__ import annotations

from typing import Any

from ocpp_gateway.calls import ACCEPTED, ERROR, REJECTED, CommandNotSupported

TRIGGERABLE = frozenset({"BootNotification", "StatusNotification", "Heartbeat", "MeterValues"})

# The charger's status → Command.Status, per action. RebootRequired, Scheduled: accepted,
# the charger will act later (the answer is kept on the Command for the panel to show).
_STATUSES: dict[str, dict[str, str]] = {
    "reset": {"Accepted": ACCEPTED, "Rejected": REJECTED},
    "trigger_message": {"Accepted": ACCEPTED, "Rejected": REJECTED, "NotImplemented": REJECTED},
    "change_configuration": {
        "Accepted": ACCEPTED,
        "RebootRequired": ACCEPTED,
        "Rejected": REJECTED,
        "NotSupported": REJECTED,
    },
    "change_availability": {"Accepted": ACCEPTED, "Scheduled": ACCEPTED, "Rejected": REJECTED},
    "unlock_connector": {"Unlocked": ACCEPTED, "UnlockFailed": REJECTED, "NotSupported": REJECTED},
    "remote_start": {"Accepted": ACCEPTED, "Rejected": REJECTED},
    "remote_stop": {"Accepted": ACCEPTED, "Rejected": REJECTED},
    "clear_cache": {"Accepted": ACCEPTED, "Rejected": REJECTED},
}


def build(kind: str, params: dict) -> tuple[str, dict]:
    """The 1.6 action and payload of a command kind (see `ocpp_gateway.calls`)."""
    builder = _BUILDERS.get(kind)
    if builder is None:
        raise CommandNotSupported(f"{kind} is not an OCPP 1.6 command.")
    try:
        return builder(params)
    except KeyError as exc:
        raise ValueError(f"{kind} needs {exc.args[0]!r}.") from exc


def interpret(kind: str, response: dict) -> str:
    """accepted / rejected / error for the charger's CALLRESULT payload."""
    if not isinstance(response, dict):
        return ERROR
    if kind == "get_configuration":
        # No status: any well-formed answer is the charger doing what was asked.
        keys = response.get("configurationKey", [])
        unknown = response.get("unknownKey", [])
        return ACCEPTED if isinstance(keys, list) and isinstance(unknown, list) else ERROR
    statuses = _STATUSES.get(kind)
    if statuses is None:
        raise CommandNotSupported(f"{kind} is not an OCPP 1.6 command.")
    return statuses.get(response.get("status"), ERROR)


def _int(value: Any, name: str, *, minimum: int = 0) -> int:
    # bool is an int subclass: True must not become connector 1.
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{name} must be a whole number.")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a whole number.") from None
    if isinstance(value, float) and value != number:
        raise ValueError(f"{name} must be a whole number.")
    if number < minimum:
        raise ValueError(f"{name} must be at least {minimum}.")
    return number


def _reset(params: dict) -> tuple[str, dict]:
    reset_type = str(params["type"]).lower()
    if reset_type not in ("soft", "hard"):
        raise ValueError("Reset type must be soft or hard.")
    return "Reset", {"type": reset_type.capitalize()}


def _trigger_message(params: dict) -> tuple[str, dict]:
    message = params["message"]
    if message not in TRIGGERABLE:
        raise ValueError(f"Cannot trigger {message!r}: one of {', '.join(sorted(TRIGGERABLE))}.")
    payload: dict = {"requestedMessage": message}
    if params.get("connector_id") is not None:
        payload["connectorId"] = _int(params["connector_id"], "Connector", minimum=0)
    return "TriggerMessage", payload


def _get_configuration(params: dict) -> tuple[str, dict]:
    keys = params.get("keys") or []
    if isinstance(keys, str) or not all(isinstance(k, str) for k in keys):
        raise ValueError("Configuration keys must be a list of names.")
    keys = [k.strip() for k in keys if k.strip()]
    # No key at all asks for every key; an empty list would too, but some firmware chokes.
    return "GetConfiguration", ({"key": keys} if keys else {})


def _change_configuration(params: dict) -> tuple[str, dict]:
    key = str(params["key"]).strip()
    if not key:
        raise ValueError("The configuration key is empty.")
    value = params["value"]
    if isinstance(value, bool):
        value = "true" if value else "false"
    # 1.6 sends every value as a string, numbers and booleans included.
    return "ChangeConfiguration", {"key": key, "value": str(value)}


def _change_availability(params: dict) -> tuple[str, dict]:
    operative = params["operative"]
    if not isinstance(operative, bool):
        raise ValueError("operative must be true or false.")
    return "ChangeAvailability", {
        "connectorId": _int(params["connector_id"], "Connector", minimum=0),
        "type": "Operative" if operative else "Inoperative",
    }


def _unlock_connector(params: dict) -> tuple[str, dict]:
    # Connector 0 is the station itself: nothing to unlock there.
    return "UnlockConnector", {"connectorId": _int(params["connector_id"], "Connector", minimum=1)}


def _remote_start(params: dict) -> tuple[str, dict]:
    id_tag = str(params["id_tag"]).strip()
    if not id_tag:
        raise ValueError("The id tag is empty.")
    payload: dict = {"idTag": id_tag}
    if params.get("connector_id") is not None:
        payload["connectorId"] = _int(params["connector_id"], "Connector", minimum=1)
    return "RemoteStartTransaction", payload


def _remote_stop(params: dict) -> tuple[str, dict]:
    # 1.6 transaction ids are the backend's integers (Transaction.pk).
    transaction_id = _int(params["transaction_id"], "Transaction id", minimum=0)
    return "RemoteStopTransaction", {"transactionId": transaction_id}


def _clear_cache(params: dict) -> tuple[str, dict]:
    return "ClearCache", {}


_BUILDERS = {
    "reset": _reset,
    "trigger_message": _trigger_message,
    "get_configuration": _get_configuration,
    "change_configuration": _change_configuration,
    "change_availability": _change_availability,
    "unlock_connector": _unlock_connector,
    "remote_start": _remote_start,
    "remote_stop": _remote_stop,
    "clear_cache": _clear_cache,
}
