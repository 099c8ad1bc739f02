"""OCPP 1.6 sessions: StartTransaction and StopTransaction.

The backend names a 1.6 transaction (its transactionId is the row's pk). A resent start
gets the same row; every stop is kept: a stop for a transaction the backend never
started (the 1.6 errata's transactionId -1, or an id from before a restore) becomes a
session of its own, flagged `orphan_stop`, unless it repeats one already recorded.
What both versions share (energy, superseding, flags, history) is in `charging_sessions.py`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

from django.db.models import F, Q
from django.db.transaction import atomic
from django.utils import timezone

from stations.bulk import bulk_insert
from stations.models import MeterValue, Station, Transaction, TransactionEvent
from stations.services.charging import clip, connector_get_or_create
from stations.services.charging_sessions import (
    DEFAULT_STOP_REASON,
    charging_state_of_status,
    event_add,
    session_flags_update,
    session_settle,
    session_times_check,
    sessions_supersede,
)
from stations.services.id_tags import IdTagInfo, SessionExclusion, id_tag_authorize
from stations.services.meter_values import BIGINT_MAX, METER_VALUE_COLUMNS, MeterSample, meter_rows

logger = logging.getLogger(__name__)


def transaction_start(
    *,
    station_id: int,
    connector_id: int,
    id_tag: str,
    meter_start: int,
    timestamp: datetime,
    reservation_id: int | None = None,
    received_at: datetime | None = None,
) -> tuple[Transaction, IdTagInfo]:
    """Open a charging session (OCPP 1.6 StartTransaction) and authorize its id tag.

    The row is created even for a refused tag: the charger has started and will stop
    it itself. Idempotent: a charger that resends the same start (same connector, id tag,
    meter and time) after a reconnect gets the same row back, never a second one. A
    session still active on the connector is closed as superseded by this one.
    """
    received_at = received_at or timezone.now()
    id_tag = clip(Transaction, "id_tag", id_tag)
    with atomic():
        # Locking the station serialises concurrent starts of the same station, so two
        # copies of one start cannot both miss each other and insert twice, and two
        # sessions of one connector cannot both stay active.
        station = (
            Station.objects.select_for_update(no_key=True)
            .only("pk", "first_connected_at")
            .get(pk=station_id)
        )
        info = id_tag_authorize(
            station_id=station_id,
            id_tag=id_tag,
            session=SessionExclusion(connector_id=connector_id),
        )
        place = (
            Q(connector__connector_id=connector_id, connector__evse_id__isnull=True)
            if connector_id > 0
            else Q(connector__isnull=True)
        )
        # One read for both: a copy of this start, and the sessions it may supersede.
        same_place = list(
            Transaction.objects.select_for_update(no_key=True, of=("self",))
            .filter(place, station_id=station_id, charger_transaction_id="", orphan_stop=False)
            .filter(
                Q(id_tag=id_tag, meter_start=meter_start, start_time=timestamp)
                | Q(state=Transaction.State.ACTIVE)
            )
            .order_by("pk")
        )
        for existing in same_place:
            if (existing.id_tag, existing.meter_start, existing.start_time) == (
                id_tag,
                meter_start,
                timestamp,
            ):
                logger.info(
                    "Station %s resent the start of transaction %s", station_id, existing.pk
                )
                return existing, info
        connector = (
            connector_get_or_create(station_id=station_id, connector_id=connector_id)
            if connector_id > 0
            else None
        )
        tx = Transaction(
            station_id=station_id,
            connector=connector,
            id_tag=id_tag,
            id_tag_status=info.status,
            reservation_id=reservation_id,
            start_time=timestamp,
            start_received_at=received_at,
            meter_start=meter_start,
        )
        session_times_check(
            tx,
            [timestamp],
            received_at=received_at,
            first_connected_at=station.first_connected_at,
        )
        tx.save()
        event_add(
            tx,
            kind=TransactionEvent.Kind.STARTED,
            timestamp=timestamp,
            at=received_at,
            id_token=id_tag,
            # The connector's state as the session begins (Preparing, or Charging already).
            charging_state=charging_state_of_status(connector.status) if connector else "",
            connector_status=connector.status if connector else "",
        )
        if connector is not None:
            sessions_supersede(tx, others=same_place, received_at=received_at)
            if tx.superseded:
                tx.save()
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
    received_at: datetime | None = None,
) -> IdTagInfo | None:
    """Close a charging session (OCPP 1.6 StopTransaction) and keep its meter samples.

    A stop for a transaction id the station never started is recorded as a session of
    its own (see `orphan_stop`), and so is a second, different stop of a session already
    stopped (an id given out twice, after a database restore). The same stop repeated
    (same time and meter) changes nothing; the stop of a session closed as superseded
    replaces what the backend had to assume. Returns the verdict on the stop's id tag,
    or None when the charger sent none.
    """
    received_at = received_at or timezone.now()
    id_tag = clip(Transaction, "stop_id_tag", id_tag)
    samples = list(samples)
    with atomic():
        tx = None
        if 0 < transaction_id <= BIGINT_MAX:
            tx = (
                Transaction.objects.select_for_update(no_key=True, of=("self",))
                .select_related("connector")
                .annotate(first_connected_at=F("station__first_connected_at"))
                .filter(
                    pk=transaction_id,
                    station_id=station_id,
                    charger_transaction_id="",
                    orphan_stop=False,
                )
                .first()
            )
        if tx is not None and tx.stop_received_at is not None:
            if (tx.stop_time, tx.meter_stop) == (timestamp, meter_stop):
                logger.info("Station %s repeated the stop of transaction %s", station_id, tx.pk)
                info = _stop_tag_verdict(station_id, id_tag)
                return info
            # Not this session's stop repeated: an id that clashes (a restored database
            # gave it out again). Kept as a session of its own rather than lost.
            logger.warning(
                "Station %s stopped transaction %s again, differently: recorded apart",
                station_id,
                tx.pk,
            )
            tx = None
        if tx is None:
            _transaction_record_orphan_stop(
                station_id=station_id,
                transaction_id=transaction_id,
                meter_stop=meter_stop,
                timestamp=timestamp,
                reason=reason,
                id_tag=id_tag,
                samples=samples,
                received_at=received_at,
            )
        else:
            tx.state = Transaction.State.ENDED
            tx.stop_time = timestamp
            tx.stop_received_at = received_at
            tx.meter_stop = meter_stop
            tx.stop_reason = clip(Transaction, "stop_reason", reason or DEFAULT_STOP_REASON)
            tx.stop_id_tag = id_tag
            # The charger's own stop replaces what the backend assumed when superseding.
            tx.superseded, tx.superseded_by = False, None
            tx.never_stopped = False
            _session_stop_apply(
                tx,
                samples,
                id_tag=id_tag,
                received_at=received_at,
                first_connected_at=tx.first_connected_at,
            )
        info = _stop_tag_verdict(station_id, id_tag)
    return info


def _stop_tag_verdict(station_id: int, id_tag: str) -> IdTagInfo | None:
    """The verdict on a stop's id tag: the session it ends is no concurrent one."""
    if not id_tag:
        return None
    return id_tag_authorize(station_id=station_id, id_tag=id_tag, concurrency=False)


