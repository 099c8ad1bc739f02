"""Chargers connecting and disconnecting: the session a consumer holds, and the pool.

A CBID never seen before lands in the pool, created already connected. The newest
connection of a station wins; its older one is told to close.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from stations.models import ConnectionAttempt, Protocol, RegistrationStatus, Station
from stations.services.commands import command_fail_queued
from stations.services.passwords import station_credentials_check
from stations.services.refusals import ConnectionRefused

logger = logging.getLogger(__name__)


@dataclass
class StationSession:
    """A charger's connection as the backend knows it: opened here, held by its consumer.

    The frame path reads it on every frame (`ocpp_gateway.protocol`); a boot updates
    `registration_status`; a claim or a settings change replaces it with
    `station_session_reload`.
    """

    station_id: int
    # The station's own spelling, whatever case the charger connected with.
    cbid: str
    # The OCPP version this connection negotiated.
    version: str
    registration_status: str
    cpo_id: int | None = None
    # Accept unknown fields and over-long strings from broken firmware (logged).
    lenient: bool = False
    free_usage: bool = False
    # The channel of an older connection of the same station, to be closed.
    replaced_channel: str = ""
    # A connection to a station without a password while another connection holds it
    # (OCPP_REPLACE_WITHOUT_PASSWORD = "serial"): it may only boot, and takes over only if
    # its BootNotification reports the station's serial number (`station_take_over_by_serial`).
    probation: bool = False


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
    The newest connection wins: the previous channel, if any, is returned to be closed;
    except that a station without a password does not let a newcomer displace a live
    connection on its word alone (OCPP_REPLACE_WITHOUT_PASSWORD). A station of another
    protocol (Ensto, Remotec) is never matched: its identity is refused for OCPP.
    Raises ConnectionRefused.
    """
    now = timezone.now()
    station = Station.objects.by_cbid(cbid).first()
    if station is not None and station.protocol != Protocol.OCPP:
        # Registered as a vendor-protocol device (maybe before any charger connected): an
        # OCPP charger with that identity must not be taken in under that station's CPO.
        raise ConnectionRefused(
            ConnectionAttempt.Reason.PROTOCOL_MISMATCH,
            f"the identity is registered for the {station.get_protocol_display()} protocol",
            cbid=station.cbid,
        )
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
            return _session_of(station, version=version)

    station_credentials_check(
        station,
        cbid=cbid,
        version=version,
        credentials=credentials,
        secure=secure,
        remote_addr=remote_addr,
        now=now,
    )
    if _live_without_password(station, channel_name=channel_name):
        mode = settings.OCPP_REPLACE_WITHOUT_PASSWORD
        if mode == "serial" and not _serials(station):
            # Nothing to compare with (the charger never reported a serial number): the
            # newest connection wins, as before; a password is the real fix.
            logger.warning(
                "Station %s has no password and no serial number: a new connection replaces "
                "the live one unchecked",
                station.cbid,
            )
        elif mode == "serial":
            logger.warning(
                "Station %s has no password and a live connection: the new one must report "
                "its serial number at boot to take over",
                station.cbid,
            )
            session = _session_of(station, version=version)
            session.registration_status = RegistrationStatus.PENDING
            session.probation = True
            return session
        elif mode == "never":
            raise ConnectionRefused(
                ConnectionAttempt.Reason.LIVE_CONNECTION,
                "the station has no password and a live connection",
                cbid=station.cbid,
            )
    replaced = _session_take_over(
        station, version=version, channel_name=channel_name, now=now, remote_addr=remote_addr
    )
    return _session_of(
        station, version=version, replaced_channel=replaced if replaced != channel_name else ""
    )


def _live_without_password(station: Station, *, channel_name: str) -> bool:
    return (
        not station.auth_password_hash
        and station.connected
        and bool(station.channel_name)
        and station.channel_name != channel_name
    )


def _serials(station: Station) -> set[str]:
    """The serial numbers the station reported at boot, compared case-insensitively."""
    serials = (station.serial_number, station.charge_box_serial_number)
    return {serial.strip().casefold() for serial in serials if serial.strip()}


def station_take_over_by_serial(
    *, session: StationSession, channel_name: str, serial_numbers: tuple[str, ...]
) -> StationSession | None:
    """A connection on probation booted: it takes the station over if it reported one of
    the station's serial numbers (or if the live connection is gone meanwhile).

    Returns its new session (`replaced_channel`: the connection to close), or None when it
    must not: then it stays refused (its boot is answered Rejected) and nothing it said is
    stored.
    """
    station = Station.objects.get(pk=session.station_id)
    if station.auth_password_hash:
        # Given a password meanwhile: only a connection that presents it may hold the station.
        logger.warning(
            "Station %s has a password now: the new connection must log in", station.cbid
        )
        return None
    reported = {serial.strip().casefold() for serial in serial_numbers if serial.strip()}
    live = _live_without_password(station, channel_name=channel_name)
    if live and not (reported & _serials(station)):
        logger.warning(
            "Station %s: a new connection reported another serial number; the live one stays",
            station.cbid,
        )
        return None
    now = timezone.now()
    replaced = _session_take_over(
        station, version=session.version, channel_name=channel_name, now=now
    )
    station.refresh_from_db()
    logger.info(
        "Station %s: the new connection reported its serial number: taken over", station.cbid
    )
    return _session_of(
        station,
        version=session.version,
        replaced_channel=replaced if replaced != channel_name else "",
    )


def _session_take_over(
    station: Station, *, version: str, channel_name: str, now: datetime, remote_addr: str = ""
) -> str:
    """Make `channel_name` the station's connection; returns the one it replaces ("" if none).

    One conditional UPDATE instead of a locked read and a save: it applies only if nobody
    changed the connection since `station` was read; otherwise read again and retry.
    """
    # A take-over decided later (by serial number, on probation) keeps the address on record.
    address = {"connected_from_addr": remote_addr[:64]} if remote_addr else {}
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
            **address,
        )
        if updated:
            return replaced
        # Another connection of the same station came or went meanwhile.
        station = Station.objects.get(pk=station.pk)


def _session_of(station: Station, *, version: str, replaced_channel: str = "") -> StationSession:
    return StationSession(
        station_id=station.pk,
        cbid=station.cbid,
        version=version,
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
                connected_from_addr=remote_addr[:64],
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


def station_close_session(*, station_id: int, channel_name: str) -> bool:
    """Mark the station offline, unless a newer connection has taken over since; its
    queued Commands can no longer be sent on this connection and fail as offline."""
    with transaction.atomic():
        updated = Station.objects.filter(pk=station_id, channel_name=channel_name).update(
            connected=False,
            channel_name="",
            disconnected_at=timezone.now(),
        )
        if updated:
            command_fail_queued(
                station_id=station_id,
                error="The station disconnected before the command could be sent.",
            )
    return bool(updated)


def station_session_reload(*, session: StationSession) -> StationSession:
    """The session with the station's current registration facts (after a claim, a
    settings change); the connection's own facts (version) stay."""
    station = Station.objects.get(pk=session.station_id)
    return _session_of(station, version=session.version)
