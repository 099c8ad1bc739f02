"""The gateway's runtime helpers: per-loop state, task sets, retries, timed flushes."""

from __future__ import annotations

import asyncio
import logging

import pytest

from ocpp_gateway.runtime import FlushTimer, PerLoop, TaskSet, retry_with_backoff


def test_each_event_loop_gets_its_own_state():
    states = PerLoop(list)

    async def twice():
        return states.get(), states.get()

    first_a, first_b = asyncio.run(twice())
    second_a, _ = asyncio.run(twice())
    assert first_a is first_b
    assert second_a is not first_a


async def test_a_task_set_holds_tasks_until_done_and_logs_failures(caplog):
    tasks = TaskSet(logging.getLogger("test.runtime"))
    gate = asyncio.Event()

    async def fail():
        await gate.wait()
        raise RuntimeError("boom")

    task = tasks.spawn(fail(), "CP-1: the work")
    assert len(tasks) == 1
    gate.set()
    with caplog.at_level(logging.ERROR, logger="test.runtime"):
        await asyncio.gather(task, return_exceptions=True)
        await asyncio.sleep(0)
    assert len(tasks) == 0
    assert "CP-1: the work failed" in caplog.text


async def test_cancel_all_cancels_what_runs():
    tasks = TaskSet()
    task = tasks.spawn(asyncio.sleep(10), "sleep")
    tasks.cancel_all()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_retry_backs_off_and_tells_once_per_streak():
    attempts, told = [], []

    async def flaky():
        attempts.append(1)
        if len(attempts) < 4:
            raise ConnectionError("away")
        return "message"

    result = await retry_with_backoff(flaky, first=0.001, maximum=0.002, on_failure=told.append)
    assert result == "message"
    assert len(attempts) == 4
    assert [str(exc) for exc in told] == ["away"]


async def test_a_flush_timer_runs_once_per_armed_interval():
    flushed = []

    async def flush():
        flushed.append(1)

    timer = FlushTimer(flush, lambda: 0.01)
    for _ in range(5):
        timer.arm()
    await asyncio.sleep(0.05)
    assert flushed == [1]
    timer.arm()
    await asyncio.sleep(0.05)
    assert flushed == [1, 1]


def test_a_flush_timer_outside_a_loop_waits_for_an_explicit_flush():
    async def flush():  # pragma: no cover - never runs
        raise AssertionError

    FlushTimer(flush, lambda: 0).arm()
