"""Claiming stations and moving them between CPOs: the rules of "Add new station".

One service for the panel, Django admin and the CLI. `station_assign` is the only place a
station's CPO changes, and it writes the audit trail (StationAssignment) every time it does.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction

from cpo.audit import Action, audit_record
from cpo.models import Cpo, Membership
from ocpp_spec.identity import InvalidCbid, validate_cbid
from stations.models import Protocol, RegistrationStatus, Station, StationAssignment
from stations.services.commands import command_request_system
from stations.services.notify import DeliveryFailed, station_notify

logger = logging.getLogger(__name__)

# Where the audit trail says a change came from.
SOURCES = ("panel", "admin", "cli")


class ClaimError(Exception):
    """A claim or assignment the rules refuse; `message` is shown to the user as is.

    `field` names the form field the message belongs beside (None: the whole form).
    """

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


def ocpp_endpoint_url(cbid: str = "<CBID>") -> str:
    """The URL a charger must be given: OCPP_PUBLIC_URL + /ocpp/<CBID>."""
    return f"{settings.OCPP_PUBLIC_URL.rstrip('/')}/ocpp/{cbid}"


def addable_cpos(user: AbstractBaseUser | AnonymousUser):
    """CPOs where `user` may add stations: those they are admin of (superusers: all)."""
    return Cpo.objects.for_user(user, roles=[Membership.Role.ADMIN])


def station_claim(
    *,
    user: AbstractBaseUser,
    protocol: str,
    cbid: str,
    cpo: Cpo | None = None,
) -> Station:
    """Add a station to one of the user's CPOs ("Add new station").

    - The CBID is trimmed and matched case-insensitively.
    - OCPP: a CBID in the pool is assigned to the CPO and its registration set to Accepted;
      a CBID that never connected is refused with the URL to set on the charger.
    - Ensto / Remotec: a station row is created under the CPO, waiting for connection.
    - A CBID already in one of the user's CPOs is refused saying so; one owned by another
      CPO is refused without naming it.
    - `cpo` may be omitted when the user may add to exactly one CPO.

    Raises PermissionDenied when the user may not add stations to any CPO (or to `cpo`),
    ClaimError for everything else. Of two concurrent claims of one CBID exactly one wins:
    the station row is locked (select_for_update) for the decision.
    """
    allowed = addable_cpos(user)
    target = _target_cpo(user=user, allowed=allowed, cpo=cpo)

    if protocol not in Protocol.values:
        raise ClaimError("Choose a protocol: Ensto, OCPP or Remotec.", field="protocol")
    cbid = (cbid or "").strip()
    if not cbid:
        raise ClaimError("Enter the station's identity.", field="cbid")
    if protocol == Protocol.OCPP:
        try:
            validate_cbid(cbid)
        except InvalidCbid as exc:
            raise ClaimError(f"This is not a valid CBID: {exc}.", field="cbid")
    elif len(cbid) > 48:
        raise ClaimError("A device identifier has at most 48 characters.", field="cbid")

    with transaction.atomic():
        station = Station.objects.select_for_update().by_cbid(cbid).first()
        if station is None and protocol != Protocol.OCPP:
            station = _station_register(user=user, protocol=protocol, cbid=cbid, cpo=target)
            if station is not None:
                _audit_claim(user=user, station=station)
                return station
            # Someone registered that identity a moment ago: judge it like any other.
            station = Station.objects.select_for_update().by_cbid(cbid).first()
        if station is None:
            raise ClaimError(
                f"No charger with the CBID “{cbid}” has connected yet. Set the charger's "
                f"OCPP backend URL to {ocpp_endpoint_url(cbid)} and restart it; once it has "
                "connected, add it here.",
                field="cbid",
            )
        if station.cpo_id is not None:
            mine = Cpo.objects.for_user(user).filter(pk=station.cpo_id).first()
            if mine is not None:
                raise ClaimError(
                    f"The station “{station.cbid}” is already in your CPO {mine.name}.",
                    field="cbid",
                )
            # Never name the other CPO: that would leak who operates the charger.
            raise ClaimError(
                f"The station “{station.cbid}” is registered to another operator and cannot "
                "be added. If it is yours, contact support.",
                field="cbid",
            )
        if station.protocol != protocol:
            raise ClaimError(
                f"The station “{station.cbid}” connected over "
                f"{station.get_protocol_display()}: choose that protocol.",
                field="protocol",
            )
        station = station_assign(station=station, cpo=target, by=user, source="panel")
        _audit_claim(user=user, station=station)
        return station


def _audit_claim(*, user: AbstractBaseUser, station: Station) -> None:
    details = {"protocol": station.protocol, "cpo": station.cpo.name}
    audit_record(
        action=Action.STATION_CLAIMED,
        user=user,
        cpo=station.cpo,
        target=station.cbid,
        details=details,
    )


def _target_cpo(*, user: AbstractBaseUser, allowed, cpo: Cpo | None) -> Cpo:
    if cpo is not None:
        if not allowed.filter(pk=cpo.pk).exists():
            raise PermissionDenied("You may not add stations to this CPO.")
        return cpo
    choices = list(allowed[:2])
    if not choices:
        raise PermissionDenied("You may not add stations: only CPO admins can.")
    if len(choices) > 1:
        raise ClaimError("Choose the CPO the station belongs to.", field="cpo")
    return choices[0]


def _station_register(
    *, user: AbstractBaseUser, protocol: str, cbid: str, cpo: Cpo
) -> Station | None:
    """Create an Ensto / Remotec station under `cpo`; None when the identity was just taken."""
    try:
        with transaction.atomic():
            station = Station.objects.create(
                cbid=cbid,
                protocol=protocol,
                cpo=cpo,
                name=cbid,
                registration_status=RegistrationStatus.ACCEPTED,
            )
    except IntegrityError:
        return None
    _audit(station=station, from_cpo=None, to_cpo=cpo, by=user, source="panel")
    logger.info("Station %s (%s) registered under %s by %s", cbid, protocol, cpo, user)
    return station


def station_assign(
    *,
    station: Station,
    cpo: Cpo | None,
    by: AbstractBaseUser | None,
    source: str,
) -> Station:
    """Set a station's CPO (None: back to the pool) and write the audit record.

    The one place a station's CPO changes: claims, "Change CPO" on the station page, the
    Django admin action and the CLI all come here. `by` None means the system (CLI).
    A user who is not a superuser must be admin of both the current and the new CPO.
    A station with a CPO is Accepted; one sent back to the pool gets the pool's boot status.
    Assigning a station to the CPO it already has changes nothing and writes no record.

    When the station is connected, its consumer is told to reload its registration once
    the transaction commits.
    """
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}")
    with transaction.atomic():
        station = (
            Station.objects.select_for_update(of=("self",)).select_related("cpo").get(pk=station.pk)
        )
        from_cpo = station.cpo
        if by is not None:
            _check_may_move(by=by, from_cpo=from_cpo, to_cpo=cpo)
        if (from_cpo.pk if from_cpo else None) == (cpo.pk if cpo else None):
            return station
        was_accepted = station.registration_status == RegistrationStatus.ACCEPTED
        station.cpo = cpo
        if cpo is not None:
            station.registration_status = RegistrationStatus.ACCEPTED
        else:
            station.registration_status = settings.OCPP_POOL_BOOT_STATUS
        station.save(update_fields=["cpo", "registration_status", "updated_at"])
        _audit(station=station, from_cpo=from_cpo, to_cpo=cpo, by=by, source=source)
        names = {"from": from_cpo.name if from_cpo else None, "to": cpo.name if cpo else None}
        audit_record(
            action=Action.STATION_ASSIGNED,
            user=by,
            cpo=cpo,
            target=station.cbid,
            details={**names, "source": source},
        )
        if station.protocol == Protocol.OCPP and station.connected and station.channel_name:
            boot_again = cpo is not None and not was_accepted
            transaction.on_commit(lambda: _station_refresh(station, by=by, boot_again=boot_again))
    logger.info(
        "Station %s: %s → %s (%s by %s)",
        station.cbid,
        from_cpo or "pool",
        cpo or "pool",
        source,
        by or "system",
    )
    return station


def _check_may_move(*, by: AbstractBaseUser, from_cpo: Cpo | None, to_cpo: Cpo | None) -> None:
    if by.is_superuser:
        return
    admin_of = set(addable_cpos(by).values_list("pk", flat=True))
    for cpo in (from_cpo, to_cpo):
        if cpo is not None and cpo.pk not in admin_of:
            raise PermissionDenied("Only an admin of both CPOs may move a station between them.")
    if to_cpo is None:
        raise PermissionDenied("Only system administrators may return a station to the pool.")


def _audit(
    *,
    station: Station,
    from_cpo: Cpo | None,
    to_cpo: Cpo | None,
    by: AbstractBaseUser | None,
    source: str,
) -> StationAssignment:
    return StationAssignment.objects.create(
        station=station,
        from_cpo=from_cpo,
        to_cpo=to_cpo,
        from_cpo_name=from_cpo.name if from_cpo else "",
        to_cpo_name=to_cpo.name if to_cpo else "",
        by=by,
        by_username=by.get_username() if by is not None else "",
        source=source,
    )


def _station_refresh(station: Station, *, by: AbstractBaseUser | None, boot_again: bool) -> None:
    """After commit: the consumer reloads the registration (CPO, Accepted) of its station."""
    try:
        station_notify(channel_name=station.channel_name, event_type="station.refresh")
    except DeliveryFailed as exc:
        # The claim stands: the charger gets Accepted at its next boot or reconnect.
        logger.warning("Could not tell %s's consumer to refresh: %s", station.cbid, exc)
    if boot_again:
        _request_boot_trigger(station, by=by)


def _request_boot_trigger(station: Station, *, by: AbstractBaseUser | None) -> None:
    """CALL POINT (issue 4): ask a just-claimed charger to boot again, so it is Accepted at once.

    A Command TriggerMessage(BootNotification) through the station-operations command path
    (a durable record, then the consumer sends it). It never undoes the claim: a station that
    cannot take it is logged, and the charger is Accepted at its next BootNotification anyway
    (the registration status is persisted).
    """
    command = command_request_system(
        station=station,
        kind="trigger_message",
        params={"message": "BootNotification"},
        requested_by=by,
    )
    logger.info(
        "Station %s claimed while connected: TriggerMessage(BootNotification) %s",
        station.cbid,
        f"is command {command.pk} ({command.status})" if command else "not sent",
    )
