"""The evaluator: what is wrong now (conditions) and what just happened (events) → alerts.

One pass (`alerts_evaluate`) runs in one transaction, in one process at a time (the
`manage.py alerts` worker holds an advisory lock, `worker.py`):

1. Conditions that last (a station offline, a connector Faulted, a boot Rejected) are read
   from the stations' current state. A new one becomes a *pending* alert; it *opens* once it
   has lasted the rule's delay; a pending one that clears first is deleted (debounce: nothing
   was raised); an open or acknowledged one that clears is *resolved*.
2. Events (a reboot, a security event, a failed firmware update, a session stopped by the
   backend) are read from the OCPP message log and the sessions since the last pass. Each
   is an alert of its own that opens after the delay; it resolves when acknowledged (there
   is nothing to clear), a failed firmware update also when the station later reports a
   firmware Installed.
3. Local list out of sync is reported by the code that detects it (`alert_condition_report`).

Every alert that opens or resolves joins a `Notification` of its CPO, rule and change that
is still collecting (for `ALERTS_GROUP_WINDOW` seconds): a site's power cut that takes 1,000
stations offline is one message.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from alerts.models import (
    EVENT_KEY_PREFIX,
    Alert,
    AlertRule,
    EvaluatorState,
    Notification,
    RuleKind,
)
from alerts.services.rules import alert_rules_all
from stations.models import (
    Command,
    Connector,
    OcppMessage,
    RegistrationStatus,
    Station,
    Transaction,
)

# Kinds whose condition is read from the current state each pass.
STATE_KINDS = (RuleKind.OFFLINE, RuleKind.FAULTED, RuleKind.BOOT_REJECTED)
LIVE = (Alert.State.PENDING, Alert.State.OPEN, Alert.State.ACKNOWLEDGED)
RAISED = (Alert.State.OPEN, Alert.State.ACKNOWLEDGED)

# Events are re-read this far back each pass: log rows are written up to a flush interval
# after they are stamped (and later while the database was away). Seen events are skipped.
EVENT_OVERLAP = timedelta(seconds=60)
# A reboot within this long of a Reset, firmware update or triggered boot was asked for.
REQUESTED_REBOOT_WINDOW = timedelta(minutes=15)
# BootNotification reasons (2.x) that the backend asked for; 1.6 sends no reason.
REQUESTED_BOOT_REASONS = frozenset({"RemoteReset", "ScheduledReset", "FirmwareUpdate", "Triggered"})
FIRMWARE_FAILED_STATUSES = frozenset(
    {
        "DownloadFailed",
        "InstallationFailed",
        "InstallVerificationFailed",
        "InvalidSignature",
        "SignatureVerificationFailed",
    }
)
FIRMWARE_ACTIONS = ("FirmwareStatusNotification", "SignedFirmwareStatusNotification")
EVENT_ACTIONS = ("BootNotification", "SecurityEventNotification", *FIRMWARE_ACTIONS)
# StopTransaction / TransactionEvent stop reasons that say the backend ended the session.
BACKEND_STOP_REASONS = frozenset({"Remote", "DeAuthorized"})


@dataclass(frozen=True)
class Condition:
    cpo_id: int
    station_id: int
    kind: str
    key: str = ""
    since: datetime | None = None
    detail: str = ""
    error_code: str = ""
    connector_id: int | None = None


@dataclass
class PassResult:
    opened: int = 0
    resolved: int = 0
    pending: int = 0


def connector_key(evse_id: int | None, connector_id: int) -> str:
    return f"{evse_id}/{connector_id}" if evse_id else str(connector_id)


# ---- conditions ------------------------------------------------------------------------


def _enabled_cpos(rules: dict[int, dict[str, AlertRule]], kind: str) -> list[int]:
    return [cpo_id for cpo_id, by_kind in rules.items() if by_kind[kind].enabled]


def _conditions(rules: dict[int, dict[str, AlertRule]], now: datetime) -> list[Condition]:
    found = []
    offline = Station.objects.filter(
        cpo_id__in=_enabled_cpos(rules, RuleKind.OFFLINE),
        connected=False,
        disconnected_at__isnull=False,
    ).values_list("pk", "cpo_id", "disconnected_at")
    for station_id, cpo_id, since in offline:
        found.append(
            Condition(cpo_id, station_id, RuleKind.OFFLINE, since=since, detail="Not connected")
        )
    faulted = Connector.objects.filter(
        station__cpo_id__in=_enabled_cpos(rules, RuleKind.FAULTED), status="Faulted"
    ).values_list(
        "pk", "station_id", "station__cpo_id", "evse_id", "connector_id", "error_code", "info"
    )
    for pk, station_id, cpo_id, evse_id, connector_id, error_code, info in faulted:
        codes = rules[cpo_id][RuleKind.FAULTED].error_code_set()
        if codes and error_code not in codes:
            continue
        where = (
            f"EVSE {evse_id} connector {connector_id}" if evse_id else f"connector {connector_id}"
        )
        detail = f"{where} Faulted: {error_code or 'no error code'}" + (
            f" ({info})" if info else ""
        )
        found.append(
            Condition(
                cpo_id,
                station_id,
                RuleKind.FAULTED,
                key=connector_key(evse_id, connector_id),
                detail=detail[:500],
                error_code=error_code or "",
                connector_id=pk,
            )
        )
    rejected = Station.objects.filter(
        cpo_id__in=_enabled_cpos(rules, RuleKind.BOOT_REJECTED),
        registration_status=RegistrationStatus.REJECTED,
    ).values_list("pk", "cpo_id", "last_boot_at")
    for station_id, cpo_id, since in rejected:
        found.append(
            Condition(
                cpo_id, station_id, RuleKind.BOOT_REJECTED, since=since, detail="Boot Rejected"
            )
        )
    return found


# ---- events ----------------------------------------------------------------------------


def _reboot_requested(station_id: int, at: datetime) -> bool:
    """Whether the backend asked for the boot (Reset, a firmware update, a triggered boot)."""
    asked = Command.objects.filter(
        station_id=station_id,
        created_at__gte=at - REQUESTED_REBOOT_WINDOW,
        created_at__lte=at,
    ).filter(
        Q(action__in=("Reset", "UpdateFirmware", "SignedUpdateFirmware"))
        | Q(action="TriggerMessage", payload__requestedMessage="BootNotification")
    )
    return asked.exists()


def _events(
    rules: dict[int, dict[str, AlertRule]], since: datetime, now: datetime
) -> tuple[list[Condition], set[int]]:
    """Events since `since`, and the stations that reported a firmware Installed."""
    cpo_of = dict(
        Station.objects.filter(cpo__isnull=False).values_list("pk", "cpo_id")
    )  # only stations with a CPO raise alerts
    frames = (
        OcppMessage.objects.filter(
            created_at__gt=since,
            created_at__lte=now,
            direction=OcppMessage.Direction.IN,
            message_type=2,
            action__in=EVENT_ACTIONS,
            station_id__isnull=False,
        )
        .order_by("created_at", "id")
        .values_list("pk", "station_id", "action", "payload", "created_at")
    )
    found: list[Condition] = []
    installed: set[int] = set()
    for pk, station_id, action, payload, at in frames:
        cpo_id = cpo_of.get(station_id)
        if cpo_id is None or cpo_id not in rules:
            continue
        payload = payload if isinstance(payload, dict) else {}
        key = f"{EVENT_KEY_PREFIX}msg:{pk}"
        if action == "BootNotification":
            reason = payload.get("reason", "")
            if reason in REQUESTED_BOOT_REASONS or _reboot_requested(station_id, at):
                continue
            detail = f"Rebooted ({reason})" if reason else "Rebooted"
            found.append(Condition(cpo_id, station_id, RuleKind.REBOOT, key, at, detail))
        elif action == "SecurityEventNotification":
            event_type = str(payload.get("type", ""))
            types = rules[cpo_id][RuleKind.SECURITY_EVENT].error_code_set()
            if types and event_type not in types:
                continue
            info = payload.get("techInfo") or payload.get("techinfo") or ""
            detail = f"{event_type}: {info}" if info else event_type
            found.append(
                Condition(
                    cpo_id,
                    station_id,
                    RuleKind.SECURITY_EVENT,
                    key,
                    at,
                    detail[:500],
                    error_code=event_type[:50],
                )
            )
        else:
            status = str(payload.get("status", ""))
            if status == "Installed":
                installed.add(station_id)
            elif status in FIRMWARE_FAILED_STATUSES:
                found.append(
                    Condition(
                        cpo_id,
                        station_id,
                        RuleKind.FIRMWARE_FAILED,
                        key,
                        at,
                        f"Firmware update: {status}",
                        error_code=status,
                    )
                )
    stops = Transaction.objects.filter(
        stop_received_at__gt=since,
        stop_received_at__lte=now,
        stop_reason__in=BACKEND_STOP_REASONS,
        station__cpo__isnull=False,
    ).values_list("pk", "station_id", "station__cpo_id", "stop_reason", "stop_received_at")
    for pk, station_id, cpo_id, reason, at in stops:
        found.append(
            Condition(
                cpo_id,
                station_id,
                RuleKind.BACKEND_STOP,
                f"{EVENT_KEY_PREFIX}tx:{pk}",
                at,
                f"Session {pk} stopped by the backend ({reason})",
            )
        )
    return found, installed


# ---- the pass --------------------------------------------------------------------------


def _new_alert(condition: Condition, now: datetime) -> Alert:
    return Alert(
        cpo_id=condition.cpo_id,
        station_id=condition.station_id,
        connector_id=condition.connector_id,
        kind=condition.kind,
        key=condition.key,
        detail=condition.detail,
        error_code=condition.error_code,
        first_seen_at=min(condition.since or now, now),
    )


def _resolve(alert: Alert, now: datetime, changes: dict) -> None:
    """Resolve a live alert; a pending one never opened: it goes without a trace."""
    if alert.state == Alert.State.PENDING:
        alert.delete()
        return
    alert.state = Alert.State.RESOLVED
    alert.resolved_at = now
    alert.save(update_fields=["state", "resolved_at"])
    changes[Notification.Change.RESOLVED].append(alert)


def alerts_notify(alerts: Iterable[Alert], change: str, now: datetime) -> None:
    """Add alerts to the collecting notification of their CPO, kind and change (grouping)."""
    groups: dict[tuple[int, str], list[Alert]] = defaultdict(list)
    for alert in alerts:
        groups[(alert.cpo_id, alert.kind)].append(alert)
    window = timedelta(seconds=settings.ALERTS_GROUP_WINDOW)
    for (cpo_id, kind), members in groups.items():
        notification = (
            Notification.objects.select_for_update()
            .filter(cpo_id=cpo_id, kind=kind, change=change, dispatched_at__isnull=True)
            .order_by("created_at")
            .first()
        )
        if notification is None:
            notification = Notification.objects.create(
                cpo_id=cpo_id, kind=kind, change=change, created_at=now, send_after=now + window
            )
        notification.alerts.add(*members)


def alerts_evaluate(*, now: datetime | None = None) -> PassResult:
    """One pass of the evaluator (see the module's docstring)."""
    now = now or timezone.now()
    result = PassResult()
    changes: dict[str, list[Alert]] = defaultdict(list)
    with transaction.atomic():
        rules = alert_rules_all()
        state_row, _ = EvaluatorState.objects.select_for_update().get_or_create(pk=1)
        since = (state_row.events_scanned_until or now - EVENT_OVERLAP) - EVENT_OVERLAP
        current = {(c.station_id, c.kind, c.key): c for c in _conditions(rules, now)}
        events, installed = _events(rules, since, now)
        live = {
            (a.station_id, a.kind, a.key): a
            for a in Alert.objects.filter(state__in=LIVE).select_related("station")
        }
        # Alerts whose rule was switched off, or whose station left the CPO: quietly gone.
        for identity, alert in list(live.items()):
            rule = rules.get(alert.cpo_id, {}).get(alert.kind)
            if rule is None or not rule.enabled or alert.station.cpo_id != alert.cpo_id:
                if alert.state == Alert.State.PENDING:
                    alert.delete()
                else:
                    alert.state, alert.resolved_at = Alert.State.RESOLVED, now
                    alert.save(update_fields=["state", "resolved_at"])
                del live[identity]
        # Lasting conditions that cleared.
        for identity, alert in list(live.items()):
            cleared = (alert.kind in STATE_KINDS and identity not in current) or (
                alert.kind == RuleKind.FIRMWARE_FAILED and alert.station_id in installed
            )
            if cleared:
                _resolve(alert, now, changes)
                del live[identity]
                result.resolved += alert.state == Alert.State.RESOLVED
        # New conditions and events become pending alerts.
        seen_events = set(
            Alert.objects.filter(
                key__in=[e.key for e in events], station_id__in={e.station_id for e in events}
            ).values_list("station_id", "kind", "key")
        )
        for condition in [*current.values(), *events]:
            identity = (condition.station_id, condition.kind, condition.key)
            if identity in live or identity in seen_events:
                continue
            if not rules[condition.cpo_id][condition.kind].enabled:
                continue
            if condition.kind == RuleKind.FIRMWARE_FAILED and condition.station_id in installed:
                continue
            live[identity] = _new_alert(condition, now)
        Alert.objects.bulk_create([alert for alert in live.values() if alert.pk is None])
        # Pending alerts that have lasted their delay open.
        opened = []
        for alert in live.values():
            if alert.state != Alert.State.PENDING:
                continue
            delay = timedelta(seconds=rules[alert.cpo_id][alert.kind].delay_seconds)
            if alert.first_seen_at + delay <= now:
                alert.state, alert.opened_at = Alert.State.OPEN, now
                opened.append(alert)
            else:
                result.pending += 1
        Alert.objects.filter(pk__in=[alert.pk for alert in opened]).update(
            state=Alert.State.OPEN, opened_at=now
        )
        changes[Notification.Change.OPENED].extend(opened)
        result.opened = len(opened)
        for change, alerts in changes.items():
            alerts_notify(alerts, change, now)
        state_row.events_scanned_until = now
        state_row.save(update_fields=["events_scanned_until"])
    return result


def alert_condition_report(
    *, station_id: int, kind: str, active: bool, key: str = "", detail: str = ""
) -> None:
    """The hook for conditions detected elsewhere (local list out of sync): raise or clear.

    Raised, the alert opens after the rule's delay at the evaluator's next pass; cleared, it
    resolves (or, still pending, disappears). A station without a CPO raises nothing.
    """
    now = timezone.now()
    with transaction.atomic():
        station = Station.objects.filter(pk=station_id).values("cpo_id").first()
        if station is None or station["cpo_id"] is None:
            return
        alert = (
            Alert.objects.select_for_update()
            .filter(station_id=station_id, kind=kind, key=key, state__in=LIVE)
            .first()
        )
        if active and alert is None:
            Alert.objects.create(
                cpo_id=station["cpo_id"],
                station_id=station_id,
                kind=kind,
                key=key,
                detail=detail[:500],
                first_seen_at=now,
            )
        elif not active and alert is not None:
            changes: dict[str, list[Alert]] = defaultdict(list)
            _resolve(alert, now, changes)
            for change, alerts in changes.items():
                alerts_notify(alerts, change, now)
