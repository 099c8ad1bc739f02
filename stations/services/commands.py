"""Commands to chargers: the durable Command record and its status lifecycle.

    queued ──(gateway picks it up)──> sent ──> accepted / rejected / error / timed_out
       └──(offline, refused, undeliverable)──> offline / error

The panel (or the system, e.g. a claim) asks through `command_request*`: the Command
row is written first, then the channel layer tells the consumer holding the charger's
socket, in whatever process it runs, to send it (`ocpp_gateway.commands.run_command`).
The channel layer is at-most-once, so a "go" that is lost leaves a queued Command that
`command_expire_stale` (every gateway process's liveness tick) finishes as an error
instead of leaving it queued forever.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from cpo.audit import Action, audit_record
from ocpp_spec.commands import KINDS_ALLOWED_WHEN_PENDING, build_call, kind_for_action
from ocpp_spec.passwords import redact_secrets
from stations.models import (
    Command,
    OcppVersion,
    Protocol,
    RegistrationStatus,
    Station,
)
from stations.services.access import station_check_write
from stations.services.command_outcomes import CommandOutcome, command_outcome_dispatch
from stations.services.id_tags import remote_start_refusal
from stations.services.notify import (
    DeliveryFailed,
    process_mailbox,
    station_notify,
    station_notify_many,
)

logger = logging.getLogger(__name__)

Status = Command.Status
ERROR_LIMIT = 500  # Command.error max_length
# After the call timeout, how long a sent Command may wait for its outcome to be written
# before it is declared timed out (the gateway process holding it may have died).
OUTCOME_GRACE = timedelta(seconds=30)


def _queue_timeout() -> timedelta:
    """How long a Command may stay queued before it is dropped instead of sent.

    The channel layer expires undelivered messages after 60 s; a charger busy with other
    calls holds each for at most the call timeout. A Reset sent minutes after it was asked
    for surprises everyone, so a Command that waited longer is never sent.
    """
    return timedelta(seconds=settings.OCPP_CALL_TIMEOUT + 60)


def command_request(*, station: Station, kind: str, params: dict, user) -> Command:
    """Ask the station's charger to carry out a command, for a user of the panel.

    Raises PermissionDenied (a viewer, or someone outside the station's CPO) and
    ValueError for a kind or params the station's OCPP version cannot take, and for a
    remote start whose tag the backend would refuse (nothing is recorded then: it is the
    user's input to correct, not a command outcome).
    The Command is returned as it stands after the request: `offline` at once for a
    station that is not connected, `error` for a non-configuration command to a station
    that is not Accepted or when the gateway cannot be reached, else `queued`.
    """
    station_check_write(user=user, station=station)
    if kind == "remote_start":
        # The charger would start, and the backend stop it at once (DeAuthorized).
        refusal = remote_start_refusal(station=station, id_tag=str(params.get("id_tag", "")))
        if refusal:
            raise ValueError(f"Not sent: {refusal}.")
    command = _command_create(station=station, kind=kind, params=params, requested_by=user)
    details = {"command": command.pk, "action": command.action, "status": command.status}
    audit_record(
        action=Action.COMMAND_REQUESTED,
        user=user,
        cpo=station.cpo_id,
        target=station.cbid,
        details=details,
    )
    return command


def command_request_system(
    *, station: Station, kind: str, params: dict, requested_by=None
) -> Command | None:
    """Like `command_request`, for commands the system sends on its own (no permission check).

    E.g. a claim's TriggerMessage(BootNotification). `requested_by` only records who caused
    it. Never raises for a station that cannot take the command (another protocol, an OCPP
    version without commands): that is logged and None returned, so the caller's own work
    stands.
    """
    try:
        return _command_create(station=station, kind=kind, params=params, requested_by=requested_by)
    except ValueError as exc:
        logger.warning("System command %s to %s not sent: %s", kind, station.cbid, exc)
        return None


def command_request_system_many(
    *, stations: list[Station], kind: str, params: dict, requested_by=None
) -> list[Command]:
    """`command_request_system` for many stations at once (a fleet-wide trigger).

    One query reads the stations, one insert writes the Commands, and after the commit
    one event loop hands every "go" to the channel layer (made one by one, each command
    would open a Redis connection of its own from sync code).
    Stations that cannot take the command are logged and left out of the result.
    """
    commands = []
    for fresh in Station.objects.filter(pk__in=[station.pk for station in stations]):
        try:
            commands.append(
                _command_build(fresh=fresh, kind=kind, params=params, requested_by=requested_by)
            )
        except ValueError as exc:
            logger.warning("System command %s to %s not sent: %s", kind, fresh.cbid, exc)
    with transaction.atomic():
        Command.objects.bulk_create(commands)
        queued = [
            (command.pk, command.station.channel_name)
            for command in commands
            if command.status == Status.QUEUED
        ]
        if queued:
            transaction.on_commit(lambda: _deliver_many(queued))
    if queued and not transaction.get_connection().in_atomic_block:
        # Delivery ran on commit and may have failed: return what the database says.
        stored = Command.objects.in_bulk([pk for pk, _ in queued])
        commands = [stored.get(command.pk, command) for command in commands]
    return commands


def _command_create(*, station: Station, kind: str, params: dict, requested_by) -> Command:
    # The caller's Station may be stale: connection state changes all the time. No lock:
    # a station that disconnects right after this read leaves a queued Command that
    # nobody picks up, which command_expire_stale finishes.
    fresh = Station.objects.get(pk=station.pk)
    command = _command_build(fresh=fresh, kind=kind, params=params, requested_by=requested_by)
    with transaction.atomic():
        command.save()
        if command.status == Status.QUEUED:
            channel_name = fresh.channel_name
            # Only once the row is committed: the consumer, maybe in another process,
            # reads it.
            transaction.on_commit(
                lambda: _deliver(command_id=command.pk, channel_name=channel_name)
            )
    if command.status == Status.QUEUED and not transaction.get_connection().in_atomic_block:
        # Delivery ran on commit and may have failed: return what the database says.
        command.refresh_from_db()
    return command


def _command_build(*, fresh: Station, kind: str, params: dict, requested_by) -> Command:
    """The unsaved Command for a freshly read station, its status decided."""
    if fresh.protocol != Protocol.OCPP:
        raise ValueError(f"{fresh.get_protocol_display()} stations take no OCPP commands.")
    # A station that never connected has no version yet; it is offline anyway, and the
    # record only needs the action's name.
    action, payload = build_call(fresh.ocpp_version or OcppVersion.V16, kind, params)
    command = Command(
        station=fresh,
        action=action,
        payload=payload,
        requested_by=requested_by,
        status=Status.QUEUED,
    )
    if not fresh.connected or not fresh.channel_name:
        command.status = Status.OFFLINE
        command.error = "The station is offline."
        command.completed_at = timezone.now()
    elif (
        fresh.registration_status != RegistrationStatus.ACCEPTED
        and kind not in KINDS_ALLOWED_WHEN_PENDING
    ):
        command.status = Status.ERROR
        command.error = (
            f"The station is {fresh.registration_status}, not Accepted: until it boots "
            "Accepted it takes only configuration and trigger commands."
        )
        command.completed_at = timezone.now()
    return command


def _deliver_many(queued: list[tuple[int, str]]) -> None:
    """After commit: one "go" per daphne process, to its mailbox, for all its Commands.

    channels-redis hands a process its messages one Redis round trip at a time, so a
    process gets one message, not one per Command; its mailbox (`ocpp_gateway.mailbox`)
    passes each Command to the consumer holding its charger. A channel outside any
    process mailbox gets its own message, as before.
    """
    groups: dict[str, list[tuple[str, int]]] = defaultdict(list)
    messages: list[tuple[str, dict]] = []
    owners: list[list[int]] = []
    for pk, channel_name in queued:
        mailbox = process_mailbox(channel_name)
        if mailbox is None:
            messages.append((channel_name, {"type": "station.command", "command_id": pk}))
            owners.append([pk])
        else:
            groups[mailbox].append((channel_name, pk))
    for mailbox, commands in groups.items():
        messages.append((mailbox, {"type": "station.commands", "commands": commands}))
        owners.append([pk for _, pk in commands])
    failures = station_notify_many(messages)
    for pks, failure in zip(owners, failures, strict=True):
        if failure is not None:
            Command.objects.filter(pk__in=pks, status=Status.QUEUED).update(
                status=Status.ERROR,
                error=f"Could not reach the gateway: {failure}"[:ERROR_LIMIT],
                completed_at=timezone.now(),
            )


def _deliver(*, command_id: int, channel_name: str) -> None:
    """After commit: tell the consumer holding the socket to send the Command."""
    try:
        station_notify(
            channel_name=channel_name, event_type="station.command", command_id=command_id
        )
    except DeliveryFailed as exc:
        Command.objects.filter(pk=command_id, status=Status.QUEUED).update(
            status=Status.ERROR,
            error=f"Could not reach the gateway: {exc}"[:ERROR_LIMIT],
            completed_at=timezone.now(),
        )


# ---- the gateway's side ---------------------------------------------------------------


@dataclass(frozen=True)
class CommandToSend:
    command_id: int
    action: str
    payload: dict


def command_mark_sent(*, command_id: int, station_id: int) -> CommandToSend | None:
    """Move a queued Command to sent, atomically; None if it is not ours to send.

    Not ours: unknown, of another station, no longer queued (already handled, or expired),
    or queued for too long (then it is finished as an error here and never sent).
    """
    now = timezone.now()
    queued = Command.objects.filter(pk=command_id, station_id=station_id, status=Status.QUEUED)
    # Conditional UPDATEs, not SELECT ... FOR UPDATE: one statement decides, and SQLite
    # (development) never has to upgrade a read lock, which fails at once when busy.
    with transaction.atomic():
        if queued.filter(created_at__gte=now - _queue_timeout()).update(
            status=Status.SENT, sent_at=now
        ):
            command = Command.objects.only("action", "payload").get(pk=command_id)
            return CommandToSend(
                command_id=command_id, action=command.action, payload=command.payload
            )
        queued.update(
            status=Status.ERROR,
            error="The command waited too long to be sent and was dropped.",
            completed_at=now,
        )
    return None


def command_record_result(
    *,
    command_id: int,
    status: str,
    response: dict | None,
    error: str = "",
) -> bool:
    """Write the outcome of a sent Command; False if it had already been finished.

    Then the handlers registered for its kind run (`command_outcomes`): e.g. a
    GetConfiguration answer updates the station's variables.
    """
    # A charger password in the answer (GetConfiguration, GetVariables) is never stored.
    response = redact_secrets(response)
    with transaction.atomic():
        updated = Command.objects.filter(pk=command_id, status=Status.SENT).update(
            status=status,
            response=response,
            error=error[:ERROR_LIMIT],
            completed_at=timezone.now(),
        )
        if not updated:
            return False
        command = Command.objects.only("station_id", "action", "payload").get(pk=command_id)
        _payload_redact(command)
        command_outcome_dispatch(
            CommandOutcome(
                command_id=command_id,
                station_id=command.station_id,
                kind=kind_for_action(command.action),
                action=command.action,
                payload=command.payload,
                status=status,
                response=response,
            )
        )
    return True


def command_record_failure(*, command_id: int, status: str, error: str) -> bool:
    """Finish a queued or sent Command that got no CALLRESULT; False if already finished."""
    updated = Command.objects.filter(pk=command_id, status__in=[Status.QUEUED, Status.SENT]).update(
        status=status, error=error[:ERROR_LIMIT], completed_at=timezone.now()
    )
    if updated:
        command = Command.objects.filter(pk=command_id).only("payload").first()
        if command is not None:
            _payload_redact(command)
    return bool(updated)


def _payload_redact(command: Command) -> None:
    """A finished Command keeps no charger password in its payload (a technician's
    ChangeConfiguration of AuthorizationKey, as a rotation's): it is never sent again."""
    redacted = redact_secrets(command.payload)
    if redacted != command.payload:
        Command.objects.filter(pk=command.pk).update(payload=redacted)


def command_display(command: Command) -> tuple[object, object]:
    """A Command's payload and response as anyone may see them: charger passwords blanked
    out, also while the command is still queued or sent (its payload holds the password
    until then)."""
    return redact_secrets(command.payload), redact_secrets(command.response)


def command_fail_queued(*, station_id: int, error: str) -> int:
    """Finish the station's queued Commands as offline (its connection ended); returns
    how many. A sent one is finished by the task waiting for its answer."""
    return Command.objects.filter(station_id=station_id, status=Status.QUEUED).update(
        status=Status.OFFLINE, error=error[:ERROR_LIMIT], completed_at=timezone.now()
    )


def command_expire_stale(*, now: datetime | None = None) -> int:
    """Finish Commands whose outcome can no longer come; returns how many.

    Queued ones whose "go" was lost (the channel layer dropped it, the process holding the
    socket died) and sent ones whose gateway never wrote an outcome. Run by every gateway
    process's liveness tick and by `manage.py sweep_stale_connections`, never by a read;
    the open Commands have an index of their own.
    """
    now = now or timezone.now()
    commands = Command.objects.all()
    call_timeout = timedelta(seconds=settings.OCPP_CALL_TIMEOUT)
    expired = commands.filter(status=Status.QUEUED, created_at__lt=now - _queue_timeout()).update(
        status=Status.ERROR,
        error="The gateway never picked the command up (the station may have disconnected).",
        completed_at=now,
    )
    expired += commands.filter(
        status=Status.SENT, sent_at__lt=now - call_timeout - OUTCOME_GRACE
    ).update(
        status=Status.TIMED_OUT,
        error="No outcome was recorded (the gateway may have stopped).",
        completed_at=now,
    )
    return expired


def station_command_history(*, station: Station, limit: int = 50) -> QuerySet[Command]:
    """The station's latest Commands, newest first."""
    return station.commands.select_related("requested_by").order_by("-created_at", "-id")[:limit]
