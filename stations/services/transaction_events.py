"""OCPP 2.x TransactionEvent: one message type for a session's start, updates and end.

The charger names the transaction (a string id, `Transaction.charger_transaction_id`) and
numbers its events (`seqNo`, from the Started's upward). Retries reorder events (2.0.1
E §1.3.2) and a charger resends an event whose answer it lost, so:

- a duplicate is the same (transactionId, seqNo) seen before, nothing else (a unique
  constraint on TransactionEvent decides it);
- every other event is merged into the session whatever its arrival order: the
  Started's timestamp, idToken and Transaction.Begin reading win, the Ended's stop
  wins, and missing seqNos mark the session `incomplete` until they arrive;
- events of one transaction processed in parallel serialise on the session's row lock
  (and, for an event naming its EVSE, the EVSE's connector rows first, so two sessions
  starting on one EVSE see each other).

Sessions of both OCPP versions land in the one Transaction model; energy, superseding
and flags follow the rules of `charging_sessions.py`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from ocpp_spec.meter import BEGIN_CONTEXT
from ocpp_spec.times import parse_ocpp_time
from stations.bulk import bulk_insert
from stations.models import Connector, MeterValue, Station, Transaction, TransactionEvent
from stations.services.charging import clip
from stations.services.charging_sessions import (
    DEFAULT_STOP_REASON,
    event_add_once,
    session_flags_update,
    session_settle,
    session_times_check,
    sessions_supersede,
)
from stations.services.id_tags import (
    NO_AUTHORIZATION,
    IdTagInfo,
    SessionExclusion,
    id_token_authorize,
)
from stations.services.meter_values import (
    METER_VALUE_COLUMNS,
    MeterSample,
    meter_rows,
    sample_register_readings,
    whole_wh,
)

logger = logging.getLogger(__name__)

STARTED, UPDATED, ENDED = "Started", "Updated", "Ended"


class InvalidTimestamp(ValueError):
    """A charger's time that is not an ISO 8601 date-time; `field` names where."""

    def __init__(self, field: str):
        super().__init__(f"{field}: not an ISO 8601 date-time")
        self.field = field


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
    time_spent_charging: int | None = None
    offline: bool = False
    evse_id: int | None = None
    connector_id: int | None = None
    id_token: str = ""
    id_token_type: str = ""
    reservation_id: int | None = None
    # OCPP 2.1.
    tariff_id: str = ""
    cost_details: dict | None = None
    samples: list[MeterSample] = field(default_factory=list)


@dataclass
class TransactionEventResult:
    transaction: Transaction
    # True when the event was a copy of one already recorded (nothing changed).
    duplicate: bool
    # The verdict on the event's idToken; None when it carried none.
    id_token_info: IdTagInfo | None = None


def transaction_event_record(
    *, station_id: int, event: TransactionEventData, received_at: datetime | None = None
) -> TransactionEventResult:
    """Merge one TransactionEvent (Started, Updated or Ended) into its session.

    - The first event of a transaction creates the session, whichever it is; an Ended
      one alone makes it an orphan stop until its Started arrives.
    - A (transactionId, seqNo) recorded before is a resent copy: nothing changes (its
      idToken is still judged, as the charger expects an idTokenInfo).
    - The event joins the session's history; its meter values are stored with it.
    - `offline` sticks: a session with any event sent from the charger's queue is flagged.
    """
    received_at = received_at or timezone.now()
    info = None
    if event.id_token or event.id_token_type == NO_AUTHORIZATION:
        info = id_token_authorize(
            station_id=station_id,
            id_token=event.id_token,
            token_type=event.id_token_type,
            # The session's own events never make its token "already in a session"; an
            # Ended event's token is the one stopping it.
            session=SessionExclusion(charger_transaction_id=event.transaction_id),
            concurrency=event.event_type != "Ended",
        )
    transaction_id = clip(Transaction, "charger_transaction_id", event.transaction_id)
    try:
        return _record(station_id, transaction_id, event, info, received_at)
    except IntegrityError:
        # An event of the same transaction, processed in parallel, created the session a
        # moment ago: retry once, now finding it.
        return _record(station_id, transaction_id, event, info, received_at)


