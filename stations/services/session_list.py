"""The Sessions page and its CSV export: selectors over 1.6 and 2.x sessions alike.

Sessions are listed newest first by (sort time, id), the sort time being the session's
start (its creation for a stop whose start never came), and paged by keyset: a page is
"the next N after this (time, id)", one probe of `transaction_sort_idx` (or
`transaction_station_sort_idx` for one station) however deep. Never OFFSET.

A session's state, for people:
- running: its stop has not arrived;
- finished: the charger stopped it (EV, driver, charger, power loss...);
- stopped by backend: stopped on the backend's word (RemoteStop from the panel, a tag
  the backend refused: DeAuthorized) or closed because a newer one began (superseded);
- never stopped: closed by the backend because the connector became Available or the
  station rebooted while it was still running (`charging_sessions.session_close_never_stopped`).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db import models
from django.db.models import Max, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce, Lower
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from ocpp_spec.meter import POWER_IMPORT
from stations.models import IdTag, MeterValue, Station, Transaction
from stations.services.transaction_timeline import transactions_energy_so_far

PAGE_SIZE = 50
# Stop reasons that mean the backend ended the session (both OCPP versions spell them so).
BACKEND_STOP_REASONS = ("Remote", "DeAuthorized")


class SessionState(models.TextChoices):
    RUNNING = "running", "Running"
    FINISHED = "finished", "Finished"
    STOPPED_BY_BACKEND = "backend", "Stopped by backend"
    NEVER_STOPPED = "never_stopped", "Never stopped"


def session_state_q(state: str) -> Q:
    """The filter for one SessionState."""
    ended = Q(state=Transaction.State.ENDED)
    by_backend = Q(stop_reason__in=BACKEND_STOP_REASONS) | Q(superseded=True)
    if state == SessionState.RUNNING:
        return Q(state=Transaction.State.ACTIVE)
    if state == SessionState.NEVER_STOPPED:
        return ended & Q(never_stopped=True)
    if state == SessionState.STOPPED_BY_BACKEND:
        return ended & Q(never_stopped=False) & by_backend
    if state == SessionState.FINISHED:
        return ended & Q(never_stopped=False) & ~by_backend
    raise ValueError(f"Unknown session state {state!r}")


def session_state_of(tx: Transaction) -> SessionState:
    if tx.state == Transaction.State.ACTIVE:
        return SessionState.RUNNING
    if tx.never_stopped:
        return SessionState.NEVER_STOPPED
    if tx.superseded or tx.stop_reason in BACKEND_STOP_REASONS:
        return SessionState.STOPPED_BY_BACKEND
    return SessionState.FINISHED


@dataclass(frozen=True)
class SessionFilters:
    """What the Sessions page narrows to. Dates are whole days in `zone`."""

    cpo_id: int | None = None
    station_id: int | None = None
    since: date | None = None
    until: date | None = None
    tag: str = ""
    state: str = ""
    zone: ZoneInfo | None = None


def _day_start(day: date, zone: ZoneInfo | None) -> datetime:
    return datetime.combine(day, time.min, tzinfo=zone or timezone.get_current_timezone())


def _tag_label_field() -> bool:
    """Whether ID tags carry a label (the ID tags page adds it)."""
    return any(f.name == "label" for f in IdTag._meta.get_fields())


def sessions_for(*, user, filters: SessionFilters | None = None) -> QuerySet[Transaction]:
    """The user's sessions (those of stations `Station.objects.for_user` gives), narrowed
    by `filters`, newest first, annotated with `sort_time`, `max_power_w` and, when tags
    have labels, `tag_label`. Raises ValueError for an unknown state."""
    filters = filters or SessionFilters()
    stations = Station.objects.for_user(user)
    if filters.cpo_id is not None:
        stations = stations.filter(cpo_id=filters.cpo_id)
    sessions = (
        Transaction.objects.filter(station__in=stations.values("pk"))
        .annotate(sort_time=Coalesce("start_time", "created_at"))
        .select_related("station", "connector")
    )
    if filters.station_id is not None:
        sessions = sessions.filter(station_id=filters.station_id)
    if filters.since is not None:
        sessions = sessions.filter(sort_time__gte=_day_start(filters.since, filters.zone))
    if filters.until is not None:
        end = _day_start(filters.until + timedelta(days=1), filters.zone)
        sessions = sessions.filter(sort_time__lt=end)
    if filters.state:
        sessions = sessions.filter(session_state_q(filters.state))
    if filters.tag:
        sessions = sessions.alias(id_tag_lower=Lower("id_tag")).filter(
            _tag_q(filters.tag, stations)
        )
    power = (
        MeterValue.objects.filter(
            transaction=OuterRef("pk"), measurand=POWER_IMPORT, normalized_unit="W", phase=""
        )
        .values("transaction")
        .annotate(peak=Max("normalized_value"))
        .values("peak")
    )
    sessions = sessions.annotate(max_power_w=Subquery(power[:1]))
    if _tag_label_field():
        label = (
            IdTag.objects.filter(cpo_id=OuterRef("station__cpo_id"))
            .alias(tag_lower=Lower("tag"))
            .filter(tag_lower=Lower(OuterRef("id_tag")))
            .values("label")[:1]
        )
        sessions = sessions.annotate(tag_label=Subquery(label))
    return sessions.order_by("-sort_time", "-id")


def _tag_q(tag: str, stations: QuerySet[Station]) -> Q:
    """Sessions of this tag value (any case), or of the tags whose label is `tag`."""
    q = Q(id_tag_lower=tag.lower())
    if _tag_label_field():
        labelled = (
            IdTag.objects.filter(cpo_id__in=stations.values("cpo_id"), label__iexact=tag)
            .annotate(tag_lower=Lower("tag"))
            .values("tag_lower")
        )
        q |= Q(id_tag_lower__in=labelled)
    return q


@dataclass(frozen=True)
class SessionPage:
    sessions: list[Transaction]
    # The cursor of the next (older) page, or "" when this is the last.
    next_cursor: str


def cursor_encode(tx: Transaction) -> str:
    raw = f"{tx.sort_time.isoformat()}|{tx.pk}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def cursor_decode(cursor: str) -> tuple[datetime, int] | None:
    """(sort time, id) of a cursor, None for anything that is not one."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, pk = raw.rsplit("|", 1)
        moment = parse_datetime(at)
        if moment is None or timezone.is_naive(moment):
            return None
        return moment, int(pk)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None


