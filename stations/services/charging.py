"""Charging: id tags, connector status, transactions and meter values.

Version-neutral: the OCPP 1.6 and 2.x handlers both call these. Every service commits
before it returns, so a charger is only answered once its data is safe. Strings that come
from a charger are cut to the model's field lengths rather than refused.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, models
from django.db.models import Q
from django.db.transaction import atomic
from django.utils import timezone

from stations.bulk import bulk_insert, bulk_update, write_batch
from stations.models import Connector, IdTag, MeterValue, Station, Transaction

logger = logging.getLogger(__name__)

# Largest value a BigIntegerField / BigAutoField holds.
BIGINT_MAX = 2**63 - 1


@dataclass
class IdTagInfo:
    """The backend's verdict on an id tag (1.6 idTagInfo, 2.x idTokenInfo)."""

    status: str
    expiry_date: datetime | None = None
    parent_id_tag: str = ""


@dataclass
class MeterSample:
    """One sampled value, whatever message carried it."""

    timestamp: datetime
    value: str
    measurand: str = "Energy.Active.Import.Register"
    phase: str = ""
    unit: str = ""
    context: str = ""
    location: str = ""


def clip(model: type[models.Model], field: str, value: str | None) -> str:
    """`value` cut to the length of `model.field` (charger strings are never refused here)."""
    max_length = model._meta.get_field(field).max_length
    return (value or "")[:max_length]


# ---- id tags -------------------------------------------------------------------------


def id_tag_authorize(*, station_id: int, id_tag: str) -> IdTagInfo:
    """Decide whether `id_tag` may charge at the station.

    Accepted when the station's CPO holds the tag as Accepted and unexpired, or when the
    station has free usage. Otherwise the tag's own status (Blocked, Expired, Invalid);
    an unknown tag, or any tag at a station in the pool, is Invalid.
    """
    station = Station.objects.only("cpo_id", "free_usage").get(pk=station_id)
    tag = _id_tag_find(cpo_id=station.cpo_id, id_tag=id_tag)
    verdict = _id_tag_verdict(tag)
    if verdict.status != IdTag.Status.ACCEPTED and station.free_usage:
        # Free usage lets anyone charge: the tag's own record does not matter.
        return IdTagInfo(status=IdTag.Status.ACCEPTED, parent_id_tag=verdict.parent_id_tag)
    return verdict


def _id_tag_find(*, cpo_id: int | None, id_tag: str) -> IdTag | None:
    if cpo_id is None or not id_tag:
        return None
    # OCPP id tags are case-insensitive (CiString); prefer the exact spelling if both exist.
    candidates = list(IdTag.objects.filter(cpo_id=cpo_id, tag__iexact=id_tag).order_by("pk")[:10])
    for candidate in candidates:
        if candidate.tag == id_tag:
            return candidate
    return candidates[0] if candidates else None


def _id_tag_verdict(tag: IdTag | None) -> IdTagInfo:
    if tag is None:
        return IdTagInfo(status=IdTag.Status.INVALID)
    parent = tag.parent_id_tag
    if tag.status == IdTag.Status.ACCEPTED:
        if tag.expiry_date is not None and tag.expiry_date <= timezone.now():
            return IdTagInfo(
                status=IdTag.Status.EXPIRED, expiry_date=tag.expiry_date, parent_id_tag=parent
            )
        return IdTagInfo(
            status=IdTag.Status.ACCEPTED, expiry_date=tag.expiry_date, parent_id_tag=parent
        )
    return IdTagInfo(status=tag.status, expiry_date=tag.expiry_date, parent_id_tag=parent)


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


# ---- transactions --------------------------------------------------------------------


