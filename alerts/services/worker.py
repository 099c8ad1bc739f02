"""The `manage.py alerts` worker: evaluate, dispatch, deliver, every `ALERTS_INTERVAL` s.

The worker keeps one database connection for as long as it runs: the lock belongs to it.
Run one per deployment (systemd, a container); run two for fail-over: on PostgreSQL they
elect one active worker with a session advisory lock, the other waits and takes over when
the first one's connection ends. (The daphne processes do not evaluate: HTTP calls to slow
webhooks and SMTP servers stay away from the chargers' event loop.)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.db import connection
from django.utils import timezone

from alerts.services.delivery import deliveries_send
from alerts.services.dispatch import notifications_dispatch
from alerts.services.evaluate import alerts_evaluate
from alerts.services.uptime import status_history_record

logger = logging.getLogger(__name__)

# pg_try_advisory_lock key: "alerts" in ASCII.
ADVISORY_LOCK_KEY = 0x616C65727473


def worker_lock_try() -> bool:
    """Take the evaluator's lock (PostgreSQL; elsewhere there is only one process)."""
    if connection.vendor != "postgresql":
        return True
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [ADVISORY_LOCK_KEY])
        return bool(cursor.fetchone()[0])


def worker_lock_held() -> bool:
    """Whether this session still holds the lock (a lost connection loses it)."""
    if connection.vendor != "postgresql":
        return True
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory'"
            " AND pid = pg_backend_pid() AND objid = %s AND granted)",
            [ADVISORY_LOCK_KEY & 0xFFFFFFFF],
        )
        return bool(cursor.fetchone()[0])


def worker_lock_release() -> None:
    if connection.vendor == "postgresql" and connection.connection is not None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock_all()")


def alerts_tick() -> None:
    """One round: sample the status history, evaluate, dispatch, send what is due."""
    now = timezone.now()
    status_history_record(now=now)
    alerts_evaluate(now=now)
    notifications_dispatch()
    deliveries_send()


def worker_run(
    *, interval: float, once: bool = False, sleep: Callable[[float], None] = time.sleep
) -> None:
    """Loop forever (or once): wait for the lock, then tick every `interval` seconds."""
    try:
        _loop(interval=interval, once=once, sleep=sleep)
    finally:
        # Stopped (or --once): hand over at once, and never return a pooled connection that
        # still holds the lock.
        try:
            worker_lock_release()
        except Exception:
            logger.exception("Releasing the evaluator lock failed")


def _loop(*, interval: float, once: bool, sleep: Callable[[float], None]) -> None:
    holding = False
    while True:
        started = time.monotonic()
        try:
            if not holding:
                holding = worker_lock_try()
                if holding:
                    logger.info("Alerts worker: active (holds the evaluator lock)")
            elif not worker_lock_held():
                logger.warning("Alerts worker: lost the evaluator lock")
                holding = False
            if holding:
                alerts_tick()
        except Exception:
            logger.exception("Alerts worker round failed")
            # The connection (and the session's lock) stays unless the database dropped it:
            # a pooled connection must not go back to the pool holding the lock.
            if connection.connection is not None and not connection.is_usable():
                connection.close()
                holding = False
        if once:
            return
        sleep(max(0.0, interval - (time.monotonic() - started)))
