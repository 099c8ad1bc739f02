"""Refused handshakes: the exception, the aggregated record, the brute-force lockout."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone

from stations.models import ConnectionAttempt, Station


class ConnectionRefused(Exception):
    """A handshake the backend refuses; `reason` is a ConnectionAttempt.Reason."""

    def __init__(self, reason: str, detail: str = "", *, cbid: str = ""):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        # The station's own spelling of the CBID, so failures of one station add up
        # whatever case the charger (or an attacker) uses.
        self.cbid = cbid


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


def connection_refusals_record_many(*, refusals: list[tuple[str, str, str, str, int]]) -> None:
    """`connection_refusal_record` for many (cbid, address, reason, detail, count), in one
    transaction (the gateway adds up a storm of refusals before writing them)."""
    with transaction.atomic():
        for cbid, remote_addr, reason, detail, count in refusals:
            connection_refusal_record(
                cbid=cbid, remote_addr=remote_addr, reason=reason, detail=detail, count=count
            )


def connection_check_not_locked_out(station: Station, *, remote_addr: str, now: datetime) -> None:
    """Brute force: too many recent failures refuse the attempt without checking it.

    Failures are the aggregated ConnectionAttempt rows (shared by every process), counted
    per (CBID, address) and per address: an attacker's failures lock out the attacker's
    address, never the charger's. The address the station was last admitted from is never
    locked out (a charger behind the attacker's NAT aside, guessing a 16-40 character
    random password is hopeless anyway). The cool-down ends when the failures have aged
    out of OCPP_AUTH_FAILURE_WINDOW.
    """
    if remote_addr and remote_addr[:64] == station.connected_from_addr:
        return
    since = now - timedelta(seconds=settings.OCPP_AUTH_FAILURE_WINDOW)
    failures = ConnectionAttempt.objects.filter(
        reason=ConnectionAttempt.Reason.BAD_PASSWORD, created_at__gte=since
    )
    per_cbid = settings.OCPP_AUTH_MAX_FAILURES_PER_CBID
    if (
        per_cbid
        and _total(failures.filter(cbid=station.cbid, remote_addr=remote_addr[:64])) >= per_cbid
    ):
        raise ConnectionRefused(
            ConnectionAttempt.Reason.RATE_LIMITED,
            "too many failed passwords for this CBID from this address; try again later",
        )
    per_addr = settings.OCPP_AUTH_MAX_FAILURES_PER_ADDRESS
    if per_addr and remote_addr and _total(failures.filter(remote_addr=remote_addr)) >= per_addr:
        raise ConnectionRefused(
            ConnectionAttempt.Reason.RATE_LIMITED,
            "too many failed passwords from this address; try again later",
        )


def _total(attempts) -> int:
    return attempts.aggregate(total=Sum("count"))["total"] or 0
