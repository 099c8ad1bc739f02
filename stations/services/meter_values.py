"""Meter values: what a sample means, by one rule whatever OCPP version sent it.

A stored sample keeps what the charger sent (the value as text, 2.x's multiplier, the
signature verbatim) and, next to it, the value normalised to the unit without prefix
(`normalized_value` in `normalized_unit`: Wh, W, varh, A…). Fields the charger left out
hold the OCPP default, the same on 1.6 and 2.x (`ocpp_spec.meter`).

The session's energy register is one series: the total (no phase) Energy.Active.Import
Register at the Outlet (the Inlet only when the session has no Outlet readings), never
the station's main meter (connector or EVSE 0). `register_summary` turns it into energy.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise

from django.db.models import Q
from django.utils import timezone

from ocpp_spec.meter import (
    BEGIN_CONTEXT,
    DEFAULT_CONTEXT,
    DEFAULT_LOCATION,
    END_CONTEXT,
    ENERGY_REGISTER,
    measurand_base_unit,
    normalize,
    number,
)
from stations.bulk import bulk_insert
from stations.models import MeterValue, Transaction

# Largest value a BigIntegerField / BigAutoField holds.
BIGINT_MAX = 2**63 - 1

REGISTER_LOCATIONS = ("Outlet", "Inlet")
# A charger's time this far ahead of the moment we received it is a wrong clock, as is a
# time before the charger's first connection (minus the same slack for clock drift).
CLOCK_SLACK = timedelta(minutes=10)


@dataclass
class MeterSample:
    """One sampled value as the charger sent it; an empty field was left out."""

    timestamp: datetime
    value: str
    measurand: str = ""
    phase: str = ""
    unit: str = ""
    context: str = ""
    location: str = ""
    # 2.x unitOfMeasure.multiplier: the value is value × 10^multiplier.
    multiplier: int = 0
    # 1.6 format SignedData (the value itself), 2.x signedMeterValue: verbatim.
    signed_data: str = ""
    signing_method: str = ""
    encoding_method: str = ""
    public_key: str = ""

    @property
    def effective_measurand(self) -> str:
        return self.measurand or ENERGY_REGISTER

    @property
    def effective_unit(self) -> str:
        return self.unit or measurand_base_unit(self.effective_measurand)

    @property
    def effective_context(self) -> str:
        return self.context or DEFAULT_CONTEXT

    @property
    def effective_location(self) -> str:
        return self.location or DEFAULT_LOCATION

    def normalized(self) -> tuple[float | None, str]:
        """(value in the unit without prefix, that unit); None when not a number."""
        return normalize(self.value, self.effective_unit, self.multiplier)


def time_is_suspicious(
    moment: datetime, *, received_at: datetime, first_connected_at: datetime | None
) -> bool:
    """Whether a charger's time lies far ahead of its receipt or before its first connection."""
    if moment > received_at + CLOCK_SLACK:
        return True
    return first_connected_at is not None and moment < first_connected_at - CLOCK_SLACK


# ---- the energy register -------------------------------------------------------------


@dataclass(frozen=True)
class RegisterReading:
    """One reading of the session's energy register, in Wh."""

    timestamp: datetime
    wh: float
    # Transaction.Begin, Sample.Periodic…: orders readings of the same instant.
    context: str = DEFAULT_CONTEXT

    @property
    def rank(self) -> int:
        return {BEGIN_CONTEXT: 0, END_CONTEXT: 2}.get(self.context, 1)


@dataclass(frozen=True)
class RegisterSummary:
    """What the register series says about a session."""

    start_wh: int | None
    stop_wh: int | None
    energy_wh: int | None
    # The register went backwards somewhere: energy counts the forward steps only.
    reset: bool


def register_summary(readings: Iterable[RegisterReading]) -> RegisterSummary:
    """Meter start, meter stop and energy from the session's register readings.

    Meter start is the Transaction.Begin reading (else the first), meter stop the
    Transaction.End reading (else the last). Energy is the sum of the register's forward
    steps in time order: the difference of the two for a register that only rises, and
    still what can be counted (a lower bound) for one that was reset or replaced.
    """
    ordered = sorted(readings, key=lambda r: (r.timestamp, r.rank))
    if not ordered:
        return RegisterSummary(None, None, None, False)
    begins = [r for r in ordered if r.context == BEGIN_CONTEXT]
    ends = [r for r in ordered if r.context == END_CONTEXT]
    start = begins[0] if begins else ordered[0]
    stop = ends[-1] if ends else ordered[-1]
    energy, reset = 0.0, False
    for before, after in pairwise(ordered):
        step = after.wh - before.wh
        if step >= 0:
            energy += step
        else:
            reset = True
    return RegisterSummary(whole_wh(start.wh), whole_wh(stop.wh), whole_wh(energy), reset)


def whole_wh(value: float) -> int | None:
    """`value` rounded to a whole Wh, or None when no BigIntegerField could hold it."""
    rounded = round(value)
    return rounded if -BIGINT_MAX <= rounded <= BIGINT_MAX else None


def register_q() -> Q:
    """The stored samples of a session's energy register (both locations; see `pick_series`)."""
    return (
        Q(
            measurand=ENERGY_REGISTER,
            phase="",
            normalized_unit="Wh",
            normalized_value__isnull=False,
            location__in=REGISTER_LOCATIONS,
        )
        & ~Q(connector_id=0)
        & ~Q(evse_id=0)
    )


