"""Charging data: connector status and meter values, written in batches.

Version-neutral: the OCPP 1.6 and 2.x handlers send StatusNotification and MeterValues
through the gateway's group commit (`charging_data_write`: many chargers' frames in one
transaction, each answered once it is committed). Strings that come from a charger are
cut to the model's field lengths rather than refused.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, models
from django.db.transaction import atomic
from django.utils import timezone

from ocpp_spec.meter import ENERGY_REGISTER
from stations.bulk import bulk_insert, bulk_update, write_batch
from stations.models import Connector, MeterValue, Station, Transaction

logger = logging.getLogger(__name__)

# Largest value a BigIntegerField / BigAutoField holds.
BIGINT_MAX = 2**63 - 1


@dataclass
class MeterSample:
    """One sampled value, whatever message carried it."""

    timestamp: datetime
    value: str
    measurand: str = ENERGY_REGISTER
    phase: str = ""
    unit: str = ""
    context: str = ""
    location: str = ""


def clip(model: type[models.Model], field: str, value: str | None) -> str:
    """`value` cut to the length of `model.field` (charger strings are never refused here)."""
    max_length = model._meta.get_field(field).max_length
    return (value or "")[:max_length]


# ---- connectors ----------------------------------------------------------------------


@dataclass(frozen=True)
class StatusReport:
    """One StatusNotification, whatever version sent it.

    Connector 0 without an EVSE (OCPP 1.6) is the station itself.
    """

    station_id: int
    connector_id: int
    status: str
    error_code: str = ""
    info: str = ""
    vendor_id: str = ""
    vendor_error_code: str = ""
    timestamp: datetime | None = None
    evse_id: int | None = None

    @property
    def is_station(self) -> bool:
        return self.connector_id == 0 and self.evse_id is None


def connector_statuses_set(reports: Sequence[StatusReport]) -> list[None]:
    """Record StatusNotifications of any number of stations, in a few statements.

    Any connector but the station itself gets a Connector row, created on first report.
    A report older than the stored one (chargers replay queued notifications after being
    offline) is ignored, and of several reports for one connector the newest wins, as if
    they had been written one by one. The caller owns the transaction (the gateway's
    group commit writes many chargers' reports in one). Returns one None per report.
    """
    now = timezone.now()
    # Per target, the report that one-by-one writes would leave: the newest, the later
    # of equals. A charger whose clock runs ahead must not lock out its later reports.
    latest: dict[tuple, tuple[StatusReport, datetime]] = {}
    for report in reports:
        when = now if report.timestamp is None else min(report.timestamp, now)
        key = (report.station_id, report.evse_id, report.connector_id)
        if key not in latest or latest[key][1] <= when:
            latest[key] = (report, when)
    stations = [(r, when) for r, when in latest.values() if r.is_station]
    connectors = [(r, when) for r, when in latest.values() if not r.is_station]
    if stations:
        _stations_status_update(stations, now)
    if connectors:
        _connectors_status_update(connectors, now)
    return [None] * len(reports)


def _stations_status_update(reports: list[tuple[StatusReport, datetime]], now: datetime) -> None:
    # One conditional UPDATE: a concurrent older report cannot overwrite a newer one.
    bulk_update(
        Station,
        keys=("id",),
        columns=("status", "error_code", "status_info", "status_updated_at"),
        rows=[
            (
                r.station_id,
                clip(Station, "status", r.status),
                clip(Station, "error_code", r.error_code),
                clip(Station, "status_info", r.info),
                when,
            )
            for r, when in reports
        ],
        not_newer="status_updated_at",
        also={"updated_at": now},
    )


def _connector_pks(keys: set[tuple[int, int | None, int]]) -> dict[tuple, int]:
    """(station, evse, connector) → Connector pk, creating the connectors not seen yet."""

    def existing() -> dict[tuple, int]:
        found = Connector.objects.filter(station_id__in={k[0] for k in keys}).values_list(
            "station_id", "evse_id", "connector_id", "pk"
        )
        return {(s, e, c): pk for s, e, c, pk in found if (s, e, c) in keys}

    pks = existing()
    missing = keys - pks.keys()
    if missing:
        # Another report may create the same connector meanwhile: conflicts are skipped,
        # then everything is read back.
        Connector.objects.bulk_create(
            [
                Connector(station_id=s, evse_id=e, connector_id=c)
                for s, e, c in sorted(missing, key=lambda k: (k[0], k[1] or 0, k[2]))
            ],
            ignore_conflicts=True,
        )
        pks = existing()
    return pks


def _connectors_status_update(reports: list[tuple[StatusReport, datetime]], now: datetime) -> None:
    # One UPDATE joined on the connectors' natural key. Reports it did not apply are for
    # connectors not created yet (created, then applied), or older than the stored status.
    missed = _connectors_status_apply(reports, now)
    if missed:
        created = _connector_pks(missed)
        _connectors_status_apply(
            [
                (r, when)
                for r, when in reports
                if (r.station_id, r.evse_id, r.connector_id) in created
            ],
            now,
        )


def _connectors_status_apply(
    reports: list[tuple[StatusReport, datetime]], now: datetime
) -> set[tuple[int, int | None, int]]:
    """The conditional UPDATE; returns the (station, evse, connector) keys it left alone."""
    if not reports:
        return set()
    rows = [
        (
            r.station_id,
            r.evse_id,
            r.connector_id,
            clip(Connector, "status", r.status),
            clip(Connector, "error_code", r.error_code),
            clip(Connector, "info", r.info),
            clip(Connector, "vendor_id", r.vendor_id),
            clip(Connector, "vendor_error_code", r.vendor_error_code),
            when,
        )
        for r, when in reports
    ]
    applied = bulk_update(
        Connector,
        keys=("station_id", "evse_id", "connector_id"),
        columns=(
            "status",
            "error_code",
            "info",
            "vendor_id",
            "vendor_error_code",
            "status_timestamp",
        ),
        rows=rows,
        not_newer="status_timestamp",
        also={"updated_at": now},
        returning=True,
    )
    return {row[:3] for row in rows} - applied


def connector_get_or_create(
    *, station_id: int, connector_id: int, evse_id: int | None = None
) -> Connector:
    """The station's connector (`evse_id` None for 1.6), created when first reported."""
    lookup = {"station_id": station_id, "connector_id": connector_id, "evse_id": evse_id}
    if evse_id is None:
        lookup = {"station_id": station_id, "connector_id": connector_id, "evse_id__isnull": True}
    existing = Connector.objects.filter(**lookup).first()
    if existing is not None:
        return existing
    try:
        # A savepoint: losing the race to another report must not break the caller's atomic.
        with atomic():
            return Connector.objects.create(
                station_id=station_id, connector_id=connector_id, evse_id=evse_id
            )
    except IntegrityError:
        return Connector.objects.get(**lookup)


# ---- meter values --------------------------------------------------------------------


@dataclass(frozen=True)
class MeterReading:
    """One MeterValues frame: its samples and what the charger said they belong to."""

    station_id: int
    samples: Sequence[MeterSample]
    transaction_id: int | None = None
    connector_id: int | None = None
    evse_id: int | None = None


def meter_values_store(
    *,
    station_id: int,
    samples: list[MeterSample],
    transaction: Transaction | None = None,
    transaction_id: int | None = None,
    connector_id: int | None = None,
    evse_id: int | None = None,
) -> int:
    """Store sampled values in one insert; returns how many were stored.

    The samples are linked to `transaction`, or to the station's 1.6 transaction with pk
    `transaction_id` when it exists (values of an unknown transaction are still kept).
    """
    if not samples:
        return 0
    if transaction is not None:
        transaction_id = transaction.pk
    reading = MeterReading(station_id, samples, transaction_id, connector_id, evse_id)
    with atomic():
        return meter_readings_store([reading])[0]


def meter_readings_store(readings: Sequence[MeterReading]) -> list[int]:
    """Store the samples of any number of MeterValues frames in one insert.

    A 1.6 `transaction_id` links the samples to that transaction of the station when it
    exists (values of an unknown transaction are still kept), and gives the connector
    when the frame named none. The caller owns the transaction (the gateway's group
    commit writes many chargers' frames in one). Returns the count stored per reading.
    """
    wanted = {
        r.transaction_id
        for r in readings
        if r.samples and r.transaction_id is not None and 0 < r.transaction_id <= BIGINT_MAX
    }
    known = (
        {
            pk: (station_id, connector)
            for pk, station_id, connector in Transaction.objects.filter(pk__in=wanted).values_list(
                "pk", "station_id", "connector__connector_id"
            )
        }
        if wanted
        else {}
    )
    rows: list[tuple] = []
    counts = []
    for r in readings:
        transaction_pk, connector_id = None, r.connector_id
        found = known.get(r.transaction_id)
        if found is not None and found[0] == r.station_id:
            transaction_pk = r.transaction_id
            if connector_id is None:
                connector_id = found[1]
        batch = _meter_rows(r.station_id, r.samples, transaction_pk, connector_id, r.evse_id)
        rows.extend(batch)
        counts.append(len(batch))
    if rows:
        bulk_insert(MeterValue, METER_VALUE_COLUMNS, rows)
    return counts


METER_VALUE_COLUMNS = (
    "station_id",
    "transaction_id",
    "connector_id",
    "evse_id",
    "timestamp",
    "measurand",
    "phase",
    "unit",
    "context",
    "location",
    "value",
    "numeric_value",
)


def _meter_rows(
    station_id: int,
    samples: Iterable[MeterSample],
    transaction_pk: int | None,
    connector_id: int | None,
    evse_id: int | None,
) -> list[tuple]:
    """Rows of METER_VALUE_COLUMNS."""
    return [
        (
            station_id,
            transaction_pk,
            connector_id,
            evse_id,
            sample.timestamp,
            clip(MeterValue, "measurand", sample.measurand) or ENERGY_REGISTER,
            clip(MeterValue, "phase", sample.phase),
            clip(MeterValue, "unit", sample.unit),
            clip(MeterValue, "context", sample.context),
            clip(MeterValue, "location", sample.location),
            clip(MeterValue, "value", sample.value),
            _number(sample.value),
        )
        for sample in samples
    ]


def charging_data_store(items: Sequence[StatusReport | MeterReading]) -> list[int | None]:
    """StatusNotifications and MeterValues of many chargers together, in the caller's
    transaction: one result per item, in order."""
    statuses = [item for item in items if isinstance(item, StatusReport)]
    readings = [item for item in items if isinstance(item, MeterReading)]
    if len(statuses) + len(readings) != len(items):
        raise TypeError("Expected StatusReport and MeterReading items only")
    if statuses:
        connector_statuses_set(statuses)
    counts = iter(meter_readings_store(readings) if readings else [])
    return [None if isinstance(item, StatusReport) else next(counts) for item in items]


def charging_data_write(
    items: Sequence[StatusReport | MeterReading],
) -> list[int | None | Exception]:
    """`charging_data_store` in one transaction (the gateway's group commit: many
    chargers' frames); when the database refuses the batch, item by item, so a bad
    frame fails alone (its exception is its result)."""
    return write_batch(charging_data_store, items, name="charging data")


def _number(value: str) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
