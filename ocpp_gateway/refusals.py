"""Refused handshakes: logged for operators and recorded for superusers.

Daphne answers every refused handshake with HTTP 403 whatever the reason, so the reason
only shows here. A storm of refusals (wrong URL, full pool, rate limits) must not keep the
database threads from real chargers: per address and reason, the first refusal of a second
is written at once and the rest of that second in one write when it ends. Password
failures (and plain-ws attempts) are written at once: the brute-force lockout counts them.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from ocpp_gateway import metrics
from ocpp_gateway.db import db_call
from ocpp_gateway.runtime import FlushTimer
from stations.services.refusals import (
    REFUSALS_PER_CBID,
    connection_refusal_record,
    connection_refusals_record_many,
)

logger = logging.getLogger("ocpp_gateway.refusals")


def remote_addr(scope: dict) -> str:
    client = scope.get("client") or ("", 0)
    return str(client[0] or "")


async def refuse(scope: dict, *, reason: str, detail: str = "", cbid: str = "") -> None:
    metrics.HANDSHAKE_REFUSALS.labels(reason).inc()
    addr = remote_addr(scope)
    logger.warning(
        "Refused OCPP handshake: reason=%s cbid=%r addr=%s path=%r %s",
        reason,
        cbid[:100],
        addr,
        scope.get("path", "")[:200],
        detail,
    )
    try:
        await refusal_log.record(cbid=cbid, remote_addr=addr, reason=reason, detail=detail)
    except Exception:
        logger.exception("Could not record the refused handshake")


# Seconds over which refusals of one address and reason are added up before writing.
COALESCE_SECONDS = 1.0
# Distinct (address, reason) pairs waiting at most; beyond, refusals are only logged.
MAX_PENDING = 10_000


@dataclass
class _Pending:
    cbid: str
    detail: str
    count: int = 1


class RefusalLog:
    def __init__(self) -> None:
        self._pending: dict[tuple[str, str], _Pending] = {}
        self._written: dict[tuple[str, str], float] = {}
        self._flush_timer = FlushTimer(self.flush, lambda: COALESCE_SECONDS)

    def forget(self) -> None:
        """Drop what waits to be written (tests: a database and an event loop per test)."""
        self._pending.clear()
        self._written.clear()
        self._flush_timer.forget()

    async def record(self, *, cbid: str, remote_addr: str, reason: str, detail: str) -> None:
        if reason in REFUSALS_PER_CBID:
            await db_call(
                connection_refusal_record,
                cbid=cbid,
                remote_addr=remote_addr,
                reason=reason,
                detail=detail,
            )
            return
        key = (remote_addr, reason)
        pending = self._pending.get(key)
        if pending is not None:
            pending.count += 1
            pending.cbid, pending.detail = cbid, detail
            return
        now = time.monotonic()
        if now - self._written.get(key, -math.inf) >= COALESCE_SECONDS:
            self._written[key] = now
            await db_call(
                connection_refusal_record,
                cbid=cbid,
                remote_addr=remote_addr,
                reason=reason,
                detail=detail,
            )
            return
        if len(self._pending) >= MAX_PENDING:
            return  # Logged by refuse() all the same.
        self._pending[key] = _Pending(cbid=cbid, detail=detail)
        self._flush_timer.arm()

    async def flush(self) -> None:
        """Write the refusals added up so far."""
        pending, self._pending = self._pending, {}
        now = time.monotonic()
        self._written = {k: t for k, t in self._written.items() if now - t < COALESCE_SECONDS}
        self._written.update(dict.fromkeys(pending, now))
        if not pending:
            return
        try:
            await db_call(
                connection_refusals_record_many,
                refusals=[
                    (refused.cbid, remote_addr, reason, refused.detail, refused.count)
                    for (remote_addr, reason), refused in pending.items()
                ],
            )
        except Exception:
            logger.exception("Could not record %d kinds of refused handshakes", len(pending))


refusal_log = RefusalLog()
