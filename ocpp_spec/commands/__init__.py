"""Commands the backend sends to chargers, in version-neutral terms.

The panel asks for a command *kind* with version-neutral params; `build_call` turns it
into the OCPP action and payload of the station's version, and `interpret_result` turns
the charger's CALLRESULT into accepted / rejected / error. The kinds and everything about
them are one table, `kinds.COMMAND_KINDS`.

Version-neutral params:

- reset: {"type": "soft" | "hard"}
- trigger_message: {"message": one of TRIGGERABLE_MESSAGES, "connector_id": int | None,
  "evse_id": int | None}
- get_configuration: {"keys": list[str]} (empty: every key)
- change_configuration: {"key": str, "value": str}
- change_availability: {"connector_id": int (0 = whole station), "evse_id": int | None,
  "operative": bool}
- unlock_connector: {"connector_id": int, "evse_id": int | None}
- remote_start: {"id_tag": str, "connector_id": int | None, "evse_id": int | None}
- remote_stop: {"transaction_id": str}
- clear_cache: {}
- send_local_list: {"version": int ≥ 1, "update_type": "Full" | "Differential",
  "entries": [{"id_tag": str, "status": str | None (None: remove it, differential only),
  "expiry": ISO 8601 str | None, "parent": str, "token_type": str (2.x; "" = ISO14443)}]}
- get_local_list_version: {}
- get_base_report: {"report_base": str} (OCPP 2.x only)
"""

from __future__ import annotations

from jsonschema.exceptions import best_match
from ocpp.messages import get_validator

from ocpp_spec.commands.base import (
    ACCEPTED,
    ERROR,
    REJECTED,
    TRIGGERABLE,
    TRIGGERABLE_MESSAGES,
    TRIGGERED_PER_CONNECTOR,
    VERSIONS,
    CommandKind,
    CommandNotSupported,
    VersionCall,
)
from ocpp_spec.commands.kinds import COMMAND_KINDS

__all__ = [
    "ACCEPTED",
    "COMMAND_KINDS",
    "ERROR",
    "KINDS_ALLOWED_WHEN_PENDING",
    "REJECTED",
    "TRIGGERABLE",
    "TRIGGERABLE_MESSAGES",
    "TRIGGERED_PER_CONNECTOR",
    "CommandKind",
    "CommandNotSupported",
    "VersionCall",
    "build_call",
    "command_kind",
    "interpret_result",
    "kind_for_action",
]

# Kinds a station that is not Accepted may be sent (configuration and triggers).
KINDS_ALLOWED_WHEN_PENDING = frozenset(
    kind for kind, entry in COMMAND_KINDS.items() if entry.allowed_when_pending
)

_CALL = 2


def _action_kinds() -> dict[str, str]:
    kinds: dict[str, str] = {}
    for kind, entry in COMMAND_KINDS.items():
        for version_call in entry.calls:
            other = kinds.setdefault(version_call.action, kind)
            if other != kind:
                raise ValueError(f"{version_call.action} is the action of both {other} and {kind}")
    return kinds


# OCPP action → kind, in every version: an action belongs to one kind.
_ACTION_KINDS = _action_kinds()


def command_kind(kind: str) -> CommandKind:
    """The table's entry for `kind`; CommandNotSupported for an unknown one."""
    try:
        return COMMAND_KINDS[kind]
    except KeyError:
        raise CommandNotSupported(f"Unknown command {kind!r}.") from None


def _call(version: str, kind: str) -> VersionCall:
    entry = command_kind(kind)
    if version not in VERSIONS:
        raise CommandNotSupported(f"Commands are not available for OCPP version {version!r}.")
    version_call = entry.call_for(version)
    if version_call is None:
        raise CommandNotSupported(f"{kind} is not an OCPP {version} command.")
    return version_call


def build_call(version: str, kind: str, params: dict) -> tuple[str, dict]:
    """The OCPP action and payload for `kind` with `params`, for a station of `version`.

    The payload is checked against the `ocpp` library's schema of that version, so a bad
    value fails here, where the user can be told, and never at the charger.
    Raises ValueError (CommandNotSupported for an unknown kind or version).
    """
    version_call = _call(version, kind)
    try:
        action, payload = version_call.build(dict(params or {}))
    except KeyError as exc:
        raise ValueError(f"{kind} needs {exc.args[0]!r}.") from exc
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
    """What a CALLRESULT means for the Command: accepted, rejected or error."""
    return _call(version, kind).interpret(response)


def kind_for_action(action: str) -> str:
    """The command kind of an OCPP action name, in either version ('' if none)."""
    return _ACTION_KINDS.get(action, "")
