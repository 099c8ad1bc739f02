"""What every session goes through, whatever OCPP version reports it.

- Settling: when a session ends, its meter start, meter stop and energy come from the
  register readings stored with it (`register_summary`), together with 1.6's meterStart
  and meterStop; a register that went backwards flags `meter_reset`.
- Superseding: a session still active on a connector (1.6) or EVSE (2.x) when a newer
  one starts there is closed, stop time = the newer one's start, and marked.
- Flags: `incomplete`, `orphan_stop` and `suspicious_timestamp` follow from what has
  arrived; they are recomputed whenever a message of the session is applied.
- History: each start, stop, 2.x event and 1.6 status change is a TransactionEvent.

The callers (`charging.py` for 1.6, `transaction_events.py` for 2.x) hold the session's
row lock; these helpers never commit.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import connections
from django.db.models import Q

from ocpp_spec.meter import BEGIN_CONTEXT, END_CONTEXT
from stations.models import Transaction, TransactionEvent
from stations.services.meter_values import (
    RegisterReading,
    register_summary,
    time_is_suspicious,
    transaction_register_readings,
)

logger = logging.getLogger(__name__)

# OCPP 1.6 connector statuses in the 2.x charging-state vocabulary.
CHARGING_STATE_OF_STATUS = {
    "Charging": TransactionEvent.ChargingState.CHARGING,
    "SuspendedEV": TransactionEvent.ChargingState.SUSPENDED_EV,
    "SuspendedEVSE": TransactionEvent.ChargingState.SUSPENDED_EVSE,
    "Preparing": TransactionEvent.ChargingState.EV_CONNECTED,
    "Finishing": TransactionEvent.ChargingState.EV_CONNECTED,
    # The connector cannot deliver: as far as the EV is concerned, the EVSE suspended it.
    "Faulted": TransactionEvent.ChargingState.SUSPENDED_EVSE,
    "Unavailable": TransactionEvent.ChargingState.SUSPENDED_EVSE,
    "Available": TransactionEvent.ChargingState.IDLE,
    "Reserved": TransactionEvent.ChargingState.IDLE,
}
# Both versions: a stop reason "MAY only be omitted when the Reason is Local".
DEFAULT_STOP_REASON = "Local"


def charging_state_of_status(status: str) -> str:
    return CHARGING_STATE_OF_STATUS.get(status, "")


def is_v16(tx: Transaction) -> bool:
    """1.6 sessions have a backend-assigned id; 2.x ones the charger's string id."""
    return not tx.charger_transaction_id


def session_settle(tx: Transaction) -> None:
    """Set meter start/stop, energy and `meter_reset` from the session's stored readings.

    1.6's meterStart and meterStop are the register at start and stop time and win over
    samples; a 2.x session takes its Transaction.Begin/End readings, else the first and
    last. One query. The caller saves.
    """
    readings = transaction_register_readings(tx.pk)
    if is_v16(tx):
        if tx.meter_start is not None and tx.start_time is not None:
            readings.append(RegisterReading(tx.start_time, tx.meter_start, BEGIN_CONTEXT))
        if tx.meter_stop is not None and tx.stop_time is not None and not tx.superseded:
            readings.append(RegisterReading(tx.stop_time, tx.meter_stop, END_CONTEXT))
    summary = register_summary(readings)
    if not is_v16(tx) or tx.meter_start is None:
        tx.meter_start = summary.start_wh
    if not is_v16(tx) or tx.meter_stop is None or tx.superseded:
        tx.meter_stop = summary.stop_wh
    tx.energy_wh = summary.energy_wh
    tx.meter_reset = summary.reset


def session_flags_update(tx: Transaction) -> None:
    """Recompute `orphan_stop` and `incomplete` from what has arrived."""
    if not is_v16(tx):
        tx.orphan_stop = tx.start_received_at is None and tx.stop_received_at is not None
    gap = (
        tx.first_seq_no is not None
        and tx.last_seq_no is not None
        and tx.seq_no_count < tx.last_seq_no - tx.first_seq_no + 1
    )
    missing_stop = tx.state == Transaction.State.ENDED and tx.stop_received_at is None
    tx.incomplete = tx.start_received_at is None or missing_stop or gap


def session_times_check(
    tx: Transaction,
    moments: list[datetime],
    *,
    received_at: datetime,
    first_connected_at: datetime | None,
) -> None:
    """Flag the session when one of `moments` (the charger's times) is implausible."""
    if tx.suspicious_timestamp:
        return
    if any(
        time_is_suspicious(m, received_at=received_at, first_connected_at=first_connected_at)
        for m in moments
    ):
        logger.warning("Station %s sent an implausible time for session %s", tx.station_id, tx)
        tx.suspicious_timestamp = True


def sessions_supersede(
    tx: Transaction,
    *,
    place: Q | None = None,
    others: list[Transaction] | None = None,
    received_at: datetime,
) -> None:
    """Close the sessions still active at `place` (a filter on Transaction) that started
    before `tx`; or close `tx` itself when a newer session is active there already (its
    start arrived late). `others`: those sessions, read and locked by the caller. The
    caller holds the lock that serialises starts at `place`."""
    if tx.start_time is None:
        return
    if others is None:
        others = list(
            Transaction.objects.select_for_update(no_key=True, of=("self",))
            .filter(place, station_id=tx.station_id, state=Transaction.State.ACTIVE)
            .exclude(pk=tx.pk)
        )
    others = sorted(
        (o for o in others if o.pk != tx.pk and o.state == Transaction.State.ACTIVE),
        key=lambda o: (o.start_time is not None, o.start_time or tx.start_time, o.pk),
    )
    for other in others:
        if other.start_time is None or other.start_time <= tx.start_time:
            session_close_superseded(other, by=tx, received_at=received_at)
            other.save()
        elif tx.state == Transaction.State.ACTIVE:
            session_close_superseded(tx, by=other, received_at=received_at)