def _record(
    station_id: int,
    transaction_id: str,
    event: TransactionEventData,
    info: IdTagInfo | None,
    received_at: datetime,
) -> TransactionEventResult:
    with transaction.atomic():
        # Lock order: the EVSE's connectors, then the session, then (superseding) others.
        connector = _evse_connector_locked(station_id, event) if event.evse_id else None
        tx = (
            Transaction.objects.select_for_update(no_key=True, of=("self",))
            .select_related("connector")
            .annotate(first_connected_at=F("station__first_connected_at"))
            .filter(station_id=station_id, charger_transaction_id=transaction_id)
            .first()
        )
        created = tx is None
        if created:
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
                start_time=event.timestamp,
            )
            tx.first_connected_at = (
                Station.objects.filter(pk=station_id)
                .values_list("first_connected_at", flat=True)
                .first()
            )
        elif not _event_add(tx, event, received_at):
            logger.info(
                "Station %s resent TransactionEvent %s seqNo %s: ignored",
                station_id,
                transaction_id,
                event.seq_no,
            )
            return TransactionEventResult(transaction=tx, duplicate=True, id_token_info=info)
        was_ended = tx.state == Transaction.State.ENDED
        connector_changed = connector is not None and tx.connector_id != connector.pk
        if connector_changed:
            tx.connector = connector
        _merge(tx, event, info, received_at)
        if created:
            tx.save(force_insert=True)
            _event_add(tx, event, received_at)
        if event.samples:
            bulk_insert(
                MeterValue,
                METER_VALUE_COLUMNS,
                meter_rows(
                    station_id,
                    event.samples,
                    transaction_pk=tx.pk,
                    connector_id=None,
                    evse_id=event.evse_id or (tx.connector.evse_id if tx.connector else None),
                    received_at=received_at,
                ),
            )
        if connector is not None and (connector_changed or event.event_type == STARTED):
            sessions_supersede(
                tx,
                place=Q(connector__evse_id=connector.evse_id),
                received_at=received_at,
            )
        if tx.state == Transaction.State.ENDED and (
            event.event_type == ENDED or was_ended or tx.superseded or event.samples
        ):
            session_settle(tx)
        session_flags_update(tx)
        tx.save()
    return TransactionEventResult(transaction=tx, duplicate=False, id_token_info=info)


def _evse_connector_locked(station_id: int, event: TransactionEventData) -> Connector:
    """The event's connector, created when first named, with every connector row of its
    EVSE locked: two sessions starting on one EVSE are then applied one after the other.
    A connector the event did not name is the EVSE's only one, else connector 1."""
    connectors = list(
        Connector.objects.select_for_update(no_key=True)
        .filter(station_id=station_id, evse_id=event.evse_id)
        .order_by("connector_id")
    )
    wanted = event.connector_id
    if wanted is None:
        wanted = connectors[0].connector_id if len(connectors) == 1 else 1
    for connector in connectors:
        if connector.connector_id == wanted:
            return connector
    try:
        # A savepoint: a StatusNotification may create the same connector meanwhile.
        with transaction.atomic():
            return Connector.objects.create(
                station_id=station_id, evse_id=event.evse_id, connector_id=wanted
            )
    except IntegrityError:
        return Connector.objects.select_for_update(no_key=True).get(
            station_id=station_id, evse_id=event.evse_id, connector_id=wanted
        )


def _event_add(tx: Transaction, event: TransactionEventData, received_at: datetime) -> bool:
    return event_add_once(
        tx,
        kind=event.event_type,
        seq_no=event.seq_no,
        timestamp=event.timestamp,
        received_at=received_at,
        trigger_reason=clip(TransactionEvent, "trigger_reason", event.trigger_reason),
        charging_state=clip(TransactionEvent, "charging_state", event.charging_state),
        time_spent_charging=event.time_spent_charging,
        remote_start_id=event.remote_start_id,
        stopped_reason=clip(TransactionEvent, "stopped_reason", event.stopped_reason),
        id_token=clip(TransactionEvent, "id_token", event.id_token),
        id_token_type=clip(TransactionEvent, "id_token_type", event.id_token_type),
        offline=event.offline,
        tariff_id=clip(TransactionEvent, "tariff_id", event.tariff_id),
        cost_details=event.cost_details,
    )