def transaction_start(
    *,
    station_id: int,
    connector_id: int,
    id_tag: str,
    meter_start: int,
    timestamp: datetime,
    reservation_id: int | None = None,
) -> tuple[Transaction, IdTagInfo]:
    """Open a charging session (OCPP 1.6 StartTransaction) and authorize its id tag.

    The row is created even for a refused tag: the charger has started and will stop
    it itself. Idempotent: a charger that resends the same start (same connector, id tag,
    meter and time) after a reconnect gets the same row back, never a second one.
    """
    id_tag = clip(Transaction, "id_tag", id_tag)
    with atomic():
        # Locking the station serialises concurrent starts of the same station, so two
        # copies of one start cannot both miss each other and insert twice.
        Station.objects.select_for_update().only("pk").get(pk=station_id)
        info = id_tag_authorize(station_id=station_id, id_tag=id_tag)
        existing = (
            Transaction.objects.filter(
                station_id=station_id,
                charger_transaction_id="",
                id_tag=id_tag,
                meter_start=meter_start,
                start_time=timestamp,
            )
            .filter(
                Q(connector__connector_id=connector_id, connector__evse_id__isnull=True)
                if connector_id > 0
                else Q(connector__isnull=True)
            )
            .order_by("pk")
            .first()
        )
        if existing is not None:
            logger.info("Station %s resent the start of transaction %s", station_id, existing.pk)
            return existing, info
        connector = (
            connector_get_or_create(station_id=station_id, connector_id=connector_id)
            if connector_id > 0
            else None
        )
        tx = Transaction.objects.create(
            station_id=station_id,
            connector=connector,
            id_tag=id_tag,
            id_tag_status=info.status,
            reservation_id=reservation_id,
            start_time=timestamp,
            meter_start=meter_start,
        )
    return tx, info


def transaction_stop(
    *,
    station_id: int,
    transaction_id: int,
    meter_stop: int,
    timestamp: datetime,
    reason: str = "",
    id_tag: str = "",
    samples: Iterable[MeterSample] = (),
) -> IdTagInfo | None:
    """Close a charging session (OCPP 1.6 StopTransaction) and keep its meter samples.

    A stop for a transaction id the station never started (lost start, database restored)
    is recorded as a Transaction with `orphan_stop=True` carrying the charger's id, and
    answered like any other. A repeated stop changes nothing. Returns the verdict on the
    stop's id tag, or None when the charger sent none.
    """
    id_tag = clip(Transaction, "stop_id_tag", id_tag)
    samples = list(samples)
    with atomic():
        tx = None
        if 0 < transaction_id <= BIGINT_MAX:
            tx = (
                Transaction.objects.select_for_update()
                .filter(pk=transaction_id, station_id=station_id, charger_transaction_id="")
                .first()
            )
        if tx is None:
            _transaction_record_orphan_stop(
                station_id=station_id,
                transaction_id=transaction_id,
                meter_stop=meter_stop,
                timestamp=timestamp,
                reason=reason,
                id_tag=id_tag,
                samples=samples,
            )
        elif tx.stop_time is None:
            tx.stop_time = timestamp
            tx.meter_stop = meter_stop
            tx.energy_wh = _energy(tx.meter_start, meter_stop)
            tx.stop_reason = clip(Transaction, "stop_reason", reason)
            tx.stop_id_tag = id_tag
            tx.state = Transaction.State.ENDED
            tx.save()
            meter_values_store(station_id=station_id, samples=samples, transaction=tx)
        else:
            logger.info("Station %s repeated the stop of transaction %s", station_id, tx.pk)
        info = id_tag_authorize(station_id=station_id, id_tag=id_tag) if id_tag else None
    return info


def _energy(meter_start: int | None, meter_stop: int) -> int | None:
    if meter_start is None:
        return None
    if meter_stop < meter_start:
        # A meter that went backwards (replaced, reset) says nothing about the energy.
        return None
    return meter_stop - meter_start


def _transaction_record_orphan_stop(
    *,
    station_id: int,
    transaction_id: int,
    meter_stop: int,
    timestamp: datetime,
    reason: str,
    id_tag: str,
    samples: list[MeterSample],
) -> None:
    # The charger's id goes in charger_transaction_id: its unique constraint makes a
    # repeated orphan stop find the first record instead of adding another.
    charger_id = clip(Transaction, "charger_transaction_id", str(transaction_id))
    lookup = {"station_id": station_id, "charger_transaction_id": charger_id}
    if Transaction.objects.filter(**lookup).exists():
        return
    logger.warning("Station %s stopped unknown transaction %s", station_id, transaction_id)
    try:
        with atomic():
            tx = Transaction.objects.create(
                **lookup,
                orphan_stop=True,
                state=Transaction.State.ENDED,
                stop_time=timestamp,
                meter_stop=meter_stop,
                stop_reason=clip(Transaction, "stop_reason", reason),
                stop_id_tag=id_tag,
            )
    except IntegrityError:
        return  # The same stop, recorded a moment ago by another connection.
    meter_values_store(station_id=station_id, samples=samples, transaction=tx)


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
            clip(MeterValue, "measurand", sample.measurand) or "Energy.Active.Import.Register",
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