def pick_series(rows: Sequence[tuple[str, RegisterReading]]) -> list[RegisterReading]:
    """The Outlet readings of (location, reading) pairs, or the Inlet ones when there are none."""
    outlet = [reading for location, reading in rows if location == "Outlet"]
    return outlet or [reading for location, reading in rows if location == "Inlet"]


def transaction_register_readings(transaction_id: int) -> list[RegisterReading]:
    """The session's stored register series (one query)."""
    rows = (
        MeterValue.objects.filter(register_q(), transaction_id=transaction_id)
        .order_by("timestamp", "id")
        .values_list("location", "timestamp", "normalized_value", "context")
    )
    return pick_series([(loc, RegisterReading(at, wh, ctx)) for loc, at, wh, ctx in rows])


def sample_register_readings(samples: Iterable[MeterSample]) -> list[RegisterReading]:
    """The register series of samples not stored yet (the same rule as `register_q`)."""
    rows = []
    for sample in samples:
        if sample.effective_measurand != ENERGY_REGISTER or sample.phase:
            continue
        wh, unit = sample.normalized()
        if wh is None or unit != "Wh" or sample.effective_location not in REGISTER_LOCATIONS:
            continue
        rows.append(
            (
                sample.effective_location,
                RegisterReading(sample.timestamp, wh, sample.effective_context),
            )
        )
    return pick_series(rows)


# ---- storing -------------------------------------------------------------------------


@dataclass(frozen=True)
class MeterReading:
    """One MeterValues frame: its samples and what the charger said they belong to."""

    station_id: int
    samples: Sequence[MeterSample]
    transaction_id: int | None = None
    connector_id: int | None = None
    evse_id: int | None = None
    received_at: datetime | None = None


def meter_readings_store(readings: Sequence[MeterReading]) -> list[int]:
    """Store the samples of any number of MeterValues frames in one insert.

    A 1.6 `transaction_id` links the samples to that transaction of the station when it
    exists (values of an unknown transaction are still kept), and gives the connector
    when the frame named none. A sample whose time is implausible flags its session
    (`suspicious_timestamp`; one more statement, only then). The caller owns the
    transaction (the gateway's group commit writes many chargers' frames in one).
    Returns the count stored per reading.
    """
    wanted = {
        r.transaction_id
        for r in readings
        if r.samples and r.transaction_id is not None and 0 < r.transaction_id <= BIGINT_MAX
    }
    known = (
        {
            pk: rest
            for pk, *rest in Transaction.objects.filter(
                pk__in=wanted, orphan_stop=False
            ).values_list(
                "pk",
                "station_id",
                "connector__connector_id",
                "suspicious_timestamp",
                "station__first_connected_at",
            )
        }
        if wanted
        else {}
    )
    now = timezone.now()
    rows: list[tuple] = []
    counts = []
    suspicious: set[int] = set()
    for r in readings:
        transaction_pk, connector_id = None, r.connector_id
        found = known.get(r.transaction_id)
        if found is not None and found[0] == r.station_id:
            transaction_pk = r.transaction_id
            if connector_id is None:
                connector_id = found[1]
            received = r.received_at or now
            if not found[2] and any(
                time_is_suspicious(s.timestamp, received_at=received, first_connected_at=found[3])
                for s in r.samples
            ):
                suspicious.add(transaction_pk)
        batch = meter_rows(
            r.station_id,
            r.samples,
            transaction_pk=transaction_pk,
            connector_id=connector_id,
            evse_id=r.evse_id,
            received_at=r.received_at or now,
        )
        rows.extend(batch)
        counts.append(len(batch))
    if rows:
        bulk_insert(MeterValue, METER_VALUE_COLUMNS, rows)
    if suspicious:
        Transaction.objects.filter(pk__in=suspicious, suspicious_timestamp=False).update(
            suspicious_timestamp=True
        )
    return counts


METER_VALUE_COLUMNS = (
    "station_id",
    "transaction_id",
    "connector_id",
    "evse_id",
    "timestamp",
    "received_at",
    "measurand",
    "phase",
    "unit",
    "multiplier",
    "context",
    "location",
    "value",
    "numeric_value",
    "normalized_value",
    "normalized_unit",
    "signed_data",
    "signing_method",
    "encoding_method",
    "public_key",
)


def meter_rows(
    station_id: int,
    samples: Iterable[MeterSample],
    *,
    transaction_pk: int | None,
    connector_id: int | None,
    evse_id: int | None,
    received_at: datetime,
) -> list[tuple]:
    """Rows of METER_VALUE_COLUMNS. Strings are cut to their columns, except the
    signature and key: evidence is kept whole."""
    rows = []
    for sample in samples:
        normalized, normalized_unit = sample.normalized()
        # What was sent, when the column holds it (a wild one is not applied anyway).
        multiplier = sample.multiplier if -(2**15) <= sample.multiplier < 2**15 else 0
        rows.append(
            (
                station_id,
                transaction_pk,
                connector_id,
                evse_id,
                sample.timestamp,
                received_at,
                _clip("measurand", sample.effective_measurand),
                _clip("phase", sample.phase),
                _clip("unit", sample.effective_unit),
                multiplier,
                _clip("context", sample.effective_context),
                _clip("location", sample.effective_location),
                _clip("value", sample.value),
                number(sample.value),
                normalized,
                _clip("normalized_unit", normalized_unit),
                sample.signed_data,
                _clip("signing_method", sample.signing_method),
                _clip("encoding_method", sample.encoding_method),
                sample.public_key,
            )
        )
    return rows


def _clip(field: str, value: str | None) -> str:
    return (value or "")[: MeterValue._meta.get_field(field).max_length]