def _merge(
    tx: Transaction, event: TransactionEventData, info: IdTagInfo | None, received_at: datetime
) -> None:
    """Apply what the event says to the session row (not saved)."""
    seq_no = event.seq_no
    tx.first_seq_no = seq_no if tx.first_seq_no is None else min(tx.first_seq_no, seq_no)
    tx.last_seq_no = seq_no if tx.last_seq_no is None else max(tx.last_seq_no, seq_no)
    tx.seq_no_count += 1
    tx.offline = tx.offline or event.offline
    if event.reservation_id is not None:
        tx.reservation_id = event.reservation_id
    if event.remote_start_id is not None:
        tx.remote_start_id = event.remote_start_id
    if event.tariff_id:
        tx.tariff_id = clip(Transaction, "tariff_id", event.tariff_id)

    token = clip(Transaction, "id_tag", event.id_token) if info is not None else ""
    if event.event_type == STARTED:
        tx.start_time = event.timestamp
        tx.start_received_at = received_at
        if token:
            tx.id_tag, tx.id_tag_status = token, info.status
    elif tx.start_received_at is None and event.timestamp < tx.start_time:
        # No Started yet: the session began no later than its earliest event.
        tx.start_time = event.timestamp
    if event.event_type == ENDED:
        if token:
            # The token presented to end the session, as 1.6 StopTransaction.idTag.
            tx.stop_id_tag = clip(Transaction, "stop_id_tag", event.id_token)
        tx.state = Transaction.State.ENDED
        tx.stop_time = event.timestamp
        tx.stop_received_at = received_at
        tx.stop_reason = clip(
            Transaction, "stop_reason", event.stopped_reason or DEFAULT_STOP_REASON
        )
        # The charger's own end replaces what the backend assumed when superseding.
        tx.superseded, tx.superseded_by = False, None
        tx.never_stopped = False
    elif token and event.event_type == UPDATED:
        if not tx.id_tag:
            # Plug in first, authorize later: the token comes with an Updated.
            tx.id_tag, tx.id_tag_status = token, info.status
        elif tx.id_tag.lower() == token.lower():
            tx.id_tag_status = info.status

    readings = sample_register_readings(event.samples)
    begins = [r for r in readings if r.context == BEGIN_CONTEXT]
    if begins:
        tx.meter_start = whole_wh(begins[0].wh)
    elif readings and event.event_type == STARTED and tx.meter_start is None:
        tx.meter_start = whole_wh(readings[0].wh)
    session_times_check(
        tx,
        [event.timestamp, *(s.timestamp for s in event.samples)],
        received_at=received_at,
        first_connected_at=tx.first_connected_at,
    )


def meter_samples_from_ocpp(
    meter_values: list[dict] | None, *, field: str = "meterValue"
) -> list[MeterSample]:
    """MeterSamples from 2.x meterValue items (snake_case, as handlers receive them).

    What was sent, as sent: the value before unitOfMeasure.multiplier, the multiplier,
    an empty field for one left out (the defaults are applied when stored, by the same
    rule as 1.6's), the signedMeterValue verbatim. Raises InvalidTimestamp for a
    meterValue whose timestamp is not a date-time: nothing of the frame is stored then.
    """
    samples = []
    for index, meter_value in enumerate(meter_values or []):
        raw_time = meter_value.get("timestamp")
        timestamp = parse_ocpp_time(raw_time) if isinstance(raw_time, str) else None
        if timestamp is None:
            raise InvalidTimestamp(f"{field}.{index}.timestamp")
        for sampled in meter_value.get("sampled_value") or []:
            unit_of_measure = sampled.get("unit_of_measure") or {}
            signed = sampled.get("signed_meter_value") or {}
            samples.append(
                MeterSample(
                    timestamp=timestamp,
                    value=_text(sampled.get("value")),
                    measurand=sampled.get("measurand") or "",
                    phase=sampled.get("phase") or "",
                    unit=unit_of_measure.get("unit") or "",
                    multiplier=_multiplier(unit_of_measure.get("multiplier")),
                    context=sampled.get("context") or "",
                    location=sampled.get("location") or "",
                    signed_data=signed.get("signed_meter_data") or "",
                    signing_method=signed.get("signing_method") or "",
                    encoding_method=signed.get("encoding_method") or "",
                    public_key=signed.get("public_key") or "",
                )
            )
    return samples


def _text(value: object) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        # 1000.0 from JSON's 1000.0: "1000", as a person would write it.
        return str(int(value))
    return "" if value is None else str(value)


def _multiplier(value: object) -> int:
    # The schema makes it an integer; a wild one is stored but never applied.
    return int(value) if isinstance(value, int) else 0
