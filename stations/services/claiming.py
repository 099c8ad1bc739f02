"""Claiming stations and moving them between CPOs: the rules of "Add new station".

One service for the panel, Django admin and the CLI. `station_assign` is the only place a
station's CPO changes, and it writes the audit trail (StationAssignment) every time it does.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac

from cpo.audit import Action, audit_record
from cpo.models import AuditEvent, Cpo, Membership
from ocpp_spec.identity import InvalidCbid, validate_cbid
from stations.models import Protocol, RegistrationStatus, Station, StationAssignment
from stations.services.commands import command_request_system
from stations.services.notify import DeliveryFailed, station_notify

logger = logging.getLogger(__name__)

# Where the audit trail says a change came from.
SOURCES = ("panel", "admin", "cli")


# Why a claim was refused, as the audit log says it. Refusals that could tell a guesser
# something (UNAVAILABLE, PROOF) count towards the claim rate limit; RATE_LIMITED ones do not.
UNAVAILABLE = "unavailable"
PROOF = "proof"
RATE_LIMITED = "rate_limited"
COUNTED_REFUSALS = (UNAVAILABLE, PROOF)


class ClaimError(Exception):
    """A claim or assignment the rules refuse; `message` is shown to the user as is.

    `field` names the form field the message belongs beside (None: the whole form).
    `reason` (UNAVAILABLE, PROOF, RATE_LIMITED, or "" for plain input mistakes) is what the
    audit log records for a refused claim.
    """

    def __init__(self, message: str, *, field: str | None = None, reason: str = ""):
        super().__init__(message)
        self.message = message
        self.field = field
        self.reason = reason


class ClaimRateLimited(ClaimError):
    """Too many refused claims lately, by this user or into this CPO (answered 429)."""


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
    proof: str = "",
) -> Station:
    """Add a station to one of the user's CPOs ("Add new station").

    - The CBID is trimmed and matched case-insensitively.
    - OCPP: a CBID in the pool is assigned to the CPO and its registration set to Accepted.
      A CBID that never connected and one another CPO holds get the same answer (the URL to
      set on the charger), so the form cannot tell which CBIDs exist.
    - Strong mode (CLAIM_REQUIRE_PROOF): an OCPP claim also needs `proof`, the serial number
      the charger reported at boot or the station's claim code (`station_claim_code`);
      a wrong one gets that same answer.
    - Ensto / Remotec: a station row is created under the CPO, waiting for connection.
    - A CBID already in one of the user's CPOs is refused saying so.
    - `cpo` may be omitted when the user may add to exactly one CPO.

    Guessing does not pay: every refusal is in the audit log (`station_claim_refused`), and
    after CLAIM_MAX_FAILURES_PER_USER (per user) or CLAIM_MAX_FAILURES_PER_CPO (per target
    CPO) refusals within CLAIM_FAILURE_WINDOW seconds, claims are refused unexamined
    (ClaimRateLimited) until they age out.

    Raises PermissionDenied when the user may not add stations to any CPO (or to `cpo`),
    ClaimError for everything else. Of two concurrent claims of one CBID exactly one wins:
    the station row is locked (select_for_update) for the decision.
    """
    allowed = addable_cpos(user)
    target = _target_cpo(user=user, allowed=allowed, cpo=cpo)
    cbid = (cbid or "").strip()
    try:
        _check_claim_rate(user=user, cpo=target)
        return _claim(user=user, protocol=protocol, cbid=cbid, target=target, proof=proof)
    except ClaimError as exc:
        if exc.reason:
            _audit_refusal(user=user, cpo=target, cbid=cbid, protocol=protocol, reason=exc.reason)
        raise


def _claim(*, user: AbstractBaseUser, protocol: str, cbid: str, target: Cpo, proof: str) -> Station:
    if protocol not in Protocol.values:
        raise ClaimError("Choose a protocol: Ensto, OCPP or Remotec.", field="protocol")
    if not cbid:
        raise ClaimError("Enter the station's identity.", field="cbid")
    if protocol == Protocol.OCPP:
        try:
            validate_cbid(cbid)
        except InvalidCbid as exc:
            raise ClaimError(f"This is not a valid CBID: {exc}.", field="cbid")
    elif len(cbid) > 48:
        raise ClaimError("A device identifier has at most 48 characters.", field="cbid")
    strong = settings.CLAIM_REQUIRE_PROOF and protocol == Protocol.OCPP
    if strong and not proof.strip():
        raise ClaimError(
            "Enter the charger's serial number (as it reported it at boot) or its claim code.",
            field="proof",
        )

    with transaction.atomic():
        station = Station.objects.select_for_update().by_cbid(cbid).first()
        if station is None and protocol != Protocol.OCPP:
            station = _station_register(user=user, protocol=protocol, cbid=cbid, cpo=target)
            if station is not None:
                _audit_claim(user=user, station=station)
                return station
            # Someone registered that identity a moment ago: judge it like any other.
            station = Station.objects.select_for_update().by_cbid(cbid).first()
        if station is not None and station.cpo_id is not None:
            mine = Cpo.objects.for_user(user).filter(pk=station.cpo_id).first()
            if mine is not None:
                raise ClaimError(
                    f"The station “{station.cbid}” is already in your CPO {mine.name}.",
                    field="cbid",
                )
            # Another CPO's: answered like a CBID that never connected, so the answer
            # tells a guesser nothing (and never names the other CPO).
            station = None
        if station is None:
            raise _unavailable(cbid=cbid, protocol=protocol, strong=strong)
        if station.protocol != protocol:
            raise ClaimError(
                f"The station “{station.cbid}” connected over "
                f"{station.get_protocol_display()}: choose that protocol.",
                field="protocol",
            )
        if strong and not _proof_matches(station, proof):
            raise _unavailable(cbid=cbid, protocol=protocol, strong=strong, reason=PROOF)
        station = station_assign(station=station, cpo=target, by=user, source="panel")
        _audit_claim(user=user, station=station)
        return station


def _unavailable(
    *, cbid: str, protocol: str, strong: bool, reason: str = UNAVAILABLE
) -> ClaimError:
    """The one answer for "never connected", "another operator's" and "wrong proof"."""
    if protocol != Protocol.OCPP:
        return ClaimError(
            f"The identifier “{cbid}” cannot be added. If the charger is yours, contact support.",
            field="cbid",
            reason=reason,
        )
    what = (
        f"No charger with the CBID “{cbid}” and that serial number or claim code"
        if strong
        else f"No charger with the CBID “{cbid}”"
    )
    return ClaimError(
        f"{what} is waiting to be added. Set the charger's OCPP backend URL to "
        f"{ocpp_endpoint_url(cbid)} and restart it; once it has connected, add it here. "
        "If it connected already and cannot be added, contact support.",
        field="cbid",
        reason=reason,
    )


def station_claim_code(station: Station) -> str:
    """The station's claim code (strong claim mode): a system administrator reads it on the
    pool station's page and gives it to the charger's owner instead of the serial number.

    Derived from SECRET_KEY and the CBID, so it needs no storage and cannot be guessed.
    """
    digest = salted_hmac("virta.stations.claim_code", station.cbid.lower()).hexdigest()
    code = str(int(digest[:20], 16)).zfill(12)[-12:]
    return f"{code[:4]}-{code[4:8]}-{code[8:]}"


def _proof_matches(station: Station, proof: str) -> bool:
    given = proof.strip().casefold()
    if not given:
        return False
    if given.replace(" ", "") == station_claim_code(station).replace(" ", ""):
        return True
    serials = (station.serial_number, station.charge_box_serial_number)
    return any(serial.strip() and serial.strip().casefold() == given for serial in serials)


def _check_claim_rate(*, user: AbstractBaseUser, cpo: Cpo) -> None:
    """Refuse, unexamined, a claim by a user or into a CPO that was refused too often lately."""
    since = timezone.now() - timedelta(seconds=settings.CLAIM_FAILURE_WINDOW)
    refusals = AuditEvent.objects.filter(
        action=Action.STATION_CLAIM_REFUSED, time__gte=since, details__reason__in=COUNTED_REFUSALS
    )
    limits = (
        (settings.CLAIM_MAX_FAILURES_PER_USER, refusals.filter(user=user)),
        (settings.CLAIM_MAX_FAILURES_PER_CPO, refusals.filter(cpo=cpo)),
    )
    for limit, counted in limits:
        if limit and counted.count() >= limit:
            minutes = max(settings.CLAIM_FAILURE_WINDOW // 60, 1)
            raise ClaimRateLimited(
                "Too many stations could not be added lately. Try again in "
                f"{minutes} minutes, or contact support.",
                reason=RATE_LIMITED,
            )


def _audit_refusal(
    *, user: AbstractBaseUser, cpo: Cpo, cbid: str, protocol: str, reason: str
) -> None:
    """A refused claim, in the audit log (its own transaction: the claim's rolled back)."""
    audit_record(
        action=Action.STATION_CLAIM_REFUSED,
        user=user,
        cpo=cpo,
        target=cbid,
        details={"protocol": protocol, "reason": reason},
    )
    logger.info("Claim of %r by %s into %s refused (%s)", cbid, user, cpo, reason)


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
