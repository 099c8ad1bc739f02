"""Uptime per connector from the status history, with planned maintenance excluded.

The history (`StatusPeriod`) is sampled by the alerts worker each round
(`status_history_record`): a connector's state is *offline* while its station is not
connected, otherwise its OCPP status folded into available / in use / faulted /
unavailable / unknown. A gap in sampling longer than `HISTORY_GAP` (the worker was down)
is left out: it counts as unknown.

Uptime as AFIR defines it: the share of time a charge point was operational, out of the
time considered, where planned maintenance (and time nothing is known about) is excluded:

    uptime % = 100 × up / (up + down)
    up   = available + in use
    down = faulted + unavailable + offline      (outside planned maintenance)
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from alerts.models import (
    ConnectorState,
    EvaluatorState,
    PlannedMaintenance,
    StatusPeriod,
)
from stations.models import Connector

UP = (ConnectorState.AVAILABLE, ConnectorState.CHARGING)
DOWN = (ConnectorState.FAULTED, ConnectorState.UNAVAILABLE, ConnectorState.OFFLINE)
IN_USE = frozenset(
    {"Charging", "Occupied", "Preparing", "SuspendedEV", "SuspendedEVSE", "Finishing", "Reserved"}
)


def state_of(*, connected: bool, status: str) -> str:
    if not connected:
        return ConnectorState.OFFLINE
    if status == "Available":
        return ConnectorState.AVAILABLE
    if status in IN_USE:
        return ConnectorState.CHARGING
    if status == "Faulted":
        return ConnectorState.FAULTED
    if status == "Unavailable":
        return ConnectorState.UNAVAILABLE
    return ConnectorState.UNKNOWN


def history_gap() -> timedelta:
    return timedelta(seconds=max(60.0, 3 * settings.ALERTS_INTERVAL))


def status_history_record(*, now: datetime) -> int:
    """Sample every claimed station's connectors; returns the periods opened."""
    with transaction.atomic():
        state_row, _ = EvaluatorState.objects.select_for_update().get_or_create(pk=1)
        last = state_row.history_recorded_at
        if last is not None and now - last > history_gap():
            # The worker was away: what happened meanwhile is unknown.
            StatusPeriod.objects.filter(ended_at__isnull=True).update(ended_at=last)
        open_periods = {
            p.connector_id: p for p in StatusPeriod.objects.filter(ended_at__isnull=True)
        }
        current = Connector.objects.filter(station__cpo__isnull=False, connector_id__gt=0)
        closing, opening = [], []
        for pk, station_id, connected, status in current.values_list(
            "pk", "station_id", "station__connected", "status"
        ):
            state = state_of(connected=connected, status=status)
            period = open_periods.pop(pk, None)
            if period is not None and period.state == state:
                continue
            if period is not None:
                closing.append(period.pk)
            opening.append(
                StatusPeriod(station_id=station_id, connector_id=pk, state=state, started_at=now)
            )
        # Connectors gone from a CPO: their period ends.
        closing += [p.pk for p in open_periods.values()]
        StatusPeriod.objects.filter(pk__in=closing).update(ended_at=now)
        StatusPeriod.objects.bulk_create(opening)
        state_row.history_recorded_at = now
        state_row.save(update_fields=["history_recorded_at"])
    return len(opening)


# ---- computing ---------------------------------------------------------------------------


Interval = tuple[datetime, datetime]


def _clip(start: datetime, end: datetime, window: Interval) -> Interval | None:
    low, high = max(start, window[0]), min(end, window[1])
    return (low, high) if low < high else None


def _subtract(interval: Interval, holes: list[Interval]) -> list[Interval]:
    pieces = [interval]
    for hole_start, hole_end in holes:
        next_pieces = []
        for low, high in pieces:
            if hole_end <= low or hole_start >= high:
                next_pieces.append((low, high))
                continue
            if low < hole_start:
                next_pieces.append((low, hole_start))
            if hole_end < high:
                next_pieces.append((hole_end, high))
        pieces = next_pieces
    return pieces


def _merge(intervals: list[Interval]) -> list[Interval]:
    merged: list[Interval] = []
    for low, high in sorted(intervals):
        if merged and low <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], high))
        else:
            merged.append((low, high))
    return merged


