"""OCPP 2.x TransactionEvent: one message type for a session's start, updates and end.

The charger names the transaction (a string id, `Transaction.charger_transaction_id`) and
numbers its events (`seqNo`, rising within a transaction). Chargers resend an event whose
answer they did not get, and replay queued events after being offline (`offline` true), in
order: so an event whose seqNo is not above the last one recorded is a copy and changes
nothing. Sessions of both OCPP versions land in the one Transaction model.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, DecimalException, InvalidOperation

from django.db import IntegrityError, transaction

from ocpp_spec.meter import ENERGY_REGISTER
from ocpp_spec.times import parse_ocpp_time
from stations.models import Connector, IdTag, Station, Transaction
from stations.services.charging import (
    BIGINT_MAX,
    MeterSample,
    clip,
    connector_get_or_create,
    meter_values_store,
)
from stations.services.id_tags import IdTagInfo, id_tag_authorize

logger = logging.getLogger(__name__)

STARTED, UPDATED, ENDED = "Started", "Updated", "Ended"
# 2.0.1 idToken is at most 36 characters; 2.1 allows 255, which no IdTag can hold.
ID_TOKEN_MAX = 36
NO_AUTHORIZATION = "NoAuthorization"
CENTRAL = "Central"
# unitOfMeasure.multiplier is a power of ten (in practice -3..3); a wild one is not applied,
# so a broken charger cannot make us write a million-digit number.
MAX_MULTIPLIER = 24
# 2.0.1 stoppedReason "MAY only be omitted when Reason is Local".
DEFAULT_STOPPED_REASON = "Local"


@dataclass
class TransactionEventData:
    """The parts of a TransactionEventRequest the backend keeps."""

    event_type: str
    timestamp: datetime
    seq_no: int
    transaction_id: str
    trigger_reason: str = ""
    charging_state: str = ""
    stopped_reason: str = ""
    remote_start_id: int | None = None
    offline: bool = False
    evse_id: int | None = None
    connector_id: int | None = None
    id_token: str = ""
    id_token_type: str = ""
    reservation_id: int | None = None
    samples: list[MeterSample] = field(default_factory=list)


@dataclass
class TransactionEventResult:
    transaction: Transaction
    # True when the event was a copy of one already recorded (nothing changed).
    duplicate: bool
    # The verdict on the event's idToken; None when it carried none.
    id_token_info: IdTagInfo | None = None


def id_token_authorize(*, station_id: int, id_token: str, token_type: str) -> IdTagInfo:
    """Decide whether a 2.x idToken (value + type) may charge at the station.

    As `id_tag_authorize`, plus the type: a tag registered with a token type only
    matches a token of that type (an RFID card number typed into an app is not the
    card), or a "Central" one: that is the type the backend itself gives a token in
    RequestStartTransaction, and the charger reports the session with it.
    "NoAuthorization" tokens (empty, from chargers set up to need none) are accepted
    only where the station has free usage.
    """
    if token_type == NO_AUTHORIZATION:
        free = Station.objects.filter(pk=station_id, free_usage=True).exists()
        return IdTagInfo(status=IdTag.Status.ACCEPTED if free else IdTag.Status.INVALID)
    if len(id_token) > ID_TOKEN_MAX:
        return id_tag_authorize(station_id=station_id, id_tag="")
    info = id_tag_authorize(station_id=station_id, id_tag=id_token)
    if info.status != IdTag.Status.ACCEPTED or token_type in {"", CENTRAL}:
        return info
    station = Station.objects.only("cpo_id", "free_usage").get(pk=station_id)
    if station.free_usage:
        return info
    registered_types = set(
        IdTag.objects.filter(cpo_id=station.cpo_id, tag__iexact=id_token).values_list(
            "token_type", flat=True
        )
    )
    if registered_types and "" not in registered_types and token_type not in registered_types:
        return IdTagInfo(status=IdTag.Status.INVALID)
    return info


def transaction_event_record(
    *, station_id: int, event: TransactionEventData
) -> TransactionEventResult:
    """Apply one TransactionEvent (Started, Updated or Ended) and return the transaction.

    - Started creates the session; Updated and Ended of a session never seen started
      create it too (its start was lost), an Ended one flagged `orphan_stop`.
    - An event whose seqNo is not above the last recorded one is a resent copy: nothing
      changes (its idToken is still judged, as the charger expects an idTokenInfo).
    - Meter values are stored with the transaction; the energy register gives meter start,
      meter stop and the energy so far.
    - `offline` sticks: a session with any event sent from the charger's queue is flagged.
    """
    info = None
    if event.id_token or event.id_token_type == NO_AUTHORIZATION:
        info = id_token_authorize(
            station_id=station_id, id_token=event.id_token, token_type=event.id_token_type
        )
    transaction_id = clip(Transaction, "charger_transaction_id", event.transaction_id)
    try:
        return _record(station_id, transaction_id, event, info)
    except IntegrityError:
        # Another connection of the same station created the row a moment ago: retry once,
        # now finding it.
        return _record(station_id, transaction_id, event, info)


def _record(
    station_id: int, transaction_id: str, event: TransactionEventData, info: IdTagInfo | None
) -> TransactionEventResult:
    with transaction.atomic():
        tx = (
            Transaction.objects.select_for_update()
            .filter(station_id=station_id, charger_transaction_id=transaction_id)
            .first()
        )
        if tx is not None and tx.last_seq_no is not None and event.seq_no <= tx.last_seq_no:
            logger.info(
                "Station %s resent TransactionEvent %s seqNo %s: ignored",
                station_id,
                transaction_id,
                event.seq_no,
            )
            return TransactionEventResult(transaction=tx, duplicate=True, id_token_info=info)
        if tx is None:
            if event.event_type != STARTED:
                logger.warning(
                    "Station %s sent %s for unknown transaction %s: recording it",
                    station_id,
                    event.event_type,
                    transaction_id,
                )
            tx = Transaction(
                station_id=station_id,
                charger_transaction_id=transaction_id,
                # The earliest moment we know of: the start itself when this is Started.
                start_time=event.timestamp,
                orphan_stop=event.event_type == ENDED,
            )
        if event.evse_id:
            tx.connector = connector_get_or_create(
                station_id=station_id,
                connector_id=event.connector_id or _only_connector(station_id, event.evse_id),
                evse_id=event.evse_id,
            )
        if event.id_token and info is not None:
            token = clip(Transaction, "id_tag", event.id_token)
            if not tx.id_tag:
                # Plug in first, authorize later: the token may come with any event.
                tx.id_tag = token
                tx.id_tag_status = info.status
            elif event.event_type == ENDED:
                # The token presented to end the session, as 1.6 StopTransaction.idTag.
                tx.stop_id_tag = clip(Transaction, "stop_id_tag", event.id_token)
            elif tx.id_tag.lower() == token.lower():
                tx.id_tag_status = info.status
        if event.reservation_id is not None:
            tx.reservation_id = event.reservation_id
        tx.offline = tx.offline or event.offline
        tx.last_seq_no = event.seq_no

        energy = _energy_register_wh(event.samples)
        if energy is not None:
            first, last = energy
            if tx.meter_start is None and event.event_type == STARTED:
                tx.meter_start = first
            if event.event_type == ENDED:
                tx.meter_stop = last
            if tx.meter_start is not None and last >= tx.meter_start:
                tx.energy_wh = last - tx.meter_start
        if event.event_type == ENDED and tx.state != Transaction.State.ENDED:
            tx.state = Transaction.State.ENDED
            tx.stop_time = event.timestamp
            tx.stop_reason = clip(
                Transaction, "stop_reason", event.stopped_reason or DEFAULT_STOPPED_REASON
            )
        tx.save()
        meter_values_store(
            station_id=station_id,
            samples=event.samples,
            transaction=tx,
            evse_id=event.evse_id or _evse_of(tx),
        )
    return TransactionEventResult(transaction=tx, duplicate=False, id_token_info=info)


def _only_connector(station_id: int, evse_id: int) -> int:
    """The connector of an EVSE the event did not name: its only one, else connector 1."""
    ids = list(
        Connector.objects.filter(station_id=station_id, evse_id=evse_id).values_list(
            "connector_id", flat=True
        )[:2]
    )
    return ids[0] if len(ids) == 1 else 1


def _evse_of(tx: Transaction) -> int | None:
    return tx.connector.evse_id if tx.connector_id else None


def _energy_register_wh(samples: list[MeterSample]) -> tuple[int, int] | None:
    """(first, last) total energy register readings in Wh, or None when there are none.

    Per-phase readings are skipped: the session's energy is the total register.
    """
    readings = []
    for sample in sorted(samples, key=lambda s: s.timestamp):
        if (sample.measurand or ENERGY_REGISTER) != ENERGY_REGISTER or sample.phase:
            continue
        if sample.location and sample.location not in {"Outlet", "Inlet"}:
            continue
        try:
            value = Decimal(sample.value)
        except InvalidOperation:
            continue
        if not value.is_finite():
            continue
        if (sample.unit or "Wh") == "kWh":
            value *= 1000
        elif (sample.unit or "Wh") != "Wh":
            continue
        wh = int(value.to_integral_value())
        if 0 <= wh <= BIGINT_MAX:  # a nonsense reading must not break the row's save
            readings.append(wh)
    if not readings:
        return None
    return readings[0], readings[-1]


def meter_samples_from_ocpp(meter_values: list[dict] | None) -> list[MeterSample]:
    """MeterSamples from 2.x meterValue items (snake_case, as handlers receive them).

    The value is stored scaled by unitOfMeasure.multiplier (10^multiplier), in the unit
    named; the 2.x defaults (Energy.Active.Import.Register, Wh, Sample.Periodic, Outlet)
    are written out so a stored sample says what it is.
    """
    samples = []
    for meter_value in meter_values or []:
        timestamp = parse_ocpp_time(meter_value.get("timestamp"))
        if timestamp is None:
            continue
        for sampled in meter_value.get("sampled_value") or []:
            unit_of_measure = sampled.get("unit_of_measure") or {}
            measurand = sampled.get("measurand") or ENERGY_REGISTER
            unit = unit_of_measure.get("unit") or ("Wh" if measurand.startswith("Energy") else "")
            samples.append(
                MeterSample(
                    timestamp=timestamp,
                    value=_scaled(sampled.get("value"), unit_of_measure.get("multiplier") or 0),
                    measurand=measurand,
                    phase=sampled.get("phase") or "",
                    unit=unit,
                    context=sampled.get("context") or "Sample.Periodic",
                    location=sampled.get("location") or "Outlet",
                )
            )
    return samples


def _scaled(value: object, multiplier: int) -> str:
    try:
        multiplier = int(multiplier)
        if abs(multiplier) > MAX_MULTIPLIER:
            raise ValueError(multiplier)
        number = Decimal(str(value)).scaleb(multiplier)
    except (DecimalException, ValueError, TypeError):
        return str(value)
    if not number.is_finite():
        return str(value)
    return format(number.normalize(), "f")