def session_close_superseded(tx: Transaction, *, by: Transaction, received_at: datetime) -> None:
    """End `tx` at `by`'s start, its energy from its last reading. The caller saves."""
    logger.warning(
        "Station %s: session %s still active when %s started: closed as superseded",
        tx.station_id,
        tx,
        by,
    )
    tx.state = Transaction.State.ENDED
    tx.stop_time = by.start_time
    tx.superseded = True
    tx.superseded_by = by
    session_settle(tx)
    session_flags_update(tx)
    event_add(tx, kind=TransactionEvent.Kind.SUPERSEDED, timestamp=by.start_time, at=received_at)


# What made the backend close a session whose stop never came (the event's trigger).
CLOSED_ON_AVAILABLE = "ConnectorAvailable"
CLOSED_ON_BOOT = "StationBooted"


def session_close_never_stopped(
    tx: Transaction, *, at: datetime, received_at: datetime, why: str
) -> bool:
    """End `tx`, still active although its connector is free again or its station
    rebooted: stop time `at` (never before its start), energy from its last reading,
    flagged `never_stopped` (and `incomplete`). A stop arriving later replaces all that.

    Saves with a conditional UPDATE (only while the row is still active), so a stop that
    commits meanwhile wins without a lock taken here; returns whether it closed it.
    """
    if tx.start_time is not None and at < tx.start_time:
        at = tx.start_time
    tx.state = Transaction.State.ENDED
    tx.stop_time = at
    tx.never_stopped = True
    session_settle(tx)
    session_flags_update(tx)
    fields = (
        "state",
        "stop_time",
        "never_stopped",
        "meter_start",
        "meter_stop",
        "energy_wh",
        "meter_reset",
        "orphan_stop",
        "incomplete",
    )
    closed = Transaction.objects.filter(pk=tx.pk, state=Transaction.State.ACTIVE).update(
        **{f: getattr(tx, f) for f in fields}, updated_at=received_at
    )
    if closed:
        logger.warning("Station %s: session %s never stopped; closed (%s)", tx.station_id, tx, why)
        event_add(
            tx,
            kind=TransactionEvent.Kind.NEVER_STOPPED,
            timestamp=at,
            at=received_at,
            trigger_reason=why,
        )
    return bool(closed)


def sessions_close_on_boot(*, station_id: int, at: datetime) -> int:
    """The station booted again at `at`: its sessions still active from before never got
    their stop. Returns how many were closed."""
    closed = 0
    running = Transaction.objects.filter(
        station_id=station_id, state=Transaction.State.ACTIVE, created_at__lt=at
    )
    for tx in running:
        closed += session_close_never_stopped(tx, at=at, received_at=at, why=CLOSED_ON_BOOT)
    return closed


def event_add(tx: Transaction, *, kind: str, timestamp: datetime, at: datetime, **fields) -> None:
    """Record one event of the session that has no seqNo (1.6, the backend's own)."""
    TransactionEvent.objects.create(
        transaction=tx, kind=kind, timestamp=timestamp, received_at=at, **fields
    )


EVENT_COLUMNS = (
    "transaction_id",
    "kind",
    "seq_no",
    "timestamp",
    "received_at",
    "trigger_reason",
    "charging_state",
    "connector_status",
    "time_spent_charging",
    "remote_start_id",
    "stopped_reason",
    "id_token",
    "id_token_type",
    "offline",
    "tariff_id",
    "cost_details",
)


def event_add_once(tx: Transaction, **fields) -> bool:
    """Record a 2.x event unless its (transaction, seqNo) is recorded already.

    One statement (INSERT … ON CONFLICT DO NOTHING): the unique constraint, not a read
    before the write, decides what a duplicate is. Returns whether it was new.
    """
    values = {column: _event_default(column) for column in EVENT_COLUMNS}
    values.update(fields, transaction_id=tx.pk)
    connection = connections[TransactionEvent.objects.db]
    values["cost_details"] = TransactionEvent._meta.get_field("cost_details").get_db_prep_value(
        values["cost_details"], connection
    )
    quote = connection.ops.quote_name
    table = quote(TransactionEvent._meta.db_table)
    columns = ", ".join(quote(TransactionEvent._meta.get_field(c).column) for c in EVENT_COLUMNS)
    placeholders = ", ".join(["%s"] * len(EVENT_COLUMNS))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({columns}) VALUES ({placeholders})"
            " ON CONFLICT (transaction_id, seq_no) WHERE seq_no IS NOT NULL DO NOTHING"
            " RETURNING id",
            [values[c] for c in EVENT_COLUMNS],
        )
        return cursor.fetchone() is not None


def _event_default(column: str):
    field = TransactionEvent._meta.get_field(column)
    if field.null:
        return None
    return field.get_default()