@dataclass
class Uptime:
    """Seconds per state within a window, maintenance apart."""

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    maintenance: float = 0.0
    total: float = 0.0

    @property
    def up(self) -> float:
        return sum(self.seconds[s] for s in UP)

    @property
    def down(self) -> float:
        return sum(self.seconds[s] for s in DOWN)

    @property
    def unknown(self) -> float:
        """Sampled as unknown, or not sampled at all (the worker was away)."""
        return max(0.0, self.total - self.up - self.down - self.maintenance)

    @property
    def percent(self) -> float | None:
        """AFIR uptime (%), or None when nothing is known about the window."""
        considered = self.up + self.down
        return 100.0 * self.up / considered if considered else None


def uptime_compute(
    *,
    periods: list[tuple[str, datetime, datetime | None]],
    maintenance: list[Interval],
    window: Interval,
    now: datetime,
) -> Uptime:
    """Uptime of one connector within `window` from its periods (state, start, end)."""
    result = Uptime(total=(min(window[1], now) - window[0]).total_seconds())
    holes = _merge([c for m in maintenance if (c := _clip(m[0], m[1], window))])
    end_of_known = min(window[1], now)
    for low, high in holes:
        clipped = _clip(low, high, (window[0], end_of_known))
        if clipped:
            result.maintenance += (clipped[1] - clipped[0]).total_seconds()
    for state, started, ended in periods:
        clipped = _clip(started, ended or now, (window[0], end_of_known))
        if clipped is None:
            continue
        for low, high in _subtract(clipped, holes):
            result.seconds[state] += (high - low).total_seconds()
    return result


@dataclass
class ConnectorUptime:
    connector: Connector
    month: Uptime
    days: list[tuple[datetime, Uptime]]


def uptime_report(
    *, connectors: list[Connector], start: datetime, end: datetime, now: datetime
) -> list[ConnectorUptime]:
    """Uptime per connector for the window [start, end), and per day within it."""
    ids = [c.pk for c in connectors]
    periods: dict[int, list] = defaultdict(list)
    for connector_id, state, started, ended in (
        StatusPeriod.objects.filter(connector_id__in=ids, started_at__lt=end)
        .filter(Q(ended_at__isnull=True) | Q(ended_at__gt=start))
        .values_list("connector_id", "state", "started_at", "ended_at")
    ):
        periods[connector_id].append((state, started, ended))
    planned = list(
        PlannedMaintenance.objects.filter(
            station_id__in={c.station_id for c in connectors}, starts_at__lt=end, ends_at__gt=start
        ).values_list("station_id", "connector_id", "starts_at", "ends_at")
    )
    days = []
    day = start
    while day < end:
        days.append((day, min(day + timedelta(days=1), end)))
        day += timedelta(days=1)
    report = []
    for connector in connectors:
        holes = [
            (s, e)
            for station_id, connector_id, s, e in planned
            if station_id == connector.station_id and connector_id in (None, connector.pk)
        ]
        mine = periods[connector.pk]
        report.append(
            ConnectorUptime(
                connector=connector,
                month=uptime_compute(periods=mine, maintenance=holes, window=(start, end), now=now),
                days=[
                    (d0, uptime_compute(periods=mine, maintenance=holes, window=(d0, d1), now=now))
                    for d0, d1 in days
                    if d0 < now
                ],
            )
        )
    return report


def station_uptime_percent(
    *,
    station_ids: list[int],
    start: datetime,
    end: datetime,
    now: datetime,
    connectors: list[Connector] | None = None,
) -> dict[int, float | None]:
    """One figure per station for the window: its connectors' up and down time added.

    `connectors`: the stations' connectors when the caller has them (prefetched).
    """
    if connectors is None:
        connectors = list(Connector.objects.filter(station_id__in=station_ids, connector_id__gt=0))
    connectors = [c for c in connectors if c.connector_id > 0 and c.station_id in station_ids]
    totals: dict[int, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for row in uptime_report(connectors=connectors, start=start, end=end, now=now):
        totals[row.connector.station_id][0] += row.month.up
        totals[row.connector.station_id][1] += row.month.down
    return {
        station_id: (100.0 * up / (up + down) if up + down else None)
        for station_id, (up, down) in totals.items()
    }


def maintenance_plan(
    *, cpo, station, connector, starts_at: datetime, ends_at: datetime, reason: str, by
) -> PlannedMaintenance:
    """Record planned maintenance (excluded from uptime)."""
    return PlannedMaintenance.objects.create(
        cpo=cpo,
        station=station,
        connector=connector,
        starts_at=starts_at,
        ends_at=ends_at,
        reason=reason,
        created_by=by,
    )
