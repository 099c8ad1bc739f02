"""Group commit (ocpp_gateway/group_commit.py): many frames, one transaction, answered after.

The batches are written through `stations.bulk.write_batch`, as the charging data is.
"""

from __future__ import annotations

import asyncio
import threading

import pytest
from django.db import IntegrityError, OperationalError

from ocpp_gateway.group_commit import GroupCommit
from stations.bulk import write_batch

pytestmark = [pytest.mark.django_db(transaction=True)]


class Recorder:
    """A write_many that records its batches and can be held or made to fail."""

    def __init__(self) -> None:
        self.batches: list[list] = []
        self.release = threading.Event()
        self.release.set()
        self.refuse: set = set()
        self.away = False

    def __call__(self, items):
        return write_batch(self.write, items, name="test")

    def write(self, items):
        self.release.wait(5)
        self.batches.append(list(items))
        if self.away:
            raise OperationalError("the database is away")
        if self.refuse & set(items):
            raise IntegrityError("refused")
        return [item * 10 for item in items]


async def test_a_lone_item_is_written_at_once():
    write = Recorder()
    group = GroupCommit("test", write)
    assert await asyncio.wait_for(group.submit(1), 5) == 10
    assert write.batches == [[1]]


async def test_items_queued_while_a_batch_is_written_go_in_one_batch():
    write = Recorder()
    write.release.clear()
    group = GroupCommit("test", write)
    first = asyncio.ensure_future(group.submit(1))
    await asyncio.sleep(0.05)  # The first batch is now being written (held).
    rest = [asyncio.ensure_future(group.submit(i)) for i in range(2, 12)]
    await asyncio.sleep(0.05)
    write.release.set()
    results = await asyncio.wait_for(asyncio.gather(first, *rest), 5)
    assert results == [i * 10 for i in range(1, 12)]
    assert write.batches == [[1], list(range(2, 12))]


async def test_batches_are_capped():
    write = Recorder()
    write.release.clear()
    group = GroupCommit("test", write, max_batch=4)
    futures = [asyncio.ensure_future(group.submit(i)) for i in range(10)]
    await asyncio.sleep(0.05)
    write.release.set()
    await asyncio.wait_for(asyncio.gather(*futures), 5)
    assert [len(batch) for batch in write.batches] == [4, 4, 2]


async def test_a_refused_item_fails_alone():
    write = Recorder()
    write.release.clear()
    write.refuse = {3}
    group = GroupCommit("test", write)
    futures = [asyncio.ensure_future(group.submit(i)) for i in range(1, 6)]
    await asyncio.sleep(0.05)
    write.release.set()
    results = await asyncio.wait_for(asyncio.gather(*futures, return_exceptions=True), 5)
    assert results[:2] == [10, 20] and results[3:] == [40, 50]
    assert isinstance(results[2], IntegrityError)
    # The whole batch first, then one by one.
    assert write.batches[0] == [1, 2, 3, 4, 5]
    assert write.batches[1:] == [[1], [2], [3], [4], [5]]


async def test_a_database_away_fails_the_whole_batch_and_the_next_one_works():
    write = Recorder()
    write.away = True
    group = GroupCommit("test", write)
    results = await asyncio.gather(group.submit(1), group.submit(2), return_exceptions=True)
    assert all(isinstance(r, OperationalError) for r in results)
    write.away = False
    assert await asyncio.wait_for(group.submit(3), 5) == 30


async def test_an_item_whose_caller_is_gone_is_still_written():
    write = Recorder()
    write.release.clear()
    group = GroupCommit("test", write)
    gone = asyncio.ensure_future(group.submit(1))
    await asyncio.sleep(0.05)
    gone.cancel()
    write.release.set()
    assert await asyncio.wait_for(group.submit(2), 5) == 20
    assert [1] in write.batches


async def test_status_frames_of_many_chargers_share_a_transaction(monkeypatch, settings):
    """End to end through the consumer: ten chargers' StatusNotifications, fewer batches."""
    import json

    from ocpp_gateway import group_commit as module
    from stations.models import Connector
    from tests.ocpp_gateway.conftest import open_charger

    batches = []
    original = module.charging_writes.write_many

    def counted(items):
        batches.append(len(items))
        return original(items)

    monkeypatch.setattr(module.charging_writes, "write_many", counted)
    settings.OCPP_POOL_BOOT_STATUS = "Accepted"
    chargers = [open_charger(f"CP-GC-{i}") for i in range(10)]
    for charger in chargers:
        assert await charger.connect()
        await charger.boot()
    status = {"connectorId": 1, "errorCode": "NoError", "status": "Available"}
    for charger in chargers:
        await charger.send_raw(json.dumps([2, "s", "StatusNotification", status]))
    replies = [await charger.receive() for charger in chargers]
    for charger in chargers:
        await charger.close()
    assert all(reply[0] == 3 for reply in replies), replies
    assert sum(batches) == 10 and len(batches) < 10
    assert await module.db_call(Connector.objects.filter(status="Available").count) == 10


async def test_an_idle_writer_lingers_for_company():
    write = Recorder()
    group = GroupCommit("test", write, linger=0.05)
    first = asyncio.ensure_future(group.submit(1))
    await asyncio.sleep(0.01)
    second = asyncio.ensure_future(group.submit(2))
    assert await asyncio.wait_for(asyncio.gather(first, second), 5) == [10, 20]
    assert write.batches == [[1, 2]]
