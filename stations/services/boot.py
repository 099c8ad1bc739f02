"""BootNotification: what the charger tells about itself, and the answer it gets."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from stations.models import Command, RegistrationStatus, Station, Transaction
from stations.services.charging_sessions import sessions_close_on_boot

# A BootNotification this soon after the backend asked for one (TriggerMessage) is that
# answer, not a reboot: the charger's sessions go on.
TRIGGERED_BOOT_WINDOW = timedelta(minutes=10)

# Longest value kept for what the charger reports about itself (model field length).
REPORTED_FIELD_MAX = 255


@dataclass
class BootInfo:
    """What a BootNotification says about the charger, in either version."""

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
    """The answer: registration status and the heartbeat (or retry) interval."""

    status: str
    interval: int


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


def station_rebooted(*, station_id: int, reason: str, at: datetime) -> int:
    """After a BootNotification received at `at`: the station's sessions that were running
    before it never got their stop; close them (`sessions_close_never_stopped`). Not when
    the backend asked for the boot (2.x reason Triggered, or a TriggerMessage sent within
    TRIGGERED_BOOT_WINDOW): that charger did not restart. Run after the boot is answered
    (one indexed read when nothing runs); returns how many sessions it closed."""
    running = Transaction.objects.filter(
        station_id=station_id, state=Transaction.State.ACTIVE, created_at__lt=at
    )
    if not running.exists() or reason == "Triggered":
        return 0
    triggered = Command.objects.filter(
        station_id=station_id,
        action="TriggerMessage",
        payload__requestedMessage="BootNotification",
        created_at__gte=at - TRIGGERED_BOOT_WINDOW,
    )
    if triggered.exists():
        return 0
    return sessions_close_on_boot(station_id=station_id, at=at)