def _session_stop_apply(
    tx: Transaction,
    samples: list[MeterSample],
    *,
    id_tag: str,
    received_at: datetime,
    first_connected_at: datetime | None,
) -> None:
    """Store the stop's samples, settle the energy, flag and record the stop; saves."""
    _samples_store(tx, samples, received_at=received_at)
    session_settle(tx)
    session_times_check(
        tx,
        [tx.stop_time, *(s.timestamp for s in samples)],
        received_at=received_at,
        first_connected_at=first_connected_at,
    )
    session_flags_update(tx)
    tx.save()
    event_add(
        tx,
        kind=TransactionEvent.Kind.ENDED,
        timestamp=tx.stop_time,
        at=received_at,
        stopped_reason=tx.stop_reason,
        id_token=id_tag,
    )


def _samples_store(tx: Transaction, samples: list[MeterSample], *, received_at: datetime) -> None:
    if not samples:
        return
    connector_id = tx.connector.connector_id if tx.connector_id else None
    bulk_insert(
        MeterValue,
        METER_VALUE_COLUMNS,
        meter_rows(
            tx.station_id,
            samples,
            transaction_pk=tx.pk,
            connector_id=connector_id,
            evse_id=None,
            received_at=received_at,
        ),
    )


def _transaction_record_orphan_stop(
    *,
    station_id: int,
    transaction_id: int,
    meter_stop: int,
    timestamp: datetime,
    reason: str,
    id_tag: str,
    samples: list[MeterSample],
    received_at: datetime,
) -> None:
    """A stop of a transaction the backend never started: a session of its own.

    The same stop resent (same id, time and meter, as a charger does after losing the
    answer) is merged into the first record; any other stop, even with the same id
    (-1 is every such stop's id), is a session.
    """
    # Serialises orphan stops of the station, so two copies cannot both insert.
    station = (
        Station.objects.select_for_update(no_key=True)
        .only("pk", "first_connected_at")
        .get(pk=station_id)
    )
    orphan_id = transaction_id if -BIGINT_MAX <= transaction_id <= BIGINT_MAX else None
    same = Transaction.objects.filter(
        station_id=station_id,
        orphan_stop=True,
        charger_transaction_id="",
        orphan_transaction_id=orphan_id,
        stop_time=timestamp,
        meter_stop=meter_stop,
    ).first()
    if same is not None:
        logger.info("Station %s repeated the stop of unknown transaction %s", station_id, same)
        return
    logger.warning("Station %s stopped unknown transaction %s", station_id, transaction_id)
    tx = Transaction(
        station_id=station_id,
        orphan_transaction_id=orphan_id,
        orphan_stop=True,
        state=Transaction.State.ENDED,
        stop_time=timestamp,
        stop_received_at=received_at,
        meter_stop=meter_stop,
        stop_reason=clip(Transaction, "stop_reason", reason or DEFAULT_STOP_REASON),
        stop_id_tag=id_tag,
    )
    tx.save()
    _session_stop_apply(
        tx,
        samples,
        id_tag=id_tag,
        received_at=received_at,
        first_connected_at=station.first_connected_at,
    )
