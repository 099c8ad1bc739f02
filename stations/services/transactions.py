"""OCPP 1.6 transactions: StartTransaction and StopTransaction.

The backend numbers 1.6 transactions (the row's pk is the transactionId). Every stop is
kept, a stop of a transaction never seen started too (`orphan_stop`). OCPP 2.x sessions
are `transaction_events`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

from django.db import IntegrityError
from django.db.models import Q
from django.db.transaction import atomic

from stations.models import Station, Transaction
from stations.services.charging import (
    BIGINT_MAX,
    MeterSample,
    clip,
    connector_get_or_create,
    meter_values_store,
)
from stations.services.id_tags import IdTagInfo, id_tag_authorize

logger = logging.getLogger(__name__)


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
