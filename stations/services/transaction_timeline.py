"""Reading a session back: its timeline, its energy so far, its signed values.

Selectors: they never write. The timeline is what pricing (a tariff engine), charts and
roaming (OCPI) need from a session, in one shape for both OCPP versions:

    timeline = transaction_timeline(transaction_id=tx.pk)
    timeline.samples   # [TimelineSample(timestamp, energy_wh, power_w)], time order
    timeline.states    # [StateInterval(state, start, end)], back to back
    timeline.energy_wh # the session's energy (settled, or so far)

- `energy_wh` of a sample is the session's energy register in Wh (normalised: a kWh
  reading is ×1000), `power_w` the total active import power in W (the sum of the
  phases when only per-phase values were sent); either is None at an instant that had
  none. 1.6's meterStart and meterStop are samples at the start and stop times.
- `states` cover the session from its first reported charging state to its end (None
  while it runs): Charging, EVConnected, SuspendedEV, SuspendedEVSE, Idle (2.x
  chargingState; 1.6 connector statuses mapped onto them, see `charging_sessions.py`).
  `charging_seconds` / `idle_seconds` sum them; `time_spent_charging` is what a 2.x
  charger itself counted.
- The flags (`incomplete`, `meter_reset`, `superseded`, `suspicious_timestamp`) are the
  session's, copied so a price can say it rests on doubtful data.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Q

from ocpp_spec.meter import BEGIN_CONTEXT, END_CONTEXT, POWER_IMPORT
from stations.models import MeterValue, Transaction, TransactionEvent
from stations.services.meter_values import (
    REGISTER_LOCATIONS,
    RegisterReading,
    pick_series,
    register_q,
    register_summary,
)

# Per-phase power values that add up to the total (not L1-L2, not N).
_LINE_PHASES = {"L1", "L2", "L3", "L1-N", "L2-N", "L3-N"}
_CHARGING = TransactionEvent.ChargingState.CHARGING
_IDLE_STATES = {
    TransactionEvent.ChargingState.EV_CONNECTED,
    TransactionEvent.ChargingState.SUSPENDED_EV,
    TransactionEvent.ChargingState.SUSPENDED_EVSE,
    TransactionEvent.ChargingState.IDLE,
}


@dataclass(frozen=True)
class TimelineSample:
    timestamp: datetime
    energy_wh: float | None = None
    power_w: float | None = None


@dataclass(frozen=True)
class StateInterval:
    state: str
    start: datetime
    # None: the session is still in this state.
    end: datetime | None

    @property
    def charging(self) -> bool:
        return self.state == _CHARGING

    def seconds(self, until: datetime | None = None) -> float:
        end = self.end or until
        return max(0.0, (end - self.start).total_seconds()) if end else 0.0


@dataclass(frozen=True)
class SessionTimeline:
    transaction_id: int
    start: datetime | None
    end: datetime | None
    energy_wh: int | None
    meter_start_wh: int | None
    meter_stop_wh: int | None
    incomplete: bool
    meter_reset: bool
    superseded: bool
    suspicious_timestamp: bool
    time_spent_charging: int | None
    samples: list[TimelineSample] = field(default_factory=list)
    states: list[StateInterval] = field(default_factory=list)

    def charging_seconds(self, until: datetime | None = None) -> float:
        return sum(s.seconds(until) for s in self.states if s.charging)

    def idle_seconds(self, until: datetime | None = None) -> float:
        return sum(s.seconds(until) for s in self.states if s.state in _IDLE_STATES)


def transaction_timeline(*, transaction_id: int) -> SessionTimeline:
    """The session's samples and state intervals (three queries). Raises
    Transaction.DoesNotExist; scope the id first (`Station.objects.for_user`)."""
    tx = Transaction.objects.get(pk=transaction_id)
    rows = list(
        MeterValue.objects.filter(transaction_id=tx.pk)
        .filter(register_q() | Q(measurand=POWER_IMPORT, normalized_unit="W"))
        .exclude(normalized_value__isnull=True)
        .order_by("timestamp", "id")
        .values_list("timestamp", "measurand", "phase", "location", "context", "normalized_value")
    )
    register = pick_series(
        [
            (location, RegisterReading(at, value, context))
            for at, measurand, phase, location, context, value in rows
            if measurand != POWER_IMPORT and location in REGISTER_LOCATIONS
        ]
    )
    if not tx.charger_transaction_id:
        # 1.6: meterStart and meterStop are readings of the register too.
        if tx.meter_start is not None and tx.start_time is not None:
            register.append(RegisterReading(tx.start_time, tx.meter_start, BEGIN_CONTEXT))
        if tx.meter_stop is not None and tx.stop_time is not None and not tx.superseded:
            register.append(RegisterReading(tx.stop_time, tx.meter_stop, END_CONTEXT))
    energy: dict[datetime, float] = {}
    for reading in sorted(register, key=lambda r: (r.timestamp, r.rank)):
        energy[reading.timestamp] = reading.wh
    power = _power_by_time(rows)
    samples = [
        TimelineSample(at, energy.get(at), power.get(at)) for at in sorted(energy.keys() | power)
    ]
    summary = register_summary(register)
    events = list(tx.events.order_by("timestamp", "seq_no", "id"))
    spent = [e.time_spent_charging for e in events if e.time_spent_charging is not None]
    return SessionTimeline(
        transaction_id=tx.pk,
        start=tx.start_time,
        end=tx.stop_time,
        energy_wh=tx.energy_wh if tx.state == Transaction.State.ENDED else summary.energy_wh,
        meter_start_wh=tx.meter_start if tx.meter_start is not None else summary.start_wh,
        meter_stop_wh=tx.meter_stop,
        incomplete=tx.incomplete,
        meter_reset=tx.meter_reset or summary.reset,
        superseded=tx.superseded,
        suspicious_timestamp=tx.suspicious_timestamp,
        time_spent_charging=spent[-1] if spent else None,
        samples=samples,
        states=_state_intervals(events, stop=tx.stop_time),
    )


def _power_by_time(rows: list[tuple]) -> dict[datetime, float]:
    totals: dict[datetime, float] = {}
    phases: dict[datetime, dict[str, float]] = defaultdict(dict)
    for at, measurand, phase, location, _context, value in rows:
        if measurand != POWER_IMPORT or location not in ("Outlet", ""):
            continue
        if not phase:
            totals[at] = value
        elif phase in _LINE_PHASES:
            phases[at][phase] = value
    for at, values in phases.items():
        totals.setdefault(at, sum(values.values()))
    return totals


def _state_intervals(
    events: list[TransactionEvent], *, stop: datetime | None
) -> list[StateInterval]:
    intervals: list[StateInterval] = []
    state, since = "", None
    for event in events:
        if not event.charging_state or event.charging_state == state:
            continue
        if stop is not None and event.timestamp >= stop:
            break
        if state:
            intervals.append(StateInterval(state, since, event.timestamp))
        state, since = event.charging_state, event.timestamp
    if state:
        intervals.append(StateInterval(state, since, stop))
    return intervals


def transactions_energy_so_far(transactions: list[Transaction]) -> dict[int, int | None]:
    """Energy in Wh of each session: settled for an ended one, else its register's latest
    reading minus its meter start (or first reading). One query for all running ones."""
    result: dict[int, int | None] = {}
    running = []
    for tx in transactions:
        if tx.state == Transaction.State.ENDED:
            result[tx.pk] = tx.energy_wh
        else:
            running.append(tx)
    if not running:
        return result
    rows = (
        MeterValue.objects.filter(register_q(), transaction__in=running)
        .order_by("transaction_id", "timestamp", "id")
        .values_list("transaction_id", "location", "timestamp", "normalized_value", "context")
    )
    by_tx: dict[int, list] = defaultdict(list)
    for pk, location, at, wh, context in rows.iterator():
        by_tx[pk].append((location, RegisterReading(at, wh, context)))
    for tx in running:
        series = pick_series(by_tx.get(tx.pk, []))
        if tx.meter_start is not None and tx.start_time is not None:
            series.append(RegisterReading(tx.start_time, tx.meter_start, BEGIN_CONTEXT))
        result[tx.pk] = register_summary(series).energy_wh if series else None
    return result


def transactions_power_from_energy(transactions: list[Transaction]) -> dict[int, float | None]:
    """For sessions whose charger sends no power samples: the mean power (W) between the
    last two readings of the energy register. One probe of metervalue_tx_time_idx each
    (a station page has one or two running sessions)."""
    result: dict[int, float | None] = {}
    for tx in transactions:
        last = list(
            MeterValue.objects.filter(register_q(), transaction_id=tx.pk, location="Outlet")
            .order_by("-timestamp", "-id")
            .values_list("timestamp", "normalized_value")[:2]
        )
        result[tx.pk] = None
        if len(last) == 2:
            (t1, wh1), (t0, wh0) = last
            seconds = (t1 - t0).total_seconds()
            if seconds > 0 and wh1 >= wh0:
                result[tx.pk] = (wh1 - wh0) * 3600 / seconds
    return result


def transaction_signed_values(*, transaction_id: int) -> list[MeterValue]:
    """The session's signed samples, verbatim, in time order."""
    return list(
        MeterValue.objects.filter(transaction_id=transaction_id)
        .exclude(signed_data="")
        .order_by("timestamp", "id")
    )
