"""Batched writes of the OCPP message log and of stations' `last_seen`.

Every frame is logged and every frame proves the station alive, but one synchronous
database write per frame does not scale. Frames are buffered in memory and written in one
transaction at most `OCPP_LOG_FLUSH_INTERVAL` seconds later (and when a charger
disconnects). A crash loses at most that window of *log* rows; domain data (transactions,
boots, status) is written synchronously by the services before a charger is answered.

While the database is away (a PostgreSQL restart) rows and `last_seen` times stay in
memory and every flush retries, up to `OCPP_LOG_MAX_BUFFERED_ROWS` rows: beyond that the
oldest are dropped, counted in `dropped_rows` (the process's total) and logged with the count.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
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

RAW_LIMIT = 10_000


class MessageLog:
    def __init__(self) -> None:
        self._rows: list[LogRow] = []
        self._seen: dict[int, datetime] = {}
        self._flush_timer = FlushTimer(self.flush, lambda: settings.OCPP_LOG_FLUSH_INTERVAL)
        # One flush at a time (per event loop: tests run one per test).
        self._lock = PerLoop(asyncio.Lock)
        # Rows dropped because the buffer was full, since the process started (a metric).
        self.dropped_rows = 0
        # When the current streak of failed flushes began (monotonic), or None.
        self._failing_since: float | None = None

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
        limit = settings.OCPP_LOG_MAX_BUFFERED_ROWS
        if len(self._rows) > limit:
            # A tenth at a time: one log line per 10 % of the buffer, not one per frame.
            dropped = len(self._rows) - limit + limit // 10
            del self._rows[:dropped]
            self.dropped_rows += dropped
            logger.error(
                "OCPP message log buffer full (%d rows): dropped the %d oldest rows "
                "(%d dropped since start)",
                limit,
                dropped,
                self.dropped_rows,
            )
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
                if self._failing_since is None:
                    self._failing_since = time.monotonic()
                    logger.exception(
                        "Writing %d OCPP log rows failed; keeping them and retrying", len(rows)
                    )
                # Keep them for the next flush (newer rows after them keep their order).
                self._rows[:0] = rows
                for station_id, when in seen.items():
                    self._seen.setdefault(station_id, when)
                self._flush_timer.arm()
                return
            if self._failing_since is not None:
                logger.warning(
                    "Wrote %d OCPP log rows kept while the database was away (%.0f s)",
                    len(rows),
                    time.monotonic() - self._failing_since,
                )
                self._failing_since = None


def _json(payload: object) -> str:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


message_log = MessageLog()
