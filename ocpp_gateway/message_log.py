"""Batched writes of the OCPP message log and of stations' `last_seen`.

Every frame is logged and every frame proves the station alive, but one synchronous
database write per frame does not scale. Frames are buffered in memory and written in one
transaction at most `OCPP_LOG_FLUSH_INTERVAL` seconds later (and when a charger
disconnects). A crash loses at most that window of *log* rows; domain data (transactions,
boots, status) is written synchronously by the services before a charger is answered.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime
from typing import NamedTuple

from django.conf import settings
from django.db import InterfaceError, OperationalError, connections, transaction
from django.db.models import Case, DateTimeField, Value, When
from django.utils import timezone

from ocpp_gateway.db import db_call
from ocpp_gateway.runtime import FlushTimer, PerLoop
from ocpp_spec.passwords import redact_password
from stations.bulk import bulk_insert
from stations.models import OcppMessage, Station

logger = logging.getLogger(__name__)

# Above this many unwritten rows (the database is down for long), the oldest are dropped.
MAX_BUFFERED_ROWS = 200_000
RAW_LIMIT = 10_000


class LogRow(NamedTuple):
    """One frame waiting to be written: an OcppMessage is built in the database thread.

    Building a Django model instance per frame on the event loop was a quarter of the
    frame path's time. The payload is kept as JSON text: a row then holds no container
    the garbage collector tracks, so the rows buffered between flushes do not grow the
    long-lived heap that every full collection walks (pauses of 100 ms and more).
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


class MessageLog:
    def __init__(self) -> None:
        self._rows: list[LogRow] = []
        self._seen: dict[int, datetime] = {}
        self._flush_timer = FlushTimer(self.flush, lambda: settings.OCPP_LOG_FLUSH_INTERVAL)
        # One flush at a time (per event loop: tests run one per test).
        self._lock = PerLoop(asyncio.Lock)

    def record(
        self,
        *,
        station_id: int | None,
        cbid: str,
        direction: str,
        message_type: int | None,
        action: str = "",
        unique_id: str = "",
        payload: object = None,
        raw: str = "",
    ) -> None:
        now = timezone.now()
        if direction == OcppMessage.Direction.OUT and message_type == 2:
            # A password rotation's CALL: the station log must not show the password.
            payload = redact_password(action, payload)
        self._rows.append(
            LogRow(
                station_id,
                cbid[:48],
                direction,
                message_type,
                (action or "")[:60],
                (unique_id or "")[:100],
                None if payload is None else _json(payload),
                raw[:RAW_LIMIT].replace("\x00", "\\u0000") if raw else "",
                now,
            )
        )
        if station_id is not None and direction == OcppMessage.Direction.IN:
            self._seen[station_id] = now
        if len(self._rows) > MAX_BUFFERED_ROWS:
            dropped = len(self._rows) - MAX_BUFFERED_ROWS
            del self._rows[:dropped]
            logger.error("OCPP message log buffer full: dropped %d oldest rows", dropped)
        # Sync callers (tests, shell): the rows wait for an explicit flush().
        self._flush_timer.arm()

    async def flush(self) -> None:
        """Write everything buffered so far."""
        async with self._lock.get():
            rows, seen = self._rows, self._seen
            if not rows and not seen:
                return
            self._rows, self._seen = [], {}
            try:
                await db_call(_write, rows, seen)
            except (OperationalError, InterfaceError):
                logger.exception("Writing %d OCPP log rows failed; will retry", len(rows))
                # Keep them for the next flush (newer rows after them keep their order).
                self._rows[:0] = rows
                for station_id, when in seen.items():
                    self._seen.setdefault(station_id, when)
                self._flush_timer.arm()
            except Exception:
                # Not the database being away but a row it refuses: retrying the batch
                # would fail forever and block the log. Write row by row, drop the bad.
                logger.exception("Writing %d OCPP log rows failed; writing one by one", len(rows))
                try:
                    await db_call(_write_each, rows, seen)
                except Exception:
                    logger.exception("Writing OCPP log rows one by one failed; dropped them")


def _write_each(rows: list[LogRow], seen: dict[int, datetime]) -> None:
    dropped = 0
    for row in _messages(rows):
        try:
            with transaction.atomic():
                row.save(force_insert=True)
        except (OperationalError, InterfaceError):
            raise
        except Exception:
            dropped += 1
            logger.exception("Dropped an OCPP log row the database refuses: %s", row)
    if dropped:
        logger.error("Dropped %d of %d OCPP log rows", dropped, len(rows))
    with transaction.atomic():
        stations_last_seen_set(seen)


def _json(payload: object) -> str:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def _messages(rows: list[LogRow]) -> list[OcppMessage]:
    return [
        OcppMessage(**row._replace(payload=row.payload and json.loads(row.payload))._asdict())
        for row in rows
    ]


def _write(rows: list[LogRow], seen: dict[int, datetime]) -> None:
    with transaction.atomic():
        bulk_insert(OcppMessage, LogRow._fields, rows)
        stations_last_seen_set(seen)


# SQLite's CASE is evaluated branch by branch for every row: keep each statement small.
SQLITE_LAST_SEEN_CHUNK = 300


def stations_last_seen_set(seen: dict[int, datetime]) -> None:
    """Set each station's `last_seen` (station id → time) in one statement.

    One UPDATE per station seen in a flush interval would be one per connected charger
    per second at scale. PostgreSQL joins the stations with two arrays; SQLite (tests,
    development) takes a CASE per few hundred stations.
    """
    if not seen:
        return
    connection = connections[Station.objects.db]
    if connection.vendor == "postgresql":
        table = connection.ops.quote_name(Station._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} AS s SET last_seen = v.last_seen"
                " FROM unnest(%s::bigint[], %s::timestamptz[]) AS v(id, last_seen)"
                " WHERE s.id = v.id",
                [list(seen), list(seen.values())],
            )
        return
    items = list(seen.items())
    for start in range(0, len(items), SQLITE_LAST_SEEN_CHUNK):
        chunk = dict(items[start : start + SQLITE_LAST_SEEN_CHUNK])
        Station.objects.filter(pk__in=chunk).update(
            last_seen=Case(
                *(When(pk=pk, then=Value(when)) for pk, when in chunk.items()),
                output_field=DateTimeField(),
            )
        )


message_log = MessageLog()
