"""OCPP 1.6J payloads of the commands, and what the charger's answers mean.

Chargers validate what we send (DESIGN.md §2b): integers are JSON integers,
ChangeConfiguration's value is a string, optional fields are left out rather than null.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ocpp_spec.commands.base import (
    ACCEPTED,
    ERROR,
    TRIGGERABLE,
    Builder,
    VersionCall,
)


def call(
    action: str,
    build: Builder,
    *,
    statuses: Mapping[str, str],
    interpret: Callable[[dict], str] | None = None,
) -> VersionCall:
    """A 1.6 VersionCall: the answer's `status` through `statuses`, any other status an error.

    `interpret` reads answers that carry no status (GetConfiguration).
    """

    def read(response: Any) -> str:
        if not isinstance(response, dict):
            return ERROR
        if interpret is not None:
            return interpret(response)
        return statuses.get(response.get("status"), ERROR)

    return VersionCall(action=action, build=build, statuses=statuses, interpret=read)


def configuration_answer(response: dict) -> str:
    """GetConfiguration has no status: any well-formed answer is the charger doing it."""
    keys = response.get("configurationKey", [])
    unknown = response.get("unknownKey", [])
    return ACCEPTED if isinstance(keys, list) and isinstance(unknown, list) else ERROR


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


def reset(params: dict) -> tuple[str, dict]:
    reset_type = str(params["type"]).lower()
    if reset_type not in ("soft", "hard"):
        raise ValueError("Reset type must be soft or hard.")
    return "Reset", {"type": reset_type.capitalize()}


def trigger_message(params: dict) -> tuple[str, dict]:
    message = params["message"]
    if message not in TRIGGERABLE:
        raise ValueError(f"Cannot trigger {message!r}: one of {', '.join(sorted(TRIGGERABLE))}.")
    payload: dict = {"requestedMessage": message}
    if params.get("connector_id") is not None:
        payload["connectorId"] = _int(params["connector_id"], "Connector", minimum=0)
    return "TriggerMessage", payload


def get_configuration(params: dict) -> tuple[str, dict]:
    keys = params.get("keys") or []
    if isinstance(keys, str) or not all(isinstance(k, str) for k in keys):
        raise ValueError("Configuration keys must be a list of names.")
    keys = [k.strip() for k in keys if k.strip()]
    # No key at all asks for every key; an empty list would too, but some firmware chokes.
    return "GetConfiguration", ({"key": keys} if keys else {})


def change_configuration(params: dict) -> tuple[str, dict]:
    key = str(params["key"]).strip()
    if not key:
        raise ValueError("The configuration key is empty.")
    value = params["value"]
    if isinstance(value, bool):
        value = "true" if value else "false"
    # 1.6 sends every value as a string, numbers and booleans included.
    return "ChangeConfiguration", {"key": key, "value": str(value)}


def change_availability(params: dict) -> tuple[str, dict]:
    operative = params["operative"]
    if not isinstance(operative, bool):
        raise ValueError("operative must be true or false.")
    return "ChangeAvailability", {
        "connectorId": _int(params["connector_id"], "Connector", minimum=0),
        "type": "Operative" if operative else "Inoperative",
    }


def unlock_connector(params: dict) -> tuple[str, dict]:
    # Connector 0 is the station itself: nothing to unlock there.
    return "UnlockConnector", {"connectorId": _int(params["connector_id"], "Connector", minimum=1)}


def remote_start(params: dict) -> tuple[str, dict]:
    id_tag = str(params["id_tag"]).strip()
    if not id_tag:
        raise ValueError("The id tag is empty.")
    payload: dict = {"idTag": id_tag}
    if params.get("connector_id") is not None:
        payload["connectorId"] = _int(params["connector_id"], "Connector", minimum=1)
    return "RemoteStartTransaction", payload


def remote_stop(params: dict) -> tuple[str, dict]:
    # 1.6 transaction ids are the backend's integers (Transaction.pk).
    transaction_id = _int(params["transaction_id"], "Transaction id", minimum=0)
    return "RemoteStopTransaction", {"transactionId": transaction_id}


def clear_cache(params: dict) -> tuple[str, dict]:
    return "ClearCache", {}


# 1.6 IdToken: at most 20 characters.
ID_TAG_MAX = 20


def send_local_list(params: dict) -> tuple[str, dict]:
    """SendLocalList: an entry without a status removes the tag (a differential update)."""
    update_type = params["update_type"]
    if update_type not in ("Full", "Differential"):
        raise ValueError("update_type must be Full or Differential.")
    entries = []
    for entry in params["entries"]:
        id_tag = str(entry["id_tag"])
        if not id_tag or len(id_tag) > ID_TAG_MAX:
            raise ValueError(f"A 1.6 id tag has 1 to {ID_TAG_MAX} characters: {id_tag!r}.")
        item: dict = {"idTag": id_tag}
        if entry.get("status"):
            info: dict = {"status": entry["status"]}
            if entry.get("expiry"):
                info["expiryDate"] = entry["expiry"]
            if entry.get("parent"):
                info["parentIdTag"] = entry["parent"]
            item["idTagInfo"] = info
        elif update_type == "Full":
            raise ValueError("A full list cannot remove tags.")
        entries.append(item)
    payload: dict = {
        "listVersion": _int(params["version"], "List version", minimum=1),
        "updateType": update_type,
    }
    if entries:
        payload["localAuthorizationList"] = entries
    return "SendLocalList", payload


def get_local_list_version(params: dict) -> tuple[str, dict]:
    return "GetLocalListVersion", {}


def local_list_version_answer(response: dict) -> str:
    """GetLocalListVersion has no status: a whole listVersion is the answer (-1: the
    charger has no local list support)."""
    version = response.get("listVersion")
    return ACCEPTED if isinstance(version, int) and not isinstance(version, bool) else ERROR
