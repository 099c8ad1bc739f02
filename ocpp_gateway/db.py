"""Database calls from the gateway's async code, run in parallel on a bounded pool.

`channels.db.database_sync_to_async` is thread-sensitive: every call of a daphne process
(handshakes, boots, status, meter values, log flushes) ran on one thread, one query at a
time, while the event loop idled. Each service owns its transaction, so nothing needs that
thread: `db_call` runs them on OCPP_DB_THREADS threads (the size of the database pool),
closing stale connections before and after each call as channels does. Per charger the
order is kept because a consumer handles one frame at a time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from channels.db import DatabaseSyncToAsync
from django.conf import settings

T = TypeVar("T")

_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def executor() -> ThreadPoolExecutor:
    """The process's database threads (created on first use, sized by OCPP_DB_THREADS)."""
    global _executor
    if _executor is None:
        with _executor_lock:
            if _executor is None:
                _executor = ThreadPoolExecutor(
                    max_workers=max(1, settings.OCPP_DB_THREADS), thread_name_prefix="ocpp-db"
                )
    return _executor


async def db_call(func: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """`func(*args, **kwargs)` on one of the database threads."""
    call = DatabaseSyncToAsync(func, thread_sensitive=False, executor=executor())
    return await call(*args, **kwargs)
