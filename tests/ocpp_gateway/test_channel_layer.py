"""The Redis channel layer must hold a consumer's receive loop open however idle it is."""

from __future__ import annotations

import asyncio

import pytest
from channels.layers import get_channel_layer
from django.conf import settings

pytestmark = pytest.mark.skipif(not settings.REDIS_URL, reason="REDIS_URL is not set")


async def test_an_idle_receive_outlives_the_redis_client_read_timeout():
    # channels-redis blocks in BZPOPMIN for 5 s; redis-py 8 reads with a 5 s timeout by
    # default, which crashed every idle consumer (and dropped its charger) every ~5 s.
    layer = get_channel_layer()
    channel = await layer.new_channel()

    async def send_later() -> None:
        await asyncio.sleep(6.5)
        await layer.send(channel, {"type": "station.refresh"})

    sender = asyncio.ensure_future(send_later())
    message = await asyncio.wait_for(layer.receive(channel), timeout=20)
    await sender
    await layer.flush()

    assert message == {"type": "station.refresh"}


def test_a_thousand_commands_at_once_all_reach_the_layer():
    """channels-redis refuses sends beyond its connection pool: station_notify_many waits."""
    from asgiref.sync import async_to_sync

    from stations.services.notify import station_notify_many

    layer = get_channel_layer()
    messages = [
        (f"specific.bulk{i % 2}!c{i}", {"type": "station.command", "command_id": i})
        for i in range(1000)
    ]
    try:
        assert station_notify_many(messages) == [None] * 1000
    finally:
        async_to_sync(layer.flush)()