def sessions_after(sessions: QuerySet[Transaction], cursor: str) -> QuerySet[Transaction]:
    """`sessions` (ordered by sessions_for) after `cursor`. The `sort_time <= t` bound
    lets the index scan start at the cursor; the OR only settles ties within it."""
    position = cursor_decode(cursor) if cursor else None
    if position is None:
        return sessions
    at, pk = position
    return sessions.filter(Q(sort_time__lte=at), Q(sort_time__lt=at) | Q(id__lt=pk))


def session_page(
    sessions: QuerySet[Transaction], *, cursor: str = "", size: int | None = None
) -> SessionPage:
    """One page of `sessions` after `cursor`, each with `energy_wh_so_far` (running ones
    from their register) and `session_state`."""
    size = size or PAGE_SIZE
    rows = list(sessions_after(sessions, cursor)[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    _decorate(rows)
    return SessionPage(rows, cursor_encode(rows[-1]) if more and rows else "")


def _decorate(rows: list[Transaction]) -> None:
    energy = transactions_energy_so_far(rows)
    now = timezone.now()
    for tx in rows:
        tx.energy_wh_so_far = energy.get(tx.pk)
        tx.session_state = session_state_of(tx)
        end = tx.stop_time or (now if tx.state == Transaction.State.ACTIVE else None)
        tx.duration = end - tx.start_time if end and tx.start_time else None
        if not hasattr(tx, "tag_label"):
            tx.tag_label = None


# ---- CSV -------------------------------------------------------------------------------

# The export's columns, in order, with what each holds (README "Sessions").
CSV_COLUMNS = (
    ("session", "the transactionId the charger knows (1.6: the backend's number)"),
    ("ocpp_version", "1.6 or 2.x"),
    ("station_cbid", "the station's CBID"),
    ("station_name", "the station's name"),
    ("connector", "connector (1.6) or EVSE/connector (2.x)"),
    ("id_tag", "the tag that started the session"),
    ("tag_label", "that tag's label, when the CPO knows the tag"),
    ("start", "start, ISO 8601 with the CPO's UTC offset"),
    ("stop", "stop, ISO 8601 with offset; empty while running"),
    ("duration_s", "seconds from start to stop (to now while running)"),
    ("energy_kwh", "energy in kWh, 3 decimals (so far, while running)"),
    ("max_power_kw", "highest total active import power sampled, kW"),
    ("stop_reason", "the stop reason the charger gave"),
    ("state", "running, finished, backend (stopped by backend), never_stopped"),
    ("flags", "incomplete, meter_reset, superseded, suspicious_timestamp, orphan_stop"),
)
CSV_CHUNK = 1000
FLAGS = ("incomplete", "meter_reset", "superseded", "suspicious_timestamp", "orphan_stop")


def sessions_csv_chunk(
    sessions: QuerySet[Transaction], *, cursor: str, zone: ZoneInfo, size: int | None = None
) -> tuple[list[list[str]], str]:
    """CSV rows of the next `size` sessions after `cursor`, and the cursor after them
    ("" at the end). Keyset chunks: the export never holds more than one in memory."""
    page = session_page(sessions, cursor=cursor, size=size or CSV_CHUNK)
    return [_csv_row(tx, zone) for tx in page.sessions], page.next_cursor


def sessions_csv_rows(
    sessions: QuerySet[Transaction], *, zone: ZoneInfo, size: int | None = None
) -> Iterator[list[str]]:
    """Every CSV row, chunk by chunk (synchronous callers: tests, the CLI)."""
    cursor = ""
    while True:
        rows, cursor = sessions_csv_chunk(sessions, cursor=cursor, zone=zone, size=size)
        yield from rows
        if not cursor:
            return


def _iso(moment: datetime | None, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).isoformat(timespec="seconds") if moment else ""


def _csv_row(tx: Transaction, zone: ZoneInfo) -> list[str]:
    energy = tx.energy_wh_so_far
    return [
        tx.ocpp_id,
        "1.6" if not tx.charger_transaction_id else "2.x",
        tx.station.cbid,
        tx.station.name,
        tx.connector.label if tx.connector else "",
        tx.id_tag,
        tx.tag_label or "",
        _iso(tx.start_time, zone),
        _iso(tx.stop_time, zone),
        str(int(tx.duration.total_seconds())) if tx.duration is not None else "",
        f"{energy / 1000:.3f}" if energy is not None else "",
        f"{tx.max_power_w / 1000:.3f}" if tx.max_power_w is not None else "",
        tx.stop_reason,
        tx.session_state.value,
        " ".join(flag for flag in FLAGS if getattr(tx, flag)),
    ]
