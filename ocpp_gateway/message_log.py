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

from django.conf import settings
from django.utils import timezone

from ocpp_gateway import metrics
from ocpp_gateway.db import db_call
from ocpp_gateway.runtime import FlushTimer, PerLoop
from ocpp_spec.passwords import redact_password
from stations.models import OcppMessage
from stations.services.station_log import LogRow, ocpp_log_write

logger = logging.getLogger(__name__)

# Above this many unwritten rows (the database is down for long), the oldest are dropped.
MAX_BUFFERED_ROWS = 200_000
RAW_LIMIT = 10_000


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
                await db_call(ocpp_log_write, rows=rows, seen=seen)
                if rows:
                    lag = (timezone.now() - rows[0].created_at).total_seconds()
                    metrics.flushed("message log", len(rows), lag)
            except Exception:
                # The database is away (a row it refuses is dropped by the service).
                logger.exception("Writing %d OCPP log rows failed; will retry", len(rows))
                # Keep them for the next flush (newer rows after them keep their order).
                self._rows[:0] = rows
                for station_id, when in seen.items():
                    self._seen.setdefault(station_id, when)
                self._flush_timer.arm()


def _json(payload: object) -> str:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


message_log = MessageLog()
