"""Chargers connecting, booting and disconnecting: how stations enter the pool."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from ocpp_gateway.auth import verify_password
from stations.models import ConnectionAttempt, Protocol, RegistrationStatus, Station

logger = logging.getLogger(__name__)

# Longest value kept for what the charger reports about itself (model field length).
REPORTED_FIELD_MAX = 255


class ConnectionRefused(Exception):
    """A handshake the backend refuses; `reason` is a ConnectionAttempt.Reason."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


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
) -> StationSession:
    """Admit a charger's websocket: find or create its station, check its credentials.

    A CBID never seen before lands in the pool (unless unknown stations are refused).
    The newest connection wins: the previous channel, if any, is returned to be closed.
    Raises ConnectionRefused.
    """
    now = timezone.now()
    station = Station.objects.by_cbid(cbid).first()
    if station is None:
        if not settings.OCPP_ALLOW_UNKNOWN_STATIONS:
            raise ConnectionRefused(ConnectionAttempt.Reason.UNKNOWN_CBID, "unknown CBID")
        station = _station_create_in_pool(cbid=cbid, now=now)

    _check_credentials(station, cbid=cbid, version=version, credentials=credentials, secure=secure)

    with transaction.atomic():
        station = Station.objects.select_for_update().get(pk=station.pk)
        replaced = station.channel_name if station.connected else ""
        station.connected = True
        station.connected_at = now
        station.last_seen = now
        station.channel_name = channel_name
        station.ocpp_version = version
        if station.first_connected_at is None:
            station.first_connected_at = now
        station.save(
            update_fields=[
                "connected",
                "connected_at",
                "last_seen",
                "channel_name",
                "ocpp_version",
                "first_connected_at",
                "updated_at",
            ]
        )
    return StationSession(
        station_id=station.pk,
        cbid=station.cbid,
        cpo_id=station.cpo_id,
        registration_status=station.registration_status,
        lenient=station.lenient_validation,
        free_usage=station.free_usage,
        replaced_channel=replaced if replaced != channel_name else "",
    )


def _station_create_in_pool(*, cbid: str, now: datetime) -> Station:
    try:
        with transaction.atomic():
            station = Station.objects.create(
                cbid=cbid,
                protocol=Protocol.OCPP,
                name=pool_station_name(timezone.localtime(now)),
                registration_status=RegistrationStatus.PENDING,
            )
    except IntegrityError:
        # Another connection of the same CBID created it a moment ago.
        return Station.objects.by_cbid(cbid).get()
    logger.info("New station %s landed in the pool", cbid)
    return station


def _check_credentials(
    station: Station,
    *,
    cbid: str,
    version: str,
    credentials: tuple[str, str] | None,
    secure: bool,
) -> None:
    if station.security_profile >= 2 and not secure:
        raise ConnectionRefused(
            ConnectionAttempt.Reason.PLAIN_WS, "security profile 2 requires wss (TLS)"
        )
    if not station.auth_password_hash:
        return
    if credentials is None:
        raise ConnectionRefused(ConnectionAttempt.Reason.BAD_PASSWORD, "no Basic auth credentials")
    username, password = credentials
    if username != cbid:
        raise ConnectionRefused(ConnectionAttempt.Reason.BAD_PASSWORD, "username is not the CBID")
    if not verify_password(password, station.auth_password_hash, version=version):
        raise ConnectionRefused(ConnectionAttempt.Reason.BAD_PASSWORD, "wrong password")


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
    with transaction.atomic():
        station = Station.objects.select_for_update().get(pk=station_id)
        for field, value in vars(info).items():
            target = "boot_reason" if field == "reason" else field
            setattr(station, target, (value or "")[:REPORTED_FIELD_MAX])
        station.last_boot_at = now
        if station.cpo_id is not None:
            status = RegistrationStatus.ACCEPTED
        else:
            status = settings.OCPP_POOL_BOOT_STATUS
        station.registration_status = status
        station.save()
    if status == RegistrationStatus.ACCEPTED:
        interval = settings.OCPP_HEARTBEAT_INTERVAL
    else:
        interval = settings.OCPP_POOL_RETRY_INTERVAL
    return BootDecision(status=status, interval=interval)


def connection_refusal_record(*, cbid: str, remote_addr: str, reason: str, detail: str) -> None:
    """Write a refused handshake to the list superusers read."""
    ConnectionAttempt.objects.create(
        cbid=cbid[:100], remote_addr=remote_addr[:64], reason=reason, detail=detail[:255]
    )
