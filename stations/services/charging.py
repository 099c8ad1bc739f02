"""Charging data: connector status (and the 1.6 status history) and meter values, in batches.

Version-neutral: the OCPP 1.6 and 2.x handlers send StatusNotification and MeterValues
through the gateway's group commit (`charging_data_write`: many chargers' frames in one
transaction, each answered once it is committed). Strings that come from a charger are
cut to the model's field lengths rather than refused. What a sample means is the rule of
`meter_values.py`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, connections, models
from django.db.transaction import atomic
from django.utils import timezone

from stations.bulk import bulk_update, write_batch
from stations.models import Connector, Station, Transaction, TransactionEvent
from stations.services.charging_sessions import (
    CLOSED_ON_AVAILABLE,
    charging_state_of_status,
    session_close_never_stopped,
)
from stations.services.meter_values import MeterReading, meter_readings_store

logger = logging.getLogger(__name__)


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
    received_at: datetime | None = None

    @property
    def is_station(self) -> bool:
        return self.connector_id == 0 and self.evse_id is None


def connector_statuses_set(reports: Sequence[StatusReport]) -> list[None]:
    """Record StatusNotifications of any number of stations, in a few statements.

    Any connector but the station itself gets a Connector row, created on first report.
    A report older than the stored one (chargers replay queued notifications after being
    offline) is ignored, and of several reports for one connector the newest wins, as if
    they had been written one by one. Every report of a 1.6 connector that falls within
    one of its sessions joins that session's history (in the same statement on
    PostgreSQL). The caller owns the transaction (the gateway's group commit writes many
    chargers' reports in one). Returns one None per report.
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
        _connectors_status_update(connectors, now, _status_history(reports, now))
        _sessions_close_on_available(connectors, now)
    return [None] * len(reports)


def _sessions_close_on_available(
    reports: list[tuple[StatusReport, datetime]], now: datetime
) -> None:
    """A connector (1.6) or EVSE connector (2.x) reported Available after a session there
    began: that session's stop never arrived; close it (`session_close_never_stopped`).
    One indexed read when any report says Available, nothing otherwise."""
    available = {
        (r.station_id, r.evse_id, r.connector_id): when
        for r, when in reports
        if r.status == "Available"
    }
    if not available:
        return
    running = Transaction.objects.filter(
        station_id__in={key[0] for key in available},
        state=Transaction.State.ACTIVE,
        connector__isnull=False,
    ).select_related("connector")
    for tx in running:
        key = (tx.station_id, tx.connector.evse_id, tx.connector.connector_id)
        when = available.get(key)
        if when is None or tx.start_time is None or when <= tx.start_time:
            continue
        session_close_never_stopped(tx, at=when, received_at=now, why=CLOSED_ON_AVAILABLE)


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


def _connectors_status_update(
    reports: list[tuple[StatusReport, datetime]], now: datetime, history: list[tuple]
) -> None:
    # One UPDATE joined on the connectors' natural key, which also records the 1.6 status
    # history. Reports it did not apply are for connectors not created yet (created, then
    # applied), or older than the stored status.
    missed = _connectors_status_apply(reports, now, history)
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
    reports: list[tuple[StatusReport, datetime]],
    now: datetime,
    history: Sequence[tuple] = (),
) -> set[tuple[int, int | None, int]]:
    """The conditional UPDATE; returns the (station, evse, connector) keys it left alone.

    `history` (rows of `_status_history`) is inserted by the same statement on
    PostgreSQL (no round trip of its own on the group commit's path), with the ORM
    elsewhere.
    """
    if not reports:
        return set()
    postgresql = connections[Connector.objects.db].vendor == "postgresql"
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
        with_clause=_status_history_sql(history) if postgresql and history else ("", ()),
    )
    if history and not postgresql:
        _status_history_store(history)
    return {row[:3] for row in rows} - applied


def _status_history(reports: Sequence[StatusReport], now: datetime) -> list[tuple]:
    """(station, connector, status, charging state, time, received) of every 1.6 connector
    report, for the history of the session it falls in."""
    return [
        (
            r.station_id,
            r.connector_id,
            clip(TransactionEvent, "connector_status", r.status),
            charging_state_of_status(r.status),
            r.timestamp or r.received_at or now,
            r.received_at or now,
        )
        for r in reports
        if r.evse_id is None and r.connector_id > 0
    ]


# A status belongs to the 1.6 session of its connector whose time span holds it: the last
# one started at or before it, if that one has not stopped before it. (LATERAL … LIMIT 1
# makes that one probe of the (connector, start_time) index per status.)
_STATUS_SESSION_JOIN = (
    " JOIN {connector} hc ON hc.station_id = h.station_id AND hc.connector_id = h.connector_id"
    " AND hc.evse_id IS NULL"
    " JOIN LATERAL (SELECT s.id, s.stop_time FROM {transaction} s"
    " WHERE s.connector_id = hc.id AND s.charger_transaction_id = '' AND s.start_time <= h.at"
    " ORDER BY s.start_time DESC LIMIT 1) t ON t.stop_time IS NULL OR h.at <= t.stop_time"
)


def _status_history_sql(history: Sequence[tuple]) -> tuple[str, list]:
    """A WITH clause inserting the history rows (PostgreSQL), and its parameters."""
    quote = connections[TransactionEvent.objects.db].ops.quote_name
    join = _STATUS_SESSION_JOIN.format(
        connector=quote(Connector._meta.db_table), transaction=quote(Transaction._meta.db_table)
    )
    sql = (
        f"WITH history AS (INSERT INTO {quote(TransactionEvent._meta.db_table)}"
        " (transaction_id, kind, timestamp, received_at, connector_status, charging_state,"
        " trigger_reason, stopped_reason, id_token, id_token_type, offline, tariff_id)"
        " SELECT t.id, %s, h.at, h.received, h.status, h.state, '', '', '', '', false, ''"
        " FROM unnest(%s::bigint[], %s::bigint[], %s::text[], %s::text[], %s::timestamptz[],"
        " %s::timestamptz[]) AS h(station_id, connector_id, status, state, at, received)"
        f"{join})"
    )
    return sql, [TransactionEvent.Kind.STATUS, *map(list, zip(*history, strict=True))]


def _status_history_store(history: Sequence[tuple]) -> None:
    """`_status_history_sql` for other databases (development), with the ORM."""
    events = []
    for station_id, connector_id, status, state, at, received in history:
        session = (
            Transaction.objects.filter(
                connector__station_id=station_id,
                connector__connector_id=connector_id,
                connector__evse_id__isnull=True,
                charger_transaction_id="",
                start_time__lte=at,
            )
            .order_by("-start_time")
            .values_list("pk", "stop_time")
            .first()
        )
        if session is None or (session[1] is not None and session[1] < at):
            continue
        events.append(
            TransactionEvent(
                transaction_id=session[0],
                kind=TransactionEvent.Kind.STATUS,
                timestamp=at,
                received_at=received,
                connector_status=status,
                charging_state=state,
            )
        )
    TransactionEvent.objects.bulk_create(events)


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


# ---- the gateway's batches ----------------------------------------------------------


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
