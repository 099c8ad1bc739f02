"""The home page: the CPO's network at a glance, and what needs someone's attention.

Selectors over stations the caller has already scoped (`Station.objects.for_user`, then
the current CPO). A station's state for the counts, and for the Station List's `state`
filter (one meaning in both places):
- online: its socket is open;
- offline: it has connected before, but is not connected now;
- waiting: it never connected (claimed before its first connection, or a vendor protocol);
- faulted: the station, or one of its connectors, reports Faulted;
- charging: a session is running on it.

"Needs attention" is a list of checks; another concern adds its own with
`@attention_check` (e.g. ID tags: "local list out of sync"), without this module
importing it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import models
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from stations.models import Connector, RegistrationStatus, Station, Transaction

OFFLINE_ATTENTION_AFTER = timedelta(hours=1)
# Per check, at most this many lines (the check's link shows them all).
ATTENTION_LIMIT = 20
FAULTED = "Faulted"


class StationState(models.TextChoices):
    ONLINE = "online", "Online"
    OFFLINE = "offline", "Offline"
    FAULTED = "faulted", "Faulted"
    CHARGING = "charging", "Charging"
    WAITING = "waiting", "Waiting for connection"


def _faulted() -> Exists:
    return Exists(Connector.objects.filter(station=OuterRef("pk"), status=FAULTED))


def _charging() -> Exists:
    return Exists(
        Transaction.objects.filter(station=OuterRef("pk"), state=Transaction.State.ACTIVE)
    )


def stations_in_state(stations: QuerySet[Station], state: str) -> QuerySet[Station]:
    """`stations` narrowed to one StationState (ValueError for another word)."""
    if state == StationState.ONLINE:
        return stations.filter(connected=True)
    if state == StationState.OFFLINE:
        return stations.filter(connected=False, first_connected_at__isnull=False)
    if state == StationState.WAITING:
        return stations.filter(connected=False, first_connected_at__isnull=True)
    if state == StationState.FAULTED:
        return stations.filter(Q(status=FAULTED) | _faulted())
    if state == StationState.CHARGING:
        return stations.filter(_charging())
    raise ValueError(f"Unknown station state {state!r}")


def station_counts(stations: QuerySet[Station]) -> dict[str, int]:
    """How many of `stations` are in each StationState (one query)."""
    annotated = stations.annotate(is_faulted=_faulted(), is_charging=_charging())
    counts = annotated.aggregate(
        total=Count("pk"),
        online=Count("pk", filter=Q(connected=True)),
        offline=Count("pk", filter=Q(connected=False, first_connected_at__isnull=False)),
        waiting=Count("pk", filter=Q(connected=False, first_connected_at__isnull=True)),
        faulted=Count("pk", filter=Q(status=FAULTED) | Q(is_faulted=True)),
        charging=Count("pk", filter=Q(is_charging=True)),
    )
    return counts


@dataclass(frozen=True)
class SessionTotals:
    sessions_today: int
    energy_today_wh: int
    sessions_month: int
    energy_month_wh: int


def session_totals(
    stations: QuerySet[Station], *, today: datetime, month: datetime
) -> SessionTotals:
    """Sessions started since `today` / `month` (local midnights) and the energy of those
    that ended (a running session's energy counts once it is settled). One query."""
    sessions = (
        Transaction.objects.filter(station__in=stations.values("pk"))
        .annotate(sort_time=Coalesce("start_time", "created_at"))
        .filter(sort_time__gte=min(today, month))
    )
    totals = sessions.aggregate(
        today=Count("pk", filter=Q(sort_time__gte=today)),
        month=Count("pk", filter=Q(sort_time__gte=month)),
        energy_today=Sum("energy_wh", filter=Q(sort_time__gte=today)),
        energy_month=Sum("energy_wh", filter=Q(sort_time__gte=month)),
    )
    return SessionTotals(
        totals["today"],
        totals["energy_today"] or 0,
        totals["month"],
        totals["energy_month"] or 0,
    )


@dataclass(frozen=True)
class Attention:
    """One thing to look at: a station, what is wrong, since when."""

    station: Station
    problem: str
    since: datetime | None = None
    # Which check found it (e.g. "offline"): the page links each group to its list.
    check: str = ""


AttentionCheck = Callable[[QuerySet[Station]], list[Attention]]
ATTENTION_CHECKS: dict[str, AttentionCheck] = {}


def attention_check(name: str) -> Callable[[AttentionCheck], AttentionCheck]:
    """Register a "needs attention" check: `f(stations) -> [Attention]`, at most
    ATTENTION_LIMIT lines, over the already scoped `stations`."""

    def register(check: AttentionCheck) -> AttentionCheck:
        ATTENTION_CHECKS[name] = check
        return check

    return register


@attention_check("offline")
def _offline_long(stations: QuerySet[Station]) -> list[Attention]:
    cutoff = timezone.now() - OFFLINE_ATTENTION_AFTER
    rows = (
        stations.filter(connected=False, first_connected_at__isnull=False)
        .annotate(gone_since=Coalesce("disconnected_at", "last_seen"))
        .filter(Q(gone_since__lt=cutoff) | Q(gone_since__isnull=True))
        .order_by("gone_since", "pk")[:ATTENTION_LIMIT]
    )
    return [Attention(s, "Offline for more than an hour", s.gone_since, "offline") for s in rows]


@attention_check("faulted")
def _faulted_connectors(stations: QuerySet[Station]) -> list[Attention]:
    found = []
    for station in stations.filter(status=FAULTED).order_by("pk")[:ATTENTION_LIMIT]:
        found.append(
            Attention(
                station,
                f"Station Faulted ({station.error_code or 'no error code'})",
                station.status_updated_at,
                "faulted",
            )
        )
    connectors = (
        Connector.objects.filter(station__in=stations.values("pk"), status=FAULTED)
        .select_related("station")
        .order_by("status_timestamp", "pk")[:ATTENTION_LIMIT]
    )
    for connector in connectors:
        code = connector.error_code or "no error code"
        found.append(
            Attention(
                connector.station,
                f"Connector {connector.label} Faulted ({code})",
                connector.status_timestamp,
                "faulted",
            )
        )
    return found[:ATTENTION_LIMIT]


@attention_check("rejected")
def _boot_rejected(stations: QuerySet[Station]) -> list[Attention]:
    rows = stations.filter(registration_status=RegistrationStatus.REJECTED).order_by(
        "-last_boot_at", "pk"
    )[:ATTENTION_LIMIT]
    return [Attention(s, "Boot Rejected", s.last_boot_at, "rejected") for s in rows]


def needs_attention(stations: QuerySet[Station]) -> list[Attention]:
    """Every registered check's findings, check by check (a few queries each)."""
    found: list[Attention] = []
    for check in ATTENTION_CHECKS.values():
        found.extend(check(stations))
    return found
