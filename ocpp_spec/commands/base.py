"""The shape of a command kind: what the table in `kinds` is made of."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

# What a charger's answer means for the Command (stations' Command.Status values).
ACCEPTED, REJECTED, ERROR = "accepted", "rejected", "error"

# The OCPP versions the backend sends commands to.
V16, V201, V21 = "1.6", "2.0.1", "2.1"
VERSIONS = (V16, V201, V21)

# Messages a TriggerMessage may ask for (both versions), in the order the panel offers them,
# and those of them that may name a connector / EVSE.
TRIGGERABLE_MESSAGES = ("BootNotification", "StatusNotification", "Heartbeat", "MeterValues")
TRIGGERABLE = frozenset(TRIGGERABLE_MESSAGES)
TRIGGERED_PER_CONNECTOR = frozenset({"StatusNotification", "MeterValues"})

# Version-neutral params → (OCPP action, payload). Raises ValueError for params the
# version cannot express; may return another kind's action (2.x get_configuration
# without keys asks GetBaseReport).
Builder = Callable[[dict], tuple[str, dict]]


class CommandNotSupported(ValueError):
    """This kind of command (or this OCPP version) cannot be sent; the message says why."""


@dataclass(frozen=True)
class VersionCall:
    """How one OCPP version carries a command kind. Made by `v16.call` / `v2.call`."""

    # The OCPP action (the name shown beside the kind's label).
    action: str
    build: Builder
    # The charger's `status` → ACCEPTED / REJECTED: the result statuses of the action.
    statuses: Mapping[str, str]
    # The CALLRESULT payload → ACCEPTED / REJECTED / ERROR (reads `statuses`).
    interpret: Callable[[Any], str]


@dataclass(frozen=True)
class CommandKind:
    """One command the backend can send to chargers, in every version it exists in.

    An entry of `ocpp_spec.commands.kinds.COMMAND_KINDS`. The panel's form for it
    (`stations.forms`, `kind = ...`) and what runs when its result arrives
    (`stations.services.command_outcomes.command_outcome(kind)`) are registered by kind.
    """

    kind: str
    # What it does, for people ("Restart charger"); translatable (gettext_lazy).
    label: Any
    v16: VersionCall | None = None
    # OCPP 2.0.1, and 2.1 unless `v21` says otherwise (2.1 messages are supersets).
    v2: VersionCall | None = None
    # OCPP 2.1 where it differs from 2.0.1 (a 2.1-only command sets only this).
    v21: VersionCall | None = None
    # A station that is not Accepted (Pending, in the pool) may be sent this (OCPP 1.6
    # §4.2.1 / 2.0.1 B02.FR.01-03: configuration and triggers only).
    allowed_when_pending: bool = False
    # It interrupts charging or service: the panel asks for a confirmation.
    disruptive: bool = False

    def call_for(self, version: str) -> VersionCall | None:
        """How `version` carries this command; None when it does not have it."""
        if version == V16:
            return self.v16
        if version == V201:
            return self.v2
        if version == V21:
            return self.v21 or self.v2
        return None

    @property
    def versions(self) -> frozenset[str]:
        """The OCPP versions that have this command."""
        return frozenset(v for v in VERSIONS if self.call_for(v) is not None)

    @property
    def calls(self) -> tuple[VersionCall, ...]:
        return tuple(c for c in (self.v16, self.v2, self.v21) if c is not None)

    def action_for(self, version: str) -> str:
        """The OCPP action name for a station of `version` (another version's if it has none)."""
        call = self.call_for(version) or self.calls[0]
        return call.action
