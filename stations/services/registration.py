"""Chargers connecting, booting and disconnecting: how stations enter the pool."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from ocpp_spec.commands import ACCEPTED, REJECTED
from ocpp_spec.passwords import (
    PASSWORD_MAX,
    PASSWORD_MIN,
    generate_password,
    hash_password,
    needs_rehash,
    password_in,
    password_setting,
    redact_password,
    verify_password,
)
from stations.models import (
    Command,
    ConnectionAttempt,
    OcppVersion,
    Protocol,
    RegistrationStatus,
    Station,
)
from stations.services.command_outcomes import CommandOutcome, command_outcome
from stations.services.commands import command_request, command_request_system

logger = logging.getLogger(__name__)

# Longest value kept for what the charger reports about itself (model field length).
REPORTED_FIELD_MAX = 255


class ConnectionRefused(Exception):
    """A handshake the backend refuses; `reason` is a ConnectionAttempt.Reason."""

    def __init__(self, reason: str, detail: str = "", *, cbid: str = ""):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        # The station's own spelling of the CBID, so failures of one station add up
        # whatever case the charger (or an attacker) uses.
        self.cbid = cbid


@dataclass
class StationSession:
    station_id: int
    cbid: str
    cpo_id: int | None
    registration_status: str
    lenient: bool
    free_usage: bool
    # The channel of an older connection of the same station, to be closed.
    replaced_channel: str = ""


@dataclass
class BootInfo:
    vendor: str = ""
    model: str = ""
    serial_number: str = ""
    charge_box_serial_number: str = ""
    firmware_version: str = ""
    iccid: str = ""
    imsi: str = ""
    meter_type: str = ""
    meter_serial_number: str = ""
    reason: str = ""


@dataclass
class BootDecision:
    status: str
    interval: int


def pool_station_name(now: datetime) -> str:
    return f"Created {now:%Y-%m-%d %H:%M}"


def station_open_session(
    *,
    cbid: str,
    version: str,
    channel_name: str,
    credentials: tuple[str, str] | None,
    secure: bool,
    remote_addr: str = "",
) -> StationSession:
    """Admit a charger's websocket: find or create its station, check its credentials.

    A CBID never seen before lands in the pool (unless unknown stations are refused, the
    source address created too many pool stations lately, or the pool is full).
    The newest connection wins: the previous channel, if any, is returned to be closed.
    Raises ConnectionRefused.
    """
    now = timezone.now()
    station = Station.objects.by_cbid(cbid).first()
    if station is None:
        if not settings.OCPP_ALLOW_UNKNOWN_STATIONS:
            raise ConnectionRefused(ConnectionAttempt.Reason.UNKNOWN_CBID, "unknown CBID")
        _check_pool_limits(remote_addr=remote_addr, now=now)
        station = _station_create_in_pool(
            cbid=cbid, now=now, remote_addr=remote_addr, version=version, channel_name=channel_name
        )
        if station.channel_name == channel_name:
            # Created connected by this very call: a new station has no password and no
            # older connection. One INSERT did it all.
            return _session_of(station)

    _check_credentials(
        station,
        cbid=cbid,
        version=version,
        credentials=credentials,
        secure=secure,
        remote_addr=remote_addr,
        now=now,
    )
    replaced = _session_take_over(station, version=version, channel_name=channel_name, now=now)
    return _session_of(station, replaced_channel=replaced if replaced != channel_name else "")


def _session_take_over(station: Station, *, version: str, channel_name: str, now: datetime) -> str:
    """Make `channel_name` the station's connection; returns the one it replaces ("" if none).

    One conditional UPDATE instead of a locked read and a save: it applies only if nobody
    changed the connection since `station` was read; otherwise read again and retry.
    """
    while True:
        replaced = station.channel_name if station.connected else ""
        updated = Station.objects.filter(
            pk=station.pk, connected=station.connected, channel_name=station.channel_name
        ).update(
            connected=True,
            connected_at=now,
            last_seen=now,
            channel_name=channel_name,
            ocpp_version=version,
            first_connected_at=Coalesce(F("first_connected_at"), Value(now)),
            updated_at=now,
        )
        if updated:
            return replaced
        # Another connection of the same station came or went meanwhile.
        station = Station.objects.get(pk=station.pk)


def _session_of(station: Station, *, replaced_channel: str = "") -> StationSession:
    return StationSession(
        station_id=station.pk,
        cbid=station.cbid,
        cpo_id=station.cpo_id,
        registration_status=station.registration_status,
        lenient=station.lenient_validation,
        free_usage=station.free_usage,
        replaced_channel=replaced_channel,
    )


def _check_pool_limits(*, remote_addr: str, now: datetime) -> None:
    """Handshake spam: thousands of random CBIDs must not fill the pool and the database.

    Counted in the database, so the limits hold across daphne processes. Chargers behind
    one NAT address share the per-address budget: size OCPP_POOL_NEW_PER_ADDRESS_PER_HOUR
    for the largest fleet that is installed (first-connects) behind one address.
    """
    per_address = settings.OCPP_POOL_NEW_PER_ADDRESS_PER_HOUR
    if per_address and remote_addr:
        created = Station.objects.filter(
            created_from_addr=remote_addr[:64], created_at__gte=now - timedelta(hours=1)
        ).count()
        if created >= per_address:
            raise ConnectionRefused(
                ConnectionAttempt.Reason.RATE_LIMITED,
                f"{created} new stations from this address in the last hour",
            )
    pool_max = settings.OCPP_POOL_MAX_SIZE
    if pool_max and _pool_size(pool_max) >= pool_max:
        raise ConnectionRefused(
            ConnectionAttempt.Reason.POOL_FULL, f"the pool holds {pool_max} stations or more"
        )


# Counting the pool is O(pool): a process counts it at most every POOL_COUNT_TTL seconds
# and adds what it creates itself, and counts exactly every time once that estimate is
# within POOL_EXACT_MARGIN (a tenth of the limit, at least 10) of the limit. Between two
# counts only other processes' creations go unseen, far fewer than the margin (each address
# creates at most OCPP_POOL_NEW_PER_ADDRESS_PER_HOUR).
POOL_COUNT_TTL = 10.0
_pool_lock = threading.Lock()
_pool_estimate: dict[str, float | int | None] = {"count": None, "at": 0.0}


def _pool_size(pool_max: int) -> int:
    margin = max(pool_max // 10, 10)
    with _pool_lock:
        count, at = _pool_estimate["count"], _pool_estimate["at"]
    if count is None or time.monotonic() - at > POOL_COUNT_TTL or count >= pool_max - margin:
        count = Station.objects.in_pool().count()
        with _pool_lock:
            _pool_estimate.update(count=count, at=time.monotonic())
    return count


def _pool_grew() -> None:
    with _pool_lock:
        if _pool_estimate["count"] is not None:
            _pool_estimate["count"] += 1


def _station_create_in_pool(
    *, cbid: str, now: datetime, remote_addr: str, version: str, channel_name: str
) -> Station:
    """A new pool station, created already connected on `channel_name`.

    If another connection of the same CBID created it a moment ago, that station is
    returned as it is (its channel is not ours).
    """
    try:
        with transaction.atomic():
            station = Station.objects.create(
                cbid=cbid,
                protocol=Protocol.OCPP,
                name=pool_station_name(timezone.localtime(now)),
                registration_status=RegistrationStatus.PENDING,
                created_from_addr=remote_addr[:64],
                connected=True,
                connected_at=now,
                first_connected_at=now,
                last_seen=now,
                channel_name=channel_name,
                ocpp_version=version,
            )
    except IntegrityError:
        return Station.objects.by_cbid(cbid).get()
    _pool_grew()
    logger.info("New station %s landed in the pool", cbid)
    return station


def _check_credentials(
    station: Station,
    *,
    cbid: str,
    version: str,
    credentials: tuple[str, str] | None,
    secure: bool,
    remote_addr: str = "",
    now: datetime | None = None,
) -> None:
    if station.security_profile >= 2 and not secure:
        raise ConnectionRefused(
            ConnectionAttempt.Reason.PLAIN_WS,
            "security profile 2 requires wss (TLS)",
            cbid=station.cbid,
        )
    if not station.auth_password_hash:
        return
    _check_not_locked_out(station, remote_addr=remote_addr, now=now or timezone.now())

    def bad(detail: str) -> ConnectionRefused:
        return ConnectionRefused(ConnectionAttempt.Reason.BAD_PASSWORD, detail, cbid=station.cbid)

    if credentials is None:
        raise bad("no Basic auth credentials")
    username, password = credentials
    if username != cbid:
        raise bad("username is not the CBID")
    if verify_password(password, station.auth_password_hash, version=version):
        if needs_rehash(station.auth_password_hash):
            _password_rehash(station, password=password, version=version)
        return
    pending = station.auth_password_pending_hash
    if pending and verify_password(password, pending, version=version):
        # The charger uses the rotated password: it has it, so it becomes the password.
        Station.objects.filter(pk=station.pk, auth_password_pending_hash=pending).update(
            auth_password_hash=pending, auth_password_pending_hash=""
        )
        logger.info("Station %s logged in with its new password: rotation done", station.cbid)
        return
    raise bad("wrong password")


def _check_not_locked_out(station: Station, *, remote_addr: str, now: datetime) -> None:
    """Brute force: too many recent failures refuse the attempt without checking it.

    Failures are the aggregated ConnectionAttempt rows (shared by every process). The
    cool-down ends when the failures have aged out of OCPP_AUTH_FAILURE_WINDOW.
    """
    since = now - timedelta(seconds=settings.OCPP_AUTH_FAILURE_WINDOW)
    failures = ConnectionAttempt.objects.filter(
        reason=ConnectionAttempt.Reason.BAD_PASSWORD, created_at__gte=since
    )
    per_cbid = settings.OCPP_AUTH_MAX_FAILURES_PER_CBID
    if per_cbid and _total(failures.filter(cbid=station.cbid)) >= per_cbid:
        raise ConnectionRefused(
            ConnectionAttempt.Reason.RATE_LIMITED,
            "too many failed passwords for this CBID; try again later",
        )
    per_addr = settings.OCPP_AUTH_MAX_FAILURES_PER_ADDRESS
    if per_addr and remote_addr and _total(failures.filter(remote_addr=remote_addr)) >= per_addr:
        raise ConnectionRefused(
            ConnectionAttempt.Reason.RATE_LIMITED,
            "too many failed passwords from this address; try again later",
        )


def _total(attempts) -> int:
    return attempts.aggregate(total=Sum("count"))["total"] or 0


def _password_rehash(station: Station, *, password: str, version: str) -> None:
    # The charger may have sent the hex form (1.6): store the text it stands for.
    if version == "1.6" and not verify_password(
        password, station.auth_password_hash, version="2.0.1"
    ):
        password = bytes.fromhex(password).decode("utf-8")
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        return
    Station.objects.filter(pk=station.pk, auth_password_hash=station.auth_password_hash).update(
        auth_password_hash=hash_password(password)
    )


def station_close_session(*, station_id: int, channel_name: str) -> bool:
    """Mark the station offline, unless a newer connection has taken over since."""
    updated = Station.objects.filter(pk=station_id, channel_name=channel_name).update(
        connected=False,
        channel_name="",
        disconnected_at=timezone.now(),
    )
    return bool(updated)


def station_session_reload(*, station_id: int) -> StationSession:
    """Current registration facts, after the station was claimed or its settings changed."""
    station = Station.objects.get(pk=station_id)
    return StationSession(
        station_id=station.pk,
        cbid=station.cbid,
        cpo_id=station.cpo_id,
        registration_status=station.registration_status,
        lenient=station.lenient_validation,
        free_usage=station.free_usage,
    )


def station_boot(*, station_id: int, info: BootInfo) -> BootDecision:
    """Store what a BootNotification told and decide the answer.

    A station with a CPO is Accepted with the heartbeat interval. A station in the pool
    gets OCPP_POOL_BOOT_STATUS (Pending by default) with the retry interval. The status is
    persisted: chargers do not boot again after a mere reconnect.
    """
    now = timezone.now()
    reported = {
        ("boot_reason" if field == "reason" else field): (value or "")[:REPORTED_FIELD_MAX]
        for field, value in vars(info).items()
    }
    station = Station.objects.filter(pk=station_id)
    # One UPDATE each (no locked read, no save of every column); whether the station has
    # a CPO is decided by the UPDATE itself, so a claim at the same moment cannot slip in.
    if station.filter(cpo__isnull=False).update(
        registration_status=RegistrationStatus.ACCEPTED,
        last_boot_at=now,
        updated_at=now,
        **reported,
    ):
        status = RegistrationStatus.ACCEPTED
    elif station.filter(cpo__isnull=True).update(
        registration_status=settings.OCPP_POOL_BOOT_STATUS,
        last_boot_at=now,
        updated_at=now,
        **reported,
    ):
        status = settings.OCPP_POOL_BOOT_STATUS
    else:
        raise Station.DoesNotExist(f"No station {station_id}")
    if status == RegistrationStatus.ACCEPTED:
        interval = settings.OCPP_HEARTBEAT_INTERVAL
    else:
        interval = settings.OCPP_POOL_RETRY_INTERVAL
    return BootDecision(status=status, interval=interval)


# Refusals kept apart per CBID (brute force is counted per CBID). Every other reason is
# aggregated per address whatever the CBID: random CBIDs must not make a row each.
REFUSALS_PER_CBID = frozenset(
    {ConnectionAttempt.Reason.BAD_PASSWORD, ConnectionAttempt.Reason.PLAIN_WS}
)
REFUSAL_BUCKET = timedelta(minutes=1)


def connection_refusal_record(
    *, cbid: str, remote_addr: str, reason: str, detail: str, count: int = 1
) -> None:
    """Count a refused handshake (`count` of them) in the list superusers read.

    One row per address, reason (and CBID for password failures) and minute, with a
    count: a spammer costs one UPDATE per attempt, never a growing table.
    """
    now = timezone.now()
    cbid, remote_addr, detail = cbid[:100], remote_addr[:64], detail[:255]
    bucket = ConnectionAttempt.objects.filter(
        remote_addr=remote_addr, reason=reason, created_at__gte=now - REFUSAL_BUCKET
    )
    if reason in REFUSALS_PER_CBID:
        bucket = bucket.filter(cbid=cbid)
    with transaction.atomic():
        row = bucket.order_by("-created_at").values_list("pk", flat=True).first()
        if row is not None:
            ConnectionAttempt.objects.filter(pk=row).update(
                count=F("count") + count, last_at=now, detail=detail
            )
            return
        ConnectionAttempt.objects.create(
            cbid=cbid,
            remote_addr=remote_addr,
            reason=reason,
            detail=detail,
            last_at=now,
            count=count,
        )


# ---- stale connection state -------------------------------------------------------------


def stale_cutoff(now: datetime | None = None) -> datetime:
    """Stations "connected" but not seen since this moment have lost their process."""
    now = now or timezone.now()
    interval = settings.OCPP_LIVENESS_INTERVAL
    return now - timedelta(seconds=interval * settings.OCPP_LIVENESS_STALE_AFTER)


def station_liveness_refresh(*, live: dict[int, str], as_of: datetime | None = None) -> None:
    """A process still holds these stations (id → channel name): they are alive.

    One UPDATE per 1,000 stations. A station that a sweep marked offline meanwhile (the
    database was away and `last_seen` aged) is marked connected again, unless another
    connection took it over. `as_of`: when `live` was taken; a station that went offline
    after it (its charger disconnected meanwhile, the close ran on another thread) stays
    offline.
    """
    now = timezone.now()
    as_of = as_of or now
    ids = list(live)
    with transaction.atomic():
        for start in range(0, len(ids), 1000):
            Station.objects.filter(pk__in=ids[start : start + 1000]).update(last_seen=now)
        swept = Station.objects.filter(pk__in=ids, connected=False, channel_name="").filter(
            Q(disconnected_at__lt=as_of) | Q(disconnected_at__isnull=True)
        )
        for station_id in swept.values_list("pk", flat=True):
            Station.objects.filter(pk=station_id, connected=False, channel_name="").update(
                connected=True, channel_name=live[station_id]
            )


def station_sweep_stale_connections(*, stale_before: datetime) -> int:
    """Mark offline the stations still "connected" but not seen since `stale_before`.

    Their process died without a disconnect (kill -9, a crashed host). Returns how many.
    """
    return (
        Station.objects.filter(connected=True)
        .filter(Q(last_seen__lt=stale_before) | Q(last_seen__isnull=True))
        .update(connected=False, channel_name="", disconnected_at=timezone.now())
    )


# ---- charger passwords (security profiles 1 and 2) --------------------------------------


def station_password_set(*, station: Station, password: str) -> None:
    """Give the station a Basic-auth password (e.g. generated when it is claimed).

    The charger must be configured with it by hand (or by `station_password_rotate` once it
    is connected). Security profile 0 becomes 1: a password is then required.
    Raises ValueError for a password outside 16-40 characters.
    """
    encoded = hash_password(password)
    with transaction.atomic():
        fresh = Station.objects.select_for_update().get(pk=station.pk)
        _password_make_current(fresh, encoded)
    station.auth_password_hash = encoded
    station.auth_password_pending_hash = ""
    station.security_profile = fresh.security_profile


def station_password_rotate(*, station: Station, user=None) -> str:
    """Give a connected station a new Basic-auth password; returns it (show it once).

    The new password is kept as pending: the old one stays valid until the charger
    confirms, by answering the ChangeConfiguration(AuthorizationKey) (1.6, hex-encoded as
    1.6 requires) or SetVariables(SecurityCtrlr.BasicAuthPassword) (2.x) Accepted, or by
    logging in with it (after a RebootRequired). With `user`, the command path checks that
    the user may command the station (PermissionDenied). Raises ValueError when the
    command cannot be delivered (offline, not an OCPP station): nothing changes then.
    """
    fresh = Station.objects.get(pk=station.pk)
    if fresh.protocol != Protocol.OCPP:
        raise ValueError("Only OCPP stations have Basic-auth passwords.")
    password = generate_password()
    pending = hash_password(password)
    Station.objects.filter(pk=fresh.pk).update(auth_password_pending_hash=pending)
    params = password_setting(version=fresh.ocpp_version or OcppVersion.V16, password=password)
    try:
        if user is not None:
            command = command_request(
                station=fresh, kind="change_configuration", params=params, user=user
            )
        else:
            command = command_request_system(
                station=fresh, kind="change_configuration", params=params
            )
    except Exception:
        _password_pending_clear(station_id=fresh.pk, pending=pending)
        raise
    if command is None or command.status not in (Command.Status.QUEUED, Command.Status.SENT):
        _password_pending_clear(station_id=fresh.pk, pending=pending)
        if command is not None:
            _command_redact(command_id=command.pk, action=command.action, payload=command.payload)
        raise ValueError(
            command.error if command is not None else "The password could not be sent."
        )
    station.auth_password_pending_hash = pending
    return password


def _password_pending_clear(*, station_id: int, pending: str) -> None:
    Station.objects.filter(pk=station_id, auth_password_pending_hash=pending).update(
        auth_password_pending_hash=""
    )


def _charger_status(response: dict | None) -> str:
    if not isinstance(response, dict):
        return ""
    if isinstance(response.get("status"), str):
        return response["status"]
    results = response.get("setVariableResult")
    if isinstance(results, list) and results and isinstance(results[0], dict):
        return str(results[0].get("attributeStatus", ""))
    return ""


def _command_redact(*, command_id: int, action: str, payload: dict) -> None:
    redacted = redact_password(action, payload)
    if redacted != payload:
        Command.objects.filter(pk=command_id).update(payload=redacted)


def _password_make_current(station: Station, encoded: str) -> None:
    """`encoded` becomes the station's password, no other pending; a password is required."""
    station.auth_password_hash = encoded
    station.auth_password_pending_hash = ""
    station.security_profile = max(station.security_profile, 1)
    station.save(
        update_fields=[
            "auth_password_hash",
            "auth_password_pending_hash",
            "security_profile",
            "updated_at",
        ]
    )


@command_outcome("change_configuration")
def station_password_outcome(outcome: CommandOutcome) -> None:
    """A password-setting Command got its result (any other change_configuration: nothing).

    Accepted by the charger: the pending password becomes the password. RebootRequired:
    both stay valid until the charger logs in with the new one. Refused: the pending one
    is dropped. Either way the password is blanked out of the Command's payload.
    """
    password = password_in(outcome.action, outcome.payload)
    if password is None:
        return
    _command_redact(command_id=outcome.command_id, action=outcome.action, payload=outcome.payload)
    with transaction.atomic():
        station = Station.objects.select_for_update().get(pk=outcome.station_id)
        pending = station.auth_password_pending_hash
        if not pending or not verify_password(password, pending, version="2.0.1"):
            return  # A newer rotation replaced it, or it was already settled.
        charger_status = _charger_status(outcome.response)
        if outcome.status == ACCEPTED and charger_status == "Accepted":
            _password_make_current(station, pending)
            logger.info("Station %s confirmed its new password", station.cbid)
        elif outcome.status == REJECTED:
            Station.objects.filter(pk=station.pk).update(auth_password_pending_hash="")
            logger.warning("Station %s refused its new password", station.cbid)
