"""The gateway's runtime patterns, written once: per-loop state, task sets, retries, timers.

Daphne runs one event loop per process and the tests one per test: state that belongs to
a loop (a queue, a lock, a timer, a background task) is kept per loop (`PerLoop`), so a
new loop starts clean. asyncio keeps only weak references to tasks: background work is
held in a `TaskSet` until done, and its failure is logged. Work that waits for Redis to
come back retries with back-off (`retry_with_backoff`); buffered writes are flushed a
little later, once per interval (`FlushTimer`).
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Generic, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")


class PerLoop(Generic[T]):
    """One `factory()` per running event loop, made on first use."""

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._states: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        # The last loop asked for: a process runs one, so this is nearly always it.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._state: T | None = None

    def get(self) -> T:
        loop = asyncio.get_running_loop()
        if loop is self._loop:
            return self._state  # type: ignore[return-value]
        state = self._states.get(loop)
        if state is None:
            state = self._states[loop] = self._factory()
        self._loop, self._state = loop, state
        return state


def spawn_detached(work: Coroutine[Any, Any, Any] | Awaitable[Any]) -> asyncio.Task:
    """A task with a fresh context (no CBID of the connection that started it)."""
    return contextvars.Context().run(asyncio.ensure_future, work)


class TaskSet:
    """Background tasks, referenced until they finish; a failure is logged, not lost."""

    def __init__(self, log: logging.Logger = logger, *, detached: bool = False) -> None:
        self._tasks: set[asyncio.Task] = set()
        self._log = log
        # Process-wide work (writers, timers): not in the context of the connection that
        # happened to start it, so its log lines carry no charger's CBID.
        self._detached = detached

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(self, work: Coroutine[Any, Any, Any] | Awaitable[Any], what: str) -> asyncio.Task:
        """Run `work` in the background; `what` names it in the log if it fails."""
        task = spawn_detached(work) if self._detached else asyncio.ensure_future(work)
        self._tasks.add(task)

        def done(finished: asyncio.Task) -> None:
            self._tasks.discard(finished)
            if not finished.cancelled() and finished.exception() is not None:
                self._log.error("%s failed", what, exc_info=finished.exception())

        task.add_done_callback(done)
        return task

    def cancel_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()


async def retry_with_backoff(
    attempt: Callable[[], Awaitable[T]],
    *,
    first: float,
    maximum: float,
    on_failure: Callable[[Exception], None],
) -> T:
    """`await attempt()` until it succeeds, sleeping `first`, twice that… up to `maximum`
    seconds between failures. `on_failure` hears of the first failure of a streak."""
    delay = first
    while True:
        try:
            return await attempt()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if delay == first:
                on_failure(exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, maximum)


class FlushTimer:
    """Runs `flush()` once, `delay()` seconds after the first `arm()` since it last ran.

    `arm()` outside an event loop does nothing (sync callers flush explicitly).
    """

    def __init__(self, flush: Callable[[], Awaitable[None]], delay: Callable[[], float]) -> None:
        if not inspect.iscoroutinefunction(flush):
            raise TypeError("flush must be a coroutine function")
        self._flush = flush
        self._delay = delay
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._tasks = TaskSet(detached=True)

    def arm(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if loop is not self._loop:
            # A new event loop: the old loop's timer is gone with it.
            self._loop, self._timer = loop, None
        if self._timer is None:
            self._timer = loop.call_later(self._delay(), self._fire)

    def forget(self) -> None:
        """Start afresh at the next `arm()` (tests: an event loop per test)."""
        self._loop = self._timer = None

    def _fire(self) -> None:
        self._timer = None
        self._tasks.spawn(self._flush(), "timed flush")
