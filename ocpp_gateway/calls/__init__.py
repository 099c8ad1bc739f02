"""CALLs the backend sends to chargers, in version-neutral terms.

The panel asks for a command *kind* with version-neutral params (see `COMMAND_KINDS`);
`build_call` turns it into the OCPP action and payload of the station's version, and
`interpret_result` turns the charger's CALLRESULT into a `Command.Status` value. One
module per version (`v16`, `v201`), each with `build(kind, params)` and
`interpret(kind, response)`.

Version-neutral params:

- reset: {"type": "soft" | "hard"}
- trigger_message: {"message": "BootNotification" | "StatusNotification" | "Heartbeat"
  | "MeterValues", "connector_id": int | None, "evse_id": int | None}
- get_configuration: {"keys": list[str]} (empty: every key)
- change_configuration: {"key": str, "value": str}
- change_availability: {"connector_id": int (0 = whole station), "evse_id": int | None,
  "operative": bool}
- unlock_connector: {"connector_id": int, "evse_id": int | None}
- remote_start: {"id_tag": str, "connector_id": int | None, "evse_id": int | None}
- remote_stop: {"transaction_id": str}
- clear_cache: {}
- get_base_report: {"report_base": str} (OCPP 2.x only)
"""

from __future__ import annotations

import importlib
from types import ModuleType

from jsonschema.exceptions import best_match
from ocpp.messages import get_validator

COMMAND_KINDS = (
    "reset",
    "trigger_message",
    "get_configuration",
    "change_configuration",
    "change_availability",
    "unlock_connector",
    "remote_start",
    "remote_stop",
    "clear_cache",
    "get_base_report",
)

# A station that is not Accepted (Pending, in the pool) may only be configured and asked
# to send messages (OCPP 1.6 §4.2.1 / 2.0.1 B02.FR.01-03): anything else waits for Accepted.
KINDS_ALLOWED_WHEN_PENDING = frozenset(
    {"get_configuration", "change_configuration", "trigger_message", "get_base_report"}
)

# Command.Status values interpret_result may return.
ACCEPTED, REJECTED, ERROR = "accepted", "rejected", "error"

_CALL = 2


class CommandNotSupported(ValueError):
    """This kind of command (or this OCPP version) cannot be sent; the message says why."""


def _module(version: str) -> ModuleType:
    if version == "1.6":
        name = "ocpp_gateway.calls.v16"
    elif version in ("2.0.1", "2.1"):
        name = "ocpp_gateway.calls.v201"
    else:
        raise CommandNotSupported(f"Commands are not available for OCPP version {version!r}.")
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        raise CommandNotSupported(
            f"Commands to OCPP {version} stations are not implemented yet ({name} is missing)."
        ) from exc


def build_call(version: str, kind: str, params: dict) -> tuple[str, dict]:
    """The OCPP action and payload for `kind` with `params`, for a station of `version`.

    The payload is checked against the `ocpp` library's schema of that version, so a bad
    value fails here, where the user can be told, and never at the charger.
    Raises ValueError (CommandNotSupported for an unknown kind or version).
    """
    if kind not in COMMAND_KINDS:
        raise CommandNotSupported(f"Unknown command {kind!r}.")
    action, payload = _module(version).build(kind, dict(params or {}))
    try:
        validator = get_validator(_CALL, action, version)
    except OSError:
        return action, payload  # No schema shipped for it: the builder is the only check.
    error = best_match(validator.iter_errors(payload))
    if error is not None:
        path = ".".join(str(p) for p in error.absolute_path)
        raise ValueError(f"Invalid {action}: {path + ': ' if path else ''}{error.message}")
    return action, payload


def interpret_result(version: str, kind: str, response: dict) -> str:
    """The Command.Status ("accepted", "rejected" or "error") a CALLRESULT means."""
    if kind not in COMMAND_KINDS:
        raise CommandNotSupported(f"Unknown command {kind!r}.")
    return _module(version).interpret(kind, response)


def kind_for_action(action: str) -> str:
    """The command kind of an OCPP action name, in either version ('' if none)."""
    return _ACTION_KINDS.get(action, "")


# Both versions' action names; the kinds are the same in every version.
_ACTION_KINDS = {
    "Reset": "reset",
    "TriggerMessage": "trigger_message",
    "GetConfiguration": "get_configuration",
    "GetVariables": "get_configuration",
    "ChangeConfiguration": "change_configuration",
    "SetVariables": "change_configuration",
    "ChangeAvailability": "change_availability",
    "UnlockConnector": "unlock_connector",
    "RemoteStartTransaction": "remote_start",
    "RequestStartTransaction": "remote_start",
    "RemoteStopTransaction": "remote_stop",
    "RequestStopTransaction": "remote_stop",
    "ClearCache": "clear_cache",
    "GetBaseReport": "get_base_report",
}
