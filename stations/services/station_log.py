"""The OCPP message log: written in batches by the gateway, read by the station log page."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from typing import NamedTuple

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from ocpp_spec.passwords import REDACTED, may_hold_secret, redact_secrets
from stations.bulk import DATABASE_AWAY, bulk_insert
from stations.models import OcppMessage, Station
from stations.services.liveness import stations_last_seen_set

logger = logging.getLogger(__name__)

DEFAULT_WINDOW = timedelta(hours=24)
# Periodic traffic that buries what a technician looks for. Answers carry the action of
# their CALL (the gateway logs them so), so both halves are hidden.
NOISE_ACTIONS = ("Heartbeat", "MeterValues")


def station_log(
    *, station: Station, since: datetime | None = None, hide_noise: bool = False
) -> QuerySet[OcppMessage]:
    """The station's OCPP frames since `since` (default: the last 24 h), newest first.

    `hide_noise` leaves out heartbeats and meter values, requests and answers alike.
    Uses the (station, -created_at) index; slice or paginate the result.
    """
    if since is None:
        since = timezone.now() - DEFAULT_WINDOW
    messages = OcppMessage.objects.filter(station=station, created_at__gte=since)
    if hide_noise:
        messages = messages.exclude(action__in=NOISE_ACTIONS)
    return messages.order_by("-created_at", "-id")


def message_payload_text(message: OcppMessage) -> str:
    """The frame's payload as indented JSON for reading (the raw text of an unparseable one)."""
    if message.payload is None:
        return _raw_redacted(message.raw)
    payload = redact_secrets(message.payload)  # rows written before redaction on write
    return json.dumps(payload, indent=2, ensure_ascii=False, sort_keys=False)


def _raw_redacted(raw: str) -> str:
    if raw and may_hold_secret(raw):
        return f"(an unparsed frame naming a charger password: {REDACTED})"
    return raw


def _row_redacted(row: LogRow) -> LogRow:
    """A frame carrying a charger password (a configuration read, a report, a technician's
    ChangeConfiguration) is logged with the password blanked out."""
    if row.payload is not None and may_hold_secret(row.payload):
        row = row._replace(payload=json.dumps(redact_secrets(json.loads(row.payload))))
    if row.raw and may_hold_secret(row.raw):
        row = row._replace(raw=_raw_redacted(row.raw))
    return row


# ---- writing ------------------------------------------------------------------------------


class LogRow(NamedTuple):
    """One frame waiting to be written: its OcppMessage is built on the database thread.

    Cheap to make on the event loop, and the payload is JSON text: a row holds no
    container the garbage collector tracks while it waits for the next flush.
    """

    station_id: int | None
    cbid: str
    direction: str
    message_type: int | None
    action: str
    unique_id: str
    payload: str | None  # JSON text
    raw: str
    created_at: datetime


def ocpp_log_write(*, rows: list[LogRow], seen: dict[int, datetime]) -> None:
    """Write log rows and the stations' `last_seen` (id → time) in one transaction.

    A batch the database refuses (a row it cannot store, not the database being away) is
    written again row by row: the bad rows are dropped, and logged, rather than block
    the log for ever. Raises when the database is away: the caller keeps the rows.
    """
    rows = [_row_redacted(row) for row in rows]
    try:
        with transaction.atomic():
            bulk_insert(OcppMessage, LogRow._fields, rows)
            stations_last_seen_set(seen)
    except DATABASE_AWAY:
        raise
    except Exception:
        logger.exception("Writing %d OCPP log rows failed; writing one by one", len(rows))
        try:
            _write_each(rows, seen)
        except DATABASE_AWAY:
            # Gone meanwhile: the caller keeps every row (one written twice at worst).
            raise
        except Exception:
            logger.exception("Writing OCPP log rows one by one failed; dropped them")


def _write_each(rows: list[LogRow], seen: dict[int, datetime]) -> None:
    dropped = 0
    for row in _messages(rows):
        try:
            with transaction.atomic():
                row.save(force_insert=True)
        except DATABASE_AWAY:
            raise
        except Exception:
            dropped += 1
            logger.exception("Dropped an OCPP log row the database refuses: %s", row)
    if dropped:
        logger.error("Dropped %d of %d OCPP log rows", dropped, len(rows))
    with transaction.atomic():
        stations_last_seen_set(seen)


def _messages(rows: list[LogRow]) -> list[OcppMessage]:
    return [
        OcppMessage(**row._replace(payload=row.payload and json.loads(row.payload))._asdict())
        for row in rows
    ]


# What a session's log shows: its start, stop, samples and status, and what asked for them.
SESSION_ACTIONS = (
    "Authorize",
    "StartTransaction",
    "StopTransaction",
    "TransactionEvent",
    "MeterValues",
    "StatusNotification",
    "RemoteStartTransaction",
    "RemoteStopTransaction",
    "RequestStartTransaction",
    "RequestStopTransaction",
)
SESSION_LOG_MARGIN = timedelta(minutes=1)


def session_log(*, station: Station, start: datetime, end: datetime | None) -> QuerySet:
    """The station's session-related frames from a minute before `start` to a minute after
    `end` (now while it runs), oldest first. Slice the result."""
    messages = OcppMessage.objects.filter(
        station=station,
        created_at__gte=start - SESSION_LOG_MARGIN,
        action__in=SESSION_ACTIONS,
    )
    if end is not None:
        messages = messages.filter(created_at__lte=end + SESSION_LOG_MARGIN)
    return messages.order_by("created_at", "id")
