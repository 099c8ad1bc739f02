"""Group commit: the writes of many chargers in one database transaction.

A StatusNotification or a MeterValues frame is answered only once its data is committed.
Written one frame at a time, each frame costs a transaction of its own: several round
trips, each a hand-over of the GIL between a database thread and the event loop, so the
database threads, not the database, become the limit (bench/RESULTS.md).

A `GroupCommit` queues the writes of every connection of the process. One database call
writes whatever is queued, in one transaction, and each frame is answered after that
commit, so nothing is answered before it is safe. Frames queue while the previous batch
is being written, so under load the batches grow by themselves; an idle writer first
waits `linger` seconds (OCPP_GROUP_COMMIT_WAIT, a few milliseconds) for company, which
turns a trickle of single-frame transactions into a few larger ones.

A batch that the database refuses (one frame's data breaks a constraint) is written
again frame by frame (`stations.bulk.write_batch`), so the bad frame fails alone. A
database that is away fails every frame of the batch; the chargers get an InternalError
and resend.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from django.conf import settings

from ocpp_gateway import metrics
from ocpp_gateway.db import db_call
from ocpp_gateway.runtime import PerLoop, TaskSet
from stations.services.charging import MeterReading, StatusReport, charging_data_write

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class _Queue:
    """What one event loop has queued, and how many writers drain it."""

    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.get_running_loop)
    items: list = field(default_factory=list)
    running: int = 0
    # When the oldest queued item arrived (loop time), for the flush-lag metric: one clock
    # reading per batch, not per item.
    oldest_at: float = 0.0


class GroupCommit(Generic[T, R]):
    """Queue items; `write_many(items)` writes a batch and returns one result per item.

    `write_many` runs on a database thread and owns its transaction (a service, e.g.
    built on `stations.bulk.write_batch`): an exception as an item's result fails that
    item's frame; an exception raised fails the whole batch.
    """

    def __init__(
        self,
        name: str,
        write_many: Callable[[Sequence[T]], Sequence[R]],
        *,
        max_batch: int = 500,
        concurrency: int = 1,
        linger: float = 0.0,
    ) -> None:
        self.name = name
        self.write_many = write_many
        self.max_batch = max_batch
        self.concurrency = concurrency
        # Seconds an idle writer waits for company before writing the first item.
        self.linger = linger
        # Items and their futures, per event loop (tests run one per test).
        self._queues: PerLoop[_Queue] = PerLoop(_Queue)
        self._tasks = TaskSet(logger, detached=True)

    async def submit(self, item: T) -> R:
        """Write `item` with whatever else is queued; return once it is committed."""
        queue = self._queues.get()
        future = queue.loop.create_future()
        if not queue.items:
            queue.oldest_at = queue.loop.time()
        queue.items.append((item, future))
        if queue.running < self.concurrency:
            queue.running += 1
            self._tasks.spawn(self._drain(queue), f"{self.name}: writer")
        return await future

    async def _drain(self, queue: _Queue) -> None:
        try:
            if self.linger > 0:
                await asyncio.sleep(self.linger)
            while queue.items:
                batch = queue.items[: self.max_batch]
                del queue.items[: self.max_batch]
                oldest_at = queue.oldest_at
                if queue.items:
                    # The rest queued while this batch waited: no older than now.
                    queue.oldest_at = queue.loop.time()
                # Items whose charger is gone are written all the same: they were received.
                try:
                    results = await db_call(self.write_many, [item for item, _ in batch])
                    metrics.flushed(self.name, len(batch), queue.loop.time() - oldest_at)
                except Exception as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if future.done():
                        continue
                    if isinstance(result, BaseException):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:
            queue.running -= 1


# The process's group commit for charging data, shared by every connection and version:
# StatusNotification and MeterValues frames of all chargers share its transactions.
charging_writes: GroupCommit[StatusReport | MeterReading, int | None] = GroupCommit(
    "charging data", charging_data_write, linger=settings.OCPP_GROUP_COMMIT_WAIT
)
