"""The one table of commands the backend sends to chargers.

Forms, services and the gateway all read it. Adding a command is one entry here (its
builders in `v16` / `v2`) plus its form in `stations.forms`; what runs when its result
arrives is registered with `stations.services.command_outcomes.command_outcome`.
ARCHITECTURE.md walks through it. The order is the order the station page offers them.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from ocpp_spec.commands import v2, v16
from ocpp_spec.commands.base import ACCEPTED, REJECTED, CommandKind

COMMAND_KINDS: dict[str, CommandKind] = {
    entry.kind: entry
    for entry in (
        CommandKind(
            "reset",
            label=_("Restart charger"),
            v16=v16.call("Reset", v16.reset, statuses={"Accepted": ACCEPTED, "Rejected": REJECTED}),
            v2=v2.call("Reset", v2.reset),
            disruptive=True,
        ),
        CommandKind(
            "trigger_message",
            label=_("Ask for a message"),
            v16=v16.call(
                "TriggerMessage",
                v16.trigger_message,
                statuses={"Accepted": ACCEPTED, "Rejected": REJECTED, "NotImplemented": REJECTED},
            ),
            v2=v2.call("TriggerMessage", v2.trigger_message),
            allowed_when_pending=True,
        ),
        CommandKind(
            "get_configuration",
            label=_("Read configuration"),
            v16=v16.call(
                "GetConfiguration",
                v16.get_configuration,
                statuses={},
                interpret=v16.configuration_answer,
            ),
            v2=v2.call("GetVariables", v2.get_configuration),
            allowed_when_pending=True,
        ),
        CommandKind(
            "change_configuration",
            label=_("Change configuration"),
            v16=v16.call(
                "ChangeConfiguration",
                v16.change_configuration,
                # RebootRequired: accepted, the charger acts after a reboot.
                statuses={
                    "Accepted": ACCEPTED,
                    "RebootRequired": ACCEPTED,
                    "Rejected": REJECTED,
                    "NotSupported": REJECTED,
                },
            ),
            v2=v2.call("SetVariables", v2.change_configuration),
            allowed_when_pending=True,
        ),
        CommandKind(
            "change_availability",
            label=_("Take out of or back into service"),
            v16=v16.call(
                "ChangeAvailability",
                v16.change_availability,
                # Scheduled: accepted, the charger acts once its transaction ends.
                statuses={"Accepted": ACCEPTED, "Scheduled": ACCEPTED, "Rejected": REJECTED},
            ),
            v2=v2.call("ChangeAvailability", v2.change_availability),
            disruptive=True,
        ),
        CommandKind(
            "unlock_connector",
            label=_("Unlock connector"),
            v16=v16.call(
                "UnlockConnector",
                v16.unlock_connector,
                statuses={
                    "Unlocked": ACCEPTED,
                    "UnlockFailed": REJECTED,
                    "NotSupported": REJECTED,
                },
            ),
            v2=v2.call("UnlockConnector", v2.unlock_connector),
            disruptive=True,
        ),
        CommandKind(
            "remote_start",
            label=_("Start charging"),
            v16=v16.call(
                "RemoteStartTransaction",
                v16.remote_start,
                statuses={"Accepted": ACCEPTED, "Rejected": REJECTED},
            ),
            v2=v2.call("RequestStartTransaction", v2.remote_start),
        ),
        CommandKind(
            "remote_stop",
            label=_("Stop charging"),
            v16=v16.call(
                "RemoteStopTransaction",
                v16.remote_stop,
                statuses={"Accepted": ACCEPTED, "Rejected": REJECTED},
            ),
            v2=v2.call("RequestStopTransaction", v2.remote_stop),
            disruptive=True,
        ),
        CommandKind(
            "clear_cache",
            label=_("Clear authorization cache"),
            v16=v16.call(
                "ClearCache", v16.clear_cache, statuses={"Accepted": ACCEPTED, "Rejected": REJECTED}
            ),
            v2=v2.call("ClearCache", v2.clear_cache),
        ),
        CommandKind(
            "send_local_list",
            label=_("Send local authorization list"),
            v16=v16.call(
                "SendLocalList",
                v16.send_local_list,
                statuses={
                    "Accepted": ACCEPTED,
                    "Failed": REJECTED,
                    "NotSupported": REJECTED,
                    "VersionMismatch": REJECTED,
                },
            ),
            v2=v2.call("SendLocalList", v2.send_local_list),
        ),
        CommandKind(
            "get_local_list_version",
            label=_("Read local list version"),
            v16=v16.call(
                "GetLocalListVersion",
                v16.get_local_list_version,
                statuses={},
                interpret=v16.local_list_version_answer,
            ),
            v2=v2.call(
                "GetLocalListVersion",
                v2.get_local_list_version,
                interpret=v2.local_list_version_answer,
            ),
        ),
        CommandKind(
            "get_base_report",
            label=_("Read device model"),
            v2=v2.call("GetBaseReport", v2.get_base_report),
            allowed_when_pending=True,
        ),
    )
}
