"""Reaching the consumer that holds a charger's socket, in whatever process it runs.

The channel layer is at-most-once (Redis: 60 s expiry): it only says "go"; the durable
record (a Command row, the Station row) is always written first.
"""

from __future__ import annotations

import asyncio
import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)


# Sends in flight at once from station_notify_many (channels-redis pools 100 connections).
NOTIFY_CONCURRENCY = 50


# The local part of every daphne process's mailbox channel (see process_mailbox).
MAILBOX = "gateway"


def process_mailbox(channel_name: str) -> str | None:
    """The mailbox of the daphne process that holds `channel_name`, or None.

    A consumer's channel is process-local: "<the process's prefix>!<local part>".
    `ocpp_gateway.mailbox` listens on "<prefix>!gateway" in every process holding chargers.
    """
    prefix, bang, local = channel_name.partition("!")
    return f"{prefix}!{MAILBOX}" if bang and prefix and local else None


class DeliveryFailed(Exception):
    """The channel layer could not take the message (e.g. Redis is down)."""


def station_notify(*, channel_name: str, event_type: str, **data: object) -> None:
    """Send `{"type": event_type, **data}` to the consumer on `channel_name`.

    Sync callers only (views, services, management commands). Raises DeliveryFailed.
    """
    if not channel_name:
        raise DeliveryFailed("station is not connected")
    layer = get_channel_layer()
    try:
        async_to_sync(layer.send)(channel_name, {"type": event_type, **data})
    except Exception as exc:
        logger.warning("Channel layer send to %s failed: %s", channel_name, exc)
        raise DeliveryFailed(str(exc)) from exc


def station_notify_many(messages: list[tuple[str, dict]]) -> list[Exception | None]:
    """Send each (channel_name, message) from one event loop; one result per message.

    Sync callers only. Each `station_notify` from sync code runs its own event loop, and
    channels-redis keeps its connections per loop: a Redis connection per message. A
    failed message gives its exception (never raised), a delivered one None.
    """

    async def send_all() -> list:
        layer = get_channel_layer()
        # channels-redis refuses a send outright (MaxConnectionsError) once its pool of
        # connections for this loop is in use: a few sends in flight at a time.
        slots = asyncio.Semaphore(NOTIFY_CONCURRENCY)

        async def send(channel_name: str, message: dict) -> None:
            async with slots:
                await layer.send(channel_name, message)

        return await asyncio.gather(
            *(send(channel_name, message) for channel_name, message in messages),
            return_exceptions=True,
        )

    if not messages:
        return []
    try:
        results = async_to_sync(send_all)()
    except Exception as exc:
        logger.warning("Channel layer unavailable for %d messages: %s", len(messages), exc)
        return [exc] * len(messages)
    failures = [result if isinstance(result, Exception) else None for result in results]
    failed = sum(f is not None for f in failures)
    if failed:
        logger.warning("Channel layer refused %d of %d messages", failed, len(messages))
    return failures
